-- one row per Meta analytics API x WABA x grain (granularity, dimensions) x period x
-- the values of the file's dimensions (null = all): the dimensions the request named
-- (phone number, country, category, pricing type; null where the request did not name
-- the dimension: all of them), where convo's units (billable_units) or Meta's
-- data points have units (DOMAIN R26). api pricing_analytics compares convo's PMP units (R18-R21)
-- with Meta's pricing_analytics; api conversation_analytics compares convo's CBP conversations
-- (R13-R17) with Meta's conversation_analytics. convo's units are rolled up to the grain of
-- Meta's file: a unit counts in the period of that grain which holds its started_at (the
-- delivery time; Meta's periods are local days or months of the WABA's timezone, or half hours),
-- so a WABA-level monthly file reconciles as well as a per-number daily one. Only the periods
-- Meta's data covers are compared, per WABA: a WABA is the response's id, else the WABA of the
-- phone_number in convo.toml ([[phone_numbers]] waba_id, display_phone_number).
-- Tiers (R24) and directions are not part of the grain: meta_tiers and our_tiers show, side by
-- side, the tiers Meta reports and those convo computed; meta_directions Meta's conversation
-- directions. Categories are compared as Meta writes them (authentication_international); a
-- category convo does not price (is_priced_by_convo false, e.g. marketing_lite) is counted and
-- shown as only_meta, never dropped. For conversation_analytics, a free entry point conversation
-- is compared as category referral_conversion (R27; Meta's example files it under SERVICE), and
-- convo's free service conversations from 2024-11-01 (free_customer_service, R16) as type regular,
-- the only type Meta's conversation_analytics has for a conversation neither free tier nor free
-- entry point. meta_cost_micros is null where Meta gave no cost (a WABA on a partner's credit
-- line): volume only. is_beyond_tolerance when the volumes differ by more than
-- analytics_tolerance_units, or the costs (where Meta gave one) by more than
-- analytics_tolerance_ratio of the larger (data/pricing_policy.csv).
-- status: matched, only_ours, only_meta, unknown_phone_number (a number without
-- display_phone_number in convo.toml) or unknown_waba (a response id not in convo.toml).
-- config: kind=cross-thread
with pricing_points as (
    select * from lake_pricing_analytics
),

conversation_points as (
    select * from lake_conversation_analytics
),

numbers as (
    select * from phone_numbers
),

units as (
    select * from billable_units
),

rules as (
    select * from int_bill_rules_daily
),

priced_categories as (
    select distinct replace(category, '-', '_') as category
    from rules
),

wabas as (
    select waba_id, min(timezone) as timezone        -- one timezone per WABA (DOMAIN R1)
    from numbers
    group by waba_id
),

meta_raw as (
    select
        'pricing_analytics' as api,
        waba_id,
        granularity,
        dimensions,
        start_at,
        end_at,
        phone_number,
        country_code,
        pricing_category as category,
        pricing_type,
        tier,
        '' as direction,
        volume,
        cost_micros
    from pricing_points
    union all by name
    select
        'conversation_analytics' as api,
        waba_id,
        granularity,
        dimensions,
        start_at,
        end_at,
        phone_number,
        country_code,
        case
            when conversation_type = 'free_entry_point' and conversation_category <> '' then 'referral_conversion'
            else conversation_category
        end as category,
        conversation_type as pricing_type,
        '' as tier,
        conversation_direction as direction,
        conversations as volume,
        cost_micros
    from conversation_points
),

meta_points as (
    select
        meta_raw.*,
        numbers.phone_number_id,
        coalesce(nullif(meta_raw.waba_id, ''), numbers.waba_id) as resolved_waba_id,
        case
            when meta_raw.phone_number <> '' and numbers.phone_number_id is null then 'unknown_phone_number'
            when coalesce(nullif(meta_raw.waba_id, ''), numbers.waba_id) not in (select waba_id from wabas)
                or coalesce(nullif(meta_raw.waba_id, ''), numbers.waba_id) is null then 'unknown_waba'
        end as problem
    from meta_raw
    left join numbers
        on meta_raw.phone_number <> ''
        and numbers.display_phone_number = meta_raw.phone_number
),

meta_rows as (
    select
        api,
        resolved_waba_id as waba_id,
        granularity,
        dimensions,
        start_at,
        end_at,
        phone_number_id,
        nullif(phone_number, '') as phone_number,
        nullif(country_code, '') as country_code,
        nullif(category, '') as category,
        nullif(pricing_type, '') as pricing_type,
        any_value(problem) as problem,
        sum(volume) as meta_volume,
        sum(cost_micros) as meta_cost_micros,
        string_agg(distinct nullif(tier, ''), ', ' order by nullif(tier, '')) as meta_tiers,
        string_agg(distinct nullif(direction, ''), ', ' order by nullif(direction, '')) as meta_directions
    from meta_points
    group by all
),

-- The periods Meta's data covers, per WABA and grain (points of a known WABA only).
periods as (
    select distinct api, resolved_waba_id as waba_id, granularity, dimensions, start_at, end_at
    from meta_points
    where problem is null
),

grains as (
    select distinct api, waba_id, granularity, dimensions
    from periods
),

our_units as (
    select
        case units.pricing_model when 'CBP' then 'conversation_analytics' else 'pricing_analytics' end as api,
        numbers.waba_id,
        units.phone_number_id,
        numbers.display_phone_number,
        units.started_at,
        units.country_code,
        case
            when units.pricing_model = 'CBP' and units.pricing_type = 'free_entry_point' then 'referral_conversion'
            else replace(units.category, '-', '_')
        end as category,
        case
            when units.pricing_model = 'CBP' and units.pricing_type = 'free_customer_service' then 'regular'
            else units.pricing_type
        end as pricing_type,
        units.tier,
        units.cost_micros,
        units.currency
    from units
    join numbers
        on numbers.phone_number_id = units.phone_number_id
),

unit_grains as (
    select
        our_units.*,
        grains.granularity,
        grains.dimensions,
        string_split(grains.dimensions, ',') as dimension_list
    from our_units
    join grains
        on grains.api = our_units.api
        and grains.waba_id = our_units.waba_id
),

-- Each unit in the latest period of its grain starting at or before it, kept when it ends after it.
unit_periods as (
    select
        unit_grains.*,
        periods.start_at,
        periods.end_at
    from unit_grains
    asof join periods
        on periods.api = unit_grains.api
        and periods.waba_id = unit_grains.waba_id
        and periods.granularity = unit_grains.granularity
        and periods.dimensions = unit_grains.dimensions
        and unit_grains.started_at >= periods.start_at
    where unit_grains.started_at < periods.end_at
),

our_rows as (
    select
        api,
        waba_id,
        granularity,
        dimensions,
        start_at,
        end_at,
        case when list_contains(dimension_list, 'PHONE') then phone_number_id end as phone_number_id,
        case when list_contains(dimension_list, 'PHONE') then display_phone_number end as phone_number,
        case when list_contains(dimension_list, 'COUNTRY') then country_code end as country_code,
        case when list_contains(dimension_list, 'PRICING_CATEGORY')
            or list_contains(dimension_list, 'CONVERSATION_CATEGORY') then category end as category,
        case when list_contains(dimension_list, 'PRICING_TYPE')
            or list_contains(dimension_list, 'CONVERSATION_TYPE') then pricing_type end as pricing_type,
        count(*) as units,
        sum(cost_micros) as cost_micros,
        string_agg(distinct nullif(tier, ''), ', ' order by nullif(tier, '')) as our_tiers,
        any_value(currency) as currency
    from unit_periods
    group by all
),

compared as (
    select
        coalesce(our_rows.api, meta_rows.api) as api,
        coalesce(our_rows.waba_id, meta_rows.waba_id) as waba_id,
        coalesce(our_rows.granularity, meta_rows.granularity) as granularity,
        coalesce(our_rows.dimensions, meta_rows.dimensions) as dimensions,
        coalesce(our_rows.start_at, meta_rows.start_at) as period_start_at,
        coalesce(our_rows.end_at, meta_rows.end_at) as period_end_at,
        coalesce(our_rows.phone_number_id, meta_rows.phone_number_id) as phone_number_id,
        coalesce(our_rows.phone_number, meta_rows.phone_number) as phone_number,
        coalesce(our_rows.country_code, meta_rows.country_code) as country_code,
        coalesce(our_rows.category, meta_rows.category) as category,
        coalesce(our_rows.pricing_type, meta_rows.pricing_type) as pricing_type,
        coalesce(our_rows.units, 0) as units,
        coalesce(meta_rows.meta_volume, 0) as meta_volume,
        coalesce(our_rows.cost_micros, 0) as cost_micros,
        case when meta_rows.api is null then 0 else meta_rows.meta_cost_micros end as meta_cost_micros,
        our_rows.currency,
        our_rows.our_tiers,
        meta_rows.meta_tiers,
        meta_rows.meta_directions,
        case
            when meta_rows.problem is not null then meta_rows.problem
            when meta_rows.api is null then 'only_ours'
            when our_rows.api is null then 'only_meta'
            else 'matched'
        end as status
    from our_rows
    full outer join meta_rows
        on meta_rows.api = our_rows.api
        and meta_rows.waba_id = our_rows.waba_id
        and meta_rows.granularity = our_rows.granularity
        and meta_rows.dimensions = our_rows.dimensions
        and meta_rows.start_at = our_rows.start_at
        and meta_rows.end_at = our_rows.end_at
        and meta_rows.phone_number_id is not distinct from our_rows.phone_number_id
        and meta_rows.phone_number is not distinct from our_rows.phone_number
        and meta_rows.country_code is not distinct from our_rows.country_code
        and meta_rows.category is not distinct from our_rows.category
        and meta_rows.pricing_type is not distinct from our_rows.pricing_type
        and meta_rows.problem is null
),

final as (
    select
        compared.api,
        compared.waba_id,
        compared.granularity,
        compared.dimensions,
        compared.period_start_at,
        compared.period_end_at,
        cast(timezone(coalesce(wabas.timezone, 'UTC'), compared.period_start_at) as date) as billing_date,
        compared.phone_number_id,
        compared.phone_number,
        compared.country_code,
        compared.category,
        compared.pricing_type,
        compared.units,
        compared.meta_volume,
        compared.cost_micros,
        compared.meta_cost_micros,
        compared.currency,
        compared.our_tiers,
        compared.meta_tiers,
        compared.meta_directions,
        compared.category is null or compared.category in (select category from priced_categories)
            as is_priced_by_convo,
        compared.status,
        compared.units - compared.meta_volume as volume_difference,
        compared.cost_micros - compared.meta_cost_micros as cost_difference_micros,
        compared.status in ('unknown_phone_number', 'unknown_waba')
            or abs(compared.units - compared.meta_volume) > getvariable('analytics_tolerance_units')
            or coalesce(abs(compared.cost_micros - compared.meta_cost_micros)
                > getvariable('analytics_tolerance_ratio')
                    * greatest(abs(compared.cost_micros), abs(compared.meta_cost_micros)), false)
            as is_beyond_tolerance
    from compared
    left join wabas
        on wabas.waba_id = compared.waba_id
)

select * from final
