-- one row per local calendar date the messages span: the pricing regime and model in
-- force that day (data/pricing_rules.csv, switching at local midnight: DOMAIN R1, R27)
-- and every duration billing reads, as intervals, in force that day
-- (data/pricing_policy.csv; the customer service window from data/policy.csv, R4)
-- config: kind=cross-thread
with all_messages as (
    select * from stg_messages
),

numbers as (
    select * from phone_numbers
),

rules as (
    select * from ref_pricing_rules
),

pricing_policy as (
    select * from ref_pricing_policy
),

platform_policy as (
    select * from ref_policy
),

-- The first and last instant per business number, then its local dates (a time zone
-- conversion per number, not per message).
number_spans as (
    select
        phone_number_id,
        min(sent_at) as first_at,
        max(coalesce(delivered_at, sent_at)) as last_at
    from all_messages
    group by phone_number_id
),

span as (
    select
        min(cast(timezone(coalesce(numbers.timezone, 'UTC'), number_spans.first_at) as date)) as first_date,
        max(cast(timezone(coalesce(numbers.timezone, 'UTC'), number_spans.last_at) as date)) as last_date
    from number_spans
    left join numbers using (phone_number_id)
),

days as (
    select cast(unnest(generate_series(first_date, last_date, interval 1 day)) as date) as calendar_date
    from span
    where first_date is not null
),

durations as (
    select key, value, effective_from, effective_to
    from pricing_policy
    where unit = 'hours'
    union all
    select key, value, effective_from, effective_to
    from platform_policy
    where key = 'customer_service_window_hours'
),

day_durations as (
    select
        days.calendar_date,
        max(durations.value) filter (where durations.key = 'customer_service_window_hours') as customer_service_window_hours,
        max(durations.value) filter (where durations.key = 'cbp_conversation_hours') as cbp_conversation_hours,
        max(durations.value) filter (where durations.key = 'entry_point_reply_within_hours') as entry_point_reply_within_hours,
        max(durations.value) filter (where durations.key = 'entry_point_window_hours') as entry_point_window_hours,
        max(durations.value) filter (where durations.key = 're_engagement_reply_within_hours') as re_engagement_reply_within_hours
    from days
    left join durations
        on days.calendar_date >= durations.effective_from
        and (durations.effective_to is null or days.calendar_date < durations.effective_to)
    group by days.calendar_date
),

day_regimes as (
    select
        days.calendar_date,
        any_value(rules.regime) as regime,
        any_value(rules.pricing_model) as pricing_model
    from days
    join rules
        on days.calendar_date >= rules.effective_from
        and (rules.effective_to is null or days.calendar_date < rules.effective_to)
    group by days.calendar_date
),

final as (
    select
        day_durations.calendar_date,
        cast(date_trunc('month', day_durations.calendar_date) as date) as calendar_month,
        day_regimes.regime,
        day_regimes.pricing_model,
        to_hours(cast(day_durations.customer_service_window_hours as bigint)) as customer_service_window,
        to_hours(cast(day_durations.cbp_conversation_hours as bigint)) as cbp_conversation_length,
        to_hours(cast(day_durations.entry_point_reply_within_hours as bigint)) as entry_point_reply_within,
        to_hours(cast(day_durations.entry_point_window_hours as bigint)) as entry_point_window_length,
        to_hours(cast(day_durations.re_engagement_reply_within_hours as bigint)) as re_engagement_reply_within
    from day_durations
    left join day_regimes using (calendar_date)
)

select * from final
