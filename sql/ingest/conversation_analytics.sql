-- one row per input record of Meta's conversation_analytics data points (the CBP years, DOMAIN
-- R13-R17, R26): the typed fields, and the first problem found (reason, detail) or null when
-- accepted. As pricing_analytics.sql: a field the request's dimensions(PHONE, COUNTRY,
-- CONVERSATION_CATEGORY, CONVERSATION_TYPE, CONVERSATION_DIRECTION) did not name is "all" ('');
-- `dimensions` lists those of the grain (direction is not: Meta's example gives it to some
-- points only); any well-formed category is kept; no cost is a null cost_micros. Meta's docs
-- write the free entry point type FREE_ENTRY, its examples FREE_ENTRY_POINT: both are
-- free_entry_point.
-- Reads: records(seq, line, raw, pre_reason, pre_detail, field), made by
-- conversation_analytics_json.sql from JSON text, or from a Parquet file's columns.
with typed as (
    select
        seq,
        line,
        raw,
        pre_reason,
        pre_detail,
        blank_to_null(field.waba_id) as waba_id,
        blank_to_null(field.start) as start_text,
        parse_ts(field.start) as start_at,
        blank_to_null(field."end") as end_text,
        parse_ts(field."end") as end_at,
        blank_to_null(field.phone_number) as phone_text,
        parse_phone(trim(field.phone_number)) as phone_number,
        upper(blank_to_null(field.country)) as country_code,
        replace(lower(blank_to_null(field.conversation_category)), '-', '_') as conversation_category,
        lower(blank_to_null(field.conversation_type)) as conversation_type,
        lower(blank_to_null(field.conversation_direction)) as conversation_direction,
        blank_to_null(field.conversation) as conversations_text,
        parse_int(field.conversation) as conversations,
        blank_to_null(field.cost) as cost_text,
        try_cast(trim(field.cost) as decimal(38, 9)) as cost
    from records
),

-- Micro-units must fit a bigint: a cost of 9.2e12 or more is a bad value, not an overflow.
costed as (
    select
        *,
        case when abs(cost) < 9000000000000 then cast(round(cost * 1000000) as bigint) end as cost_micros
    from typed
),

checked as (
    select
        *,
        case
            when start_text is null then ['missing_required_field', 'start']
            when end_text is null then ['missing_required_field', 'end']
            when conversations_text is null then ['missing_required_field', 'conversation']
            when conversations is null or conversations < 0 then ['bad_value', 'conversation']
            when cost_text is not null and cost_micros is null then ['bad_value', 'cost']
            when not regexp_full_match(country_code, '[A-Z]{2}') then ['bad_value', 'country']
            when not regexp_full_match(conversation_category, '[a-z][a-z0-9_]{0,63}')
                then ['bad_value', 'conversation_category']
            when start_at is null then ['bad_timestamp', 'start']
            when end_at is null then ['bad_timestamp', 'end']
            when end_at <= start_at then ['bad_value', 'end']
            when not list_contains(getvariable('analytics_conversation_types'), conversation_type)
                then ['unknown_enum', 'conversation_type']
            when not list_contains(getvariable('analytics_conversation_directions'), conversation_direction)
                then ['unknown_enum', 'conversation_direction']
            when phone_text is not null and phone_number is null then ['unparseable_phone', 'phone_number']
        end as problem
    from costed
),

final as (
    select
        seq,
        line,
        coalesce(waba_id, '') as waba_id,
        concat_ws(',',
            case when phone_text is not null then 'PHONE' end,
            case when country_code is not null then 'COUNTRY' end,
            case when conversation_category is not null then 'CONVERSATION_CATEGORY' end,
            case when conversation_type is not null then 'CONVERSATION_TYPE' end
        ) as dimensions,
        analytics_granularity(start_at, end_at) as granularity,
        start_at,
        end_at,
        coalesce(ltrim(phone_number, '+'), '') as phone_number,
        coalesce(country_code, '') as country_code,
        coalesce(conversation_category, '') as conversation_category,
        case conversation_type when 'free_entry' then 'free_entry_point' else coalesce(conversation_type, '') end
            as conversation_type,
        coalesce(conversation_direction, '') as conversation_direction,
        conversations,
        cost_micros,
        coalesce(pre_reason, problem[1]) as reason,
        case when pre_reason is not null then pre_detail else problem[2] end as detail,
        raw
    from checked
)

select * from final
