-- one row per billing_month x phone_number_id x regime: the month's traffic re-priced as
-- if that regime (data/pricing_rules.csv: A = CBP, B = PMP, C = PMP from 2026-10) had
-- applied to every day, with its allowances and volume tiers recounted, next to the
-- actual bill (billable_units) of the same month and number. A regime's rules are taken
-- from the date itself when the regime was in force then, else from its nearest period.
-- Rates are always the card's for the date; a regime that prices a category the card
-- has no rate for (e.g. CBP service conversations before the card starts) leaves those
-- units in unpriced_units.
-- config: kind=monthly, month=billing_month
-- The what-if units are priced by sql/functions/bill_price.sql, as the bill is, and
-- only added up here (they are never stored).
with bill_messages as not materialized (
    select * from int_bill_messages
),

rules as (
    select * from int_bill_rules_daily
),

numbers as (
    select * from phone_numbers
),

rates as (
    select * from int_bill_rate_quarters
),

what_if_units as (
    select * from bill_price('bill_messages', 'rules', 'numbers', 'rates', false)
),

bill as (
    select * from billable_units
),

what_if as (
    select
        billing_month,
        phone_number_id,
        scenario as regime,
        any_value(pricing_model) as pricing_model,
        any_value(tenant_id) as tenant_id,
        any_value(currency) as currency,
        count(*) as units,
        count(*) filter (where pricing_type = 'regular') as charged_units,
        sum(rate_micros) as cost_micros,
        count(*) filter (where rate_micros is null) as unpriced_units
    from what_if_units
    group by billing_month, phone_number_id, scenario
),

actual as (
    select
        billing_month,
        phone_number_id,
        sum(cost_micros) as actual_cost_micros,
        count(*) filter (where pricing_type = 'regular') as actual_charged_units,
        string_agg(distinct regime, ', ' order by regime) as actual_regimes
    from bill
    group by billing_month, phone_number_id
),

final as (
    select
        what_if.billing_month,
        what_if.phone_number_id,
        what_if.tenant_id,
        what_if.regime,
        what_if.pricing_model,
        what_if.units,
        what_if.charged_units,
        what_if.cost_micros,
        what_if.unpriced_units,
        what_if.currency,
        actual.actual_regimes,
        actual.actual_charged_units,
        actual.actual_cost_micros,
        what_if.cost_micros - actual.actual_cost_micros as difference_micros
    from what_if
    left join actual using (billing_month, phone_number_id)
)

select * from final
