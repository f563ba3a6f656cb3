-- the whole period's traffic re-priced under each regime (regime_whatif), per currency
with what_if as (
    select * from regime_whatif
),

money as (
    select 1000000 as micros_per_unit
),

actual as (
    select currency, sum(actual_cost_micros) as cost_micros
    from (select distinct billing_month, phone_number_id, currency, actual_cost_micros from what_if)
    group by currency
),

per_regime as (
    select currency, regime, sum(cost_micros) as cost_micros
    from what_if
    group by currency, regime
),

final as (
    select
        format('what-if: the same traffic priced under each regime, {}: {}; the actual bill {:,.2f}',
            per_regime.currency,
            string_agg(format('{} {:,.2f}', per_regime.regime, per_regime.cost_micros / money.micros_per_unit),
                ', ' order by per_regime.regime),
            any_value(actual.cost_micros) / any_value(money.micros_per_unit)) as line
    from per_regime
    join actual using (currency)
    cross join money
    group by per_regime.currency
)

select line from final order by line
