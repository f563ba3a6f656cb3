-- one row per billing_month x phone_number_id x country_code x market x category x
-- pricing_type x tier: units and cost of the bill (billable_units), free units included;
-- unpriced_units counts units without a rule or a rate (their cost is not in cost_micros)
-- config: kind=monthly, month=billing_month
with units as (
    select * from billable_units
),

final as (
    select
        billing_month,
        phone_number_id,
        country_code,
        market,
        category,
        pricing_type,
        tier,
        any_value(tenant_id) as tenant_id,
        count(*) as units,
        sum(cost_micros) as cost_micros,
        count(*) filter (where cost_micros is null) as unpriced_units,
        any_value(currency) as currency
    from units
    group by billing_month, phone_number_id, country_code, market, category, pricing_type, tier
)

select * from final
