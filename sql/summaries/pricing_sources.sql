-- one line per currency: the share of the bill priced from sourced rates (confidence high,
-- medium or low) and from illustrative or unlabelled ones (DOMAIN R23). Each charged unit
-- is matched to the rate card row it was priced at: the row of its (market, rate
-- category, currency, tier) in the edition in force at its billing quarter's start.
-- A unit priced from a row without a sourced confidence counts as illustrative.
with units as (
    select * from billable_units
),

rate_card as (
    select * from ref_rate_card
),

money as (
    select 1000000 as micros_per_unit
),

charged as (
    select
        cast(date_trunc('quarter', billing_date) as date) as quarter_start,
        market,
        rate_category,
        currency,
        tier,
        sum(cost_micros) as cost_micros
    from units
    where cost_micros > 0
    group by all
),

editions as (
    select
        keys.quarter_start,
        keys.market,
        keys.rate_category,
        keys.currency,
        max(rate_card.effective_from) as effective_from
    from (select distinct quarter_start, market, rate_category, currency from charged) as keys
    join rate_card
        on rate_card.market = keys.market
        and rate_card.category = keys.rate_category
        and rate_card.currency = keys.currency
        and rate_card.effective_from <= keys.quarter_start
    group by all
),

priced_from as (
    select
        charged.currency,
        charged.cost_micros,
        coalesce(rate_card.confidence, 'unlabelled') as confidence,
        rate_card.file
    from charged
    left join editions
        on editions.quarter_start = charged.quarter_start
        and editions.market = charged.market
        and editions.rate_category = charged.rate_category
        and editions.currency = charged.currency
    left join rate_card
        on rate_card.market = charged.market
        and rate_card.category = charged.rate_category
        and rate_card.currency = charged.currency
        and rate_card.effective_from = editions.effective_from
        -- an untiered unit (regime C service, R21) has no tier: its first tier's rate
        and (rate_card.tier = charged.tier or (charged.tier is null and rate_card.tier_from = 1))
),

per_currency as (
    select
        currency,
        sum(cost_micros) as cost_micros,
        coalesce(sum(cost_micros) filter (where confidence in ('high', 'medium', 'low')), 0) as sourced_micros,
        coalesce(sum(cost_micros) filter (where confidence = 'high'), 0) as high_micros,
        coalesce(sum(cost_micros) filter (where confidence = 'medium'), 0) as medium_micros,
        coalesce(sum(cost_micros) filter (where confidence = 'low'), 0) as low_micros,
        string_agg(distinct file, ', ' order by file) as files
    from priced_from
    group by currency
),

final as (
    select
        format('pricing sources, {}: of the {:,.2f} charged, {:.1f}% priced from sourced rates '
            '(high {:.1f}%, medium {:.1f}%, low {:.1f}%), {:.1f}% from illustrative or unsourced rates '
            '(rate card: {})',
            currency, cost_micros / money.micros_per_unit,
            100.0 * sourced_micros / cost_micros, 100.0 * high_micros / cost_micros,
            100.0 * medium_micros / cost_micros, 100.0 * low_micros / cost_micros,
            100.0 * (cost_micros - sourced_micros) / cost_micros, coalesce(files, 'no row matched')) as line
    from per_currency
    cross join money
    order by currency
)

select * from final
