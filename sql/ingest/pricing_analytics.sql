-- one row per input record of Meta's pricing_analytics data points (DOMAIN R26): the typed fields, and
-- the first problem found (reason, detail) or null when accepted.
-- A data point carries only the dimensions its request named (dimensions(PHONE, COUNTRY,
-- PRICING_CATEGORY, PRICING_TYPE, TIER)): a field it lacks is "all" (''), never an error, and
-- `dimensions` lists the ones it has, which is the grain analytics_reconciliation compares it
-- at. TIER is no part of that grain: Meta gives free messages no tier. Any well-formed
-- category is kept, those Meta documents and new ones alike (one convo does not price is
-- counted and shown, never dropped); a point without cost (a WABA on a partner's credit line,
-- or a request without COST) has a null cost_micros.
-- Reads: records(seq, line, raw, pre_reason, pre_detail, field): field holds the data
-- point's fields as VARCHAR; made by pricing_analytics_json.sql from JSON text, or straight
-- from a Parquet file's columns (pipeline/ingest.py).
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
        replace(lower(blank_to_null(field.pricing_category)), '-', '_') as pricing_category,
        lower(blank_to_null(field.pricing_type)) as pricing_type,
        coalesce(trim(field.tier), '') as tier,
        regexp_extract(trim(field.tier), '^([0-9]{1,18}):([0-9]{1,18}|MAX)?$', ['lower', 'upper']) as tier_parts,
        blank_to_null(field.volume) as volume_text,
        parse_int(field.volume) as volume,
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
            when volume_text is null then ['missing_required_field', 'volume']
            when volume is null or volume < 0 then ['bad_value', 'volume']
            when cost_text is not null and cost_micros is null then ['bad_value', 'cost']
            when not regexp_full_match(country_code, '[A-Z]{2}') then ['bad_value', 'country']
            when not regexp_full_match(pricing_category, '[a-z][a-z0-9_]{0,63}') then ['bad_value', 'pricing_category']
            when tier <> '' and tier_parts.lower = '' then ['bad_value', 'tier']
            when start_at is null then ['bad_timestamp', 'start']
            when end_at is null then ['bad_timestamp', 'end']
            when end_at <= start_at then ['bad_value', 'end']
            when not list_contains(getvariable('analytics_pricing_types'), pricing_type)
                then ['unknown_enum', 'pricing_type']
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
            case when pricing_category is not null then 'PRICING_CATEGORY' end,
            case when pricing_type is not null then 'PRICING_TYPE' end
        ) as dimensions,
        analytics_granularity(start_at, end_at) as granularity,
        start_at,
        end_at,
        coalesce(ltrim(phone_number, '+'), '') as phone_number,
        coalesce(country_code, '') as country_code,
        coalesce(pricing_category, '') as pricing_category,
        coalesce(pricing_type, '') as pricing_type,
        tier,
        try_cast(nullif(tier_parts.lower, '') as bigint) as tier_lower,
        try_cast(nullif(tier_parts.upper, 'MAX') as bigint) as tier_upper,
        volume,
        cost_micros,
        coalesce(pre_reason, problem[1]) as reason,
        case when pre_reason is not null then pre_detail else problem[2] end as detail,
        raw
    from checked
)

select * from final
