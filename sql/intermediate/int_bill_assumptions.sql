-- one row per billing_month x category whose pricing rule in force carries a free allowance marked unconfirmed
-- config: kind=monthly, month=billing_month
-- (data/pricing_rules.csv free_allowance_status; DOMAIN R21: 1,000 free service messages
-- per business phone number and month, claimed by third parties only): which assumption
-- priced the month. is_free_allowance_applied says whether the allowance was applied
-- ([billing] assume_service_allowance, else assume_unconfirmed_allowance of
-- data/pricing_policy.csv); free_tier_units are the units it made free, charged_units
-- the units of the category charged that month. The cost report prints one line per row.
with rules as (
    select * from int_bill_rules_daily
    where scenario = 'actual' and free_allowance_status = 'unconfirmed'
),

units as (
    select * from billable_units
),

months as (
    select
        cast(date_trunc('month', calendar_date) as date) as billing_month,
        category,
        bool_and(is_free_allowance_applied) as is_free_allowance_applied,
        max(stated_free_allowance) as free_allowance,
        max(free_allowance_per) as free_allowance_per
    from rules
    group by all
),

month_units as (
    select
        billing_month,
        category,
        count(*) filter (where pricing_type = 'free_tier') as free_tier_units,
        count(*) filter (where pricing_type = 'regular') as charged_units
    from units
    group by all
),

final as (
    select
        months.billing_month,
        months.category,
        months.is_free_allowance_applied,
        months.free_allowance,
        months.free_allowance_per,
        coalesce(month_units.free_tier_units, 0) as free_tier_units,
        coalesce(month_units.charged_units, 0) as charged_units
    from months
    left join month_units
        on month_units.billing_month = months.billing_month
        and month_units.category = months.category
)

select * from final
