-- money wasted or messages lost (wasted_spend), one line per currency
with wasted as (
    select * from wasted_spend
),

money as (
    select 1000000 as micros_per_unit
),

per_reason as (
    select currency, reason, count(*) as messages, sum(cost_micros) as cost_micros
    from wasted
    group by currency, reason
),

final as (
    select
        format('wasted: {:,.2f} {} ({})',
            sum(per_reason.cost_micros) / any_value(money.micros_per_unit),
            per_reason.currency,
            string_agg(format('{} {:,} messages, {:,.2f}', per_reason.reason, per_reason.messages,
                per_reason.cost_micros / money.micros_per_unit), '; ' order by per_reason.reason)) as line
    from per_reason
    cross join money
    group by per_reason.currency
)

select line from final order by line
