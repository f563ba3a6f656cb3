-- one row per local date x scenario x category: the pricing rule that prices a unit of
-- that category on that date (data/pricing_rules.csv). Scenario 'actual' is the regime
-- in force (switching at local midnight, DOMAIN R1, R27); scenario A, B, C ... is one
-- regime applied to every date (regime_whatif): its rule in force on the date, else its
-- nearest one (its first before it began, its last after it ended).
-- config: kind=cross-thread
with calendar as (
    select * from int_bill_calendar
),

rules as (
    select * from ref_pricing_rules
),

actual as (
    select
        calendar.calendar_date,
        'actual' as scenario,
        rules.*
    from calendar
    join rules
        on calendar.calendar_date >= rules.effective_from
        and (rules.effective_to is null or calendar.calendar_date < rules.effective_to)
),

what_if as (
    select
        calendar.calendar_date,
        rules.regime as scenario,
        rules.*,
        row_number() over (
            partition by calendar.calendar_date, rules.regime, rules.category
            order by rules.effective_from > calendar.calendar_date,
                abs(date_diff('day', rules.effective_from, calendar.calendar_date))
        ) as preference
    from calendar
    cross join rules
),

final as (
    select
        calendar_date, scenario, regime, pricing_model, category, in_entry_point_window, in_service_window,
        outside_service_window, rate_category, free_allowance, free_allowance_per, in_open_cbp_conversation
    from actual
    union all
    select
        calendar_date, scenario, regime, pricing_model, category, in_entry_point_window, in_service_window,
        outside_service_window, rate_category, free_allowance, free_allowance_per, in_open_cbp_conversation
    from what_if
    where preference = 1
)

select * from final
