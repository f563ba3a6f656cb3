-- one row per local day x phone_number_id x country_code x category x pricing_type
-- where our bill (billable_units) or Meta's pricing_analytics data points (DOMAIN R26)
-- have units: both volumes and costs, their differences, and is_beyond_tolerance when
-- they differ by more than analytics_tolerance_units units, or by more than
-- analytics_tolerance_ratio of the larger cost (data/pricing_policy.csv). Meta's data
-- point is placed on the local date of its start in the number's timezone (export it
-- with DAILY granularity); its phone_number is matched to phone_numbers'
-- display_phone_number. Only the days and numbers Meta's data covers are compared.
-- status: matched, only_ours, only_meta, or unknown_phone_number.
-- config: kind=cross-thread
with analytics as (
    select * from lake_pricing_analytics
),

numbers as (
    select * from phone_numbers
),

units as (
    select * from billable_units
),

meta_points as (
    select
        numbers.phone_number_id,
        analytics.phone_number,
        cast(timezone(coalesce(numbers.timezone, 'UTC'), analytics.start_at) as date) as billing_date,
        analytics.country_code,
        analytics.pricing_category as category,
        analytics.pricing_type,
        analytics.volume,
        analytics.cost_micros
    from analytics
    left join numbers
        on numbers.display_phone_number = analytics.phone_number
),

meta_days as (
    select
        phone_number_id,
        any_value(phone_number) as phone_number,
        billing_date,
        country_code,
        category,
        pricing_type,
        sum(volume) as meta_volume,
        sum(cost_micros) as meta_cost_micros
    from meta_points
    group by phone_number_id, case when phone_number_id is null then phone_number end, billing_date,
        country_code, category, pricing_type
),

coverage as (
    select phone_number_id, min(billing_date) as first_date, max(billing_date) as last_date
    from meta_points
    where phone_number_id is not null
    group by phone_number_id
),

our_days as (
    select
        units.phone_number_id,
        units.billing_date,
        units.country_code,
        replace(units.category, '-', '_') as category,
        units.pricing_type,
        count(*) as units,
        sum(units.cost_micros) as cost_micros,
        any_value(units.currency) as currency
    from units
    join coverage
        on coverage.phone_number_id = units.phone_number_id
        and units.billing_date between coverage.first_date and coverage.last_date
    group by units.phone_number_id, units.billing_date, units.country_code, replace(units.category, '-', '_'),
        units.pricing_type
),

compared as (
    select
        coalesce(our_days.billing_date, meta_days.billing_date) as billing_date,
        coalesce(our_days.phone_number_id, meta_days.phone_number_id) as phone_number_id,
        meta_days.phone_number,
        coalesce(our_days.country_code, meta_days.country_code) as country_code,
        coalesce(our_days.category, meta_days.category) as category,
        coalesce(our_days.pricing_type, meta_days.pricing_type) as pricing_type,
        coalesce(our_days.units, 0) as units,
        coalesce(meta_days.meta_volume, 0) as meta_volume,
        coalesce(our_days.cost_micros, 0) as cost_micros,
        coalesce(meta_days.meta_cost_micros, 0) as meta_cost_micros,
        our_days.currency,
        case
            when meta_days.phone_number is not null and meta_days.phone_number_id is null then 'unknown_phone_number'
            when meta_days.billing_date is null then 'only_ours'
            when our_days.billing_date is null then 'only_meta'
            else 'matched'
        end as status
    from our_days
    full outer join meta_days
        on meta_days.phone_number_id = our_days.phone_number_id
        and meta_days.billing_date = our_days.billing_date
        and meta_days.country_code is not distinct from our_days.country_code
        and meta_days.category = our_days.category
        and meta_days.pricing_type = our_days.pricing_type
),

final as (
    select
        *,
        units - meta_volume as volume_difference,
        cost_micros - meta_cost_micros as cost_difference_micros,
        status = 'unknown_phone_number'
            or abs(units - meta_volume) > getvariable('analytics_tolerance_units')
            or abs(cost_micros - meta_cost_micros)
                > getvariable('analytics_tolerance_ratio') * greatest(abs(cost_micros), abs(meta_cost_micros))
            as is_beyond_tolerance
    from compared
)

select * from final
