-- one row per open interval of a business number's business hours ([[phone_numbers]]
-- business_hours and holidays of convo.toml, in the number's timezone), plus one
-- zero-length row per number at the start of its range: opens_at / closes_at (UTC) and
-- business_seconds_before, the business seconds of the number's earlier intervals.
-- The business seconds between two instants a <= b of a number are B(b) - B(a), where
-- B(t) = business_seconds_before + least(seconds since opens_at, interval length) of
-- the last interval opening at or before t (an ASOF join): the clock stops outside
-- hours, on weekdays without hours and on holidays. A local day's hours are cut with
-- the day's own UTC offset, so a DST day is an hour shorter or longer only where its
-- hours span the change. Numbers without business_hours have no rows.
-- The range: from the local day before the first message to the day after the last
-- message or the as-of, whichever is later.
-- config: kind=cross-thread
with all_messages as (
    select * from stg_messages
),

numbers as (
    select * from phone_numbers
),

configured as (
    select * from ref_business_numbers
),

hours as (
    select * from ref_business_hours
),

holidays as (
    select * from ref_business_holidays
),

span as (
    select min(sent_at) as first_at, greatest(max(sent_at), max(getvariable('as_of'))) as last_at
    from all_messages
),

number_days as (
    select
        numbers.phone_number_id,
        numbers.timezone,
        cast(unnest(generate_series(
            cast(timezone(numbers.timezone, span.first_at) as date) - 1,
            cast(timezone(numbers.timezone, span.last_at) as date) + 1,
            interval 1 day)) as date) as local_date
    from numbers
    join configured
        on configured.phone_number_id = numbers.phone_number_id
    cross join span
    where span.first_at is not null
),

intervals as (
    select
        number_days.phone_number_id,
        timezone(number_days.timezone, number_days.local_date + to_seconds(hours.opens_second)) as opens_at,
        timezone(number_days.timezone, number_days.local_date + to_seconds(hours.closes_second)) as closes_at
    from number_days
    join hours
        on hours.phone_number_id = number_days.phone_number_id
        and hours.iso_weekday = isodow(number_days.local_date)
    left join holidays
        on holidays.phone_number_id = number_days.phone_number_id
        and holidays.holiday = number_days.local_date
    where holidays.holiday is null
),

range_starts as (
    select phone_number_id, timezone(any_value(timezone), cast(min(local_date) as timestamp)) as opens_at
    from number_days
    group by phone_number_id
),

with_start as (
    select phone_number_id, opens_at, closes_at from intervals
    union all
    select phone_number_id, opens_at, opens_at as closes_at from range_starts
),

final as (
    select
        phone_number_id,
        opens_at,
        closes_at,
        coalesce(sum(epoch(closes_at - opens_at)) over (
            partition by phone_number_id order by opens_at, closes_at
            rows between unbounded preceding and 1 preceding), 0) as business_seconds_before
    from with_start
)

select * from final
