-- one row per billing_month x phone_number_id x country_code x market x category x
-- pricing_type x tier: the days of costs_daily added up by local month (the billing
-- date is the business number's local date, DOMAIN R1, so its month is the billing month)
-- config: kind=monthly, month=billing_month
with days as (
    select * from costs_daily
),

final as (
    select
        cast(date_trunc('month', billing_date) as date) as billing_month,
        phone_number_id,
        country_code,
        market,
        category,
        pricing_type,
        tier,
        any_value(tenant_id) as tenant_id,
        cast(sum(units) as bigint) as units,
        sum(cost_micros) as cost_micros,
        cast(sum(unpriced_units) as bigint) as unpriced_units,
        any_value(currency) as currency
    from days
    group by all
)

select * from final
