-- one row per local date x scenario x category: the pricing rule that prices a unit of
-- that category on that date (data/pricing_rules.csv). Scenario 'actual' is the regime
-- in force (switching at local midnight, DOMAIN R1, R27); scenario A, B, C ... is one
-- regime applied to every date (regime_whatif): its rule in force on the date, else its
-- nearest one (its first before it began, its last after it ended).
-- free_allowance is the allowance that prices the date's units: a rule's allowance
-- marked unconfirmed (DOMAIN R21) only when assumed (is_free_allowance_applied, set by
-- pipeline/pricing.py from pricing_policy.csv or [billing] assume_service_allowance);
-- stated_free_allowance is the rule's figure either way. volume_tiers: tiered units
-- count in their rate category's tiers (R24), untiered ones (regime C service, R21)
-- are priced at its first tier and counted nowhere.
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

chosen as (
    select
        calendar_date, scenario, regime, pricing_model, category, in_entry_point_window, in_service_window,
        outside_service_window, rate_category, free_allowance, free_allowance_per, free_allowance_status,
        is_free_allowance_applied, in_open_cbp_conversation, volume_tiers
    from actual
    union all
    select
        calendar_date, scenario, regime, pricing_model, category, in_entry_point_window, in_service_window,
        outside_service_window, rate_category, free_allowance, free_allowance_per, free_allowance_status,
        is_free_allowance_applied, in_open_cbp_conversation, volume_tiers
    from what_if
    where preference = 1
),

final as (
    select
        calendar_date, scenario, regime, pricing_model, category, in_entry_point_window, in_service_window,
        outside_service_window, rate_category,
        case when is_free_allowance_applied then free_allowance end as free_allowance,
        free_allowance_per, free_allowance_status, is_free_allowance_applied,
        free_allowance as stated_free_allowance,
        in_open_cbp_conversation, volume_tiers
    from chosen
)

select * from final
