-- the bill in one line per currency: cost, charged and free units, the dates it spans;
-- then a warning line when some units could not be priced (no rule, or no rate)
with units as (
    select * from billable_units
),

money as (
    select 1000000 as micros_per_unit
),

per_currency as (
    select
        currency,
        sum(cost_micros) as cost_micros,
        count(*) filter (where pricing_type = 'regular') as charged_units,
        count(*) filter (where pricing_type <> 'regular') as free_units,
        count(*) filter (where cost_micros is null) as unpriced_units,
        min(billing_date) as first_date,
        max(billing_date) as last_date
    from units
    group by currency
),

lines as (
    select
        currency,
        0 as position,
        format('bill: {:,.2f} {} for {:,} charged units ({:,} free) from {} to {}',
            coalesce(cost_micros, 0) / money.micros_per_unit, currency, charged_units, free_units,
            first_date, last_date) as line
    from per_currency
    cross join money
    union all
    select
        currency,
        1 as position,
        format('  {:,} {} units have no price (no rule for their date or category, or no rate in the card): '
            'see billable_units where cost_micros is null', unpriced_units, currency) as line
    from per_currency
    where unpriced_units > 0
),

final as (
    select line from lines order by currency, position
)

select * from final
