-- one row per input record of Meta's pricing_analytics data points (DOMAIN R26):
-- the typed fields, and the first problem found (reason, detail) or null when accepted.
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
            when phone_text is null then ['missing_required_field', 'phone_number']
            when country_code is null then ['missing_required_field', 'country']
            when pricing_category is null then ['missing_required_field', 'pricing_category']
            when pricing_type is null then ['missing_required_field', 'pricing_type']
            when volume_text is null then ['missing_required_field', 'volume']
            when volume is null or volume < 0 then ['bad_value', 'volume']
            when cost_text is not null and cost_micros is null then ['bad_value', 'cost']
            when not regexp_full_match(country_code, '[A-Z]{2}') then ['bad_value', 'country']
            when start_at is null then ['bad_timestamp', 'start']
            when end_text is not null and end_at is null then ['bad_timestamp', 'end']
            when not list_contains(getvariable('analytics_pricing_categories'), pricing_category)
                then ['unknown_enum', 'pricing_category']
            when not list_contains(getvariable('analytics_pricing_types'), pricing_type)
                then ['unknown_enum', 'pricing_type']
            when phone_number is null then ['unparseable_phone', 'phone_number']
        end as problem
    from costed
),

final as (
    select
        seq,
        line,
        start_at,
        end_at,
        ltrim(phone_number, '+') as phone_number,
        country_code,
        pricing_category,
        pricing_type,
        tier,
        volume,
        coalesce(cost_micros, 0) as cost_micros,
        coalesce(pre_reason, problem[1]) as reason,
        case when pre_reason is not null then pre_detail else problem[2] end as detail,
        raw
    from checked
)

select * from final
