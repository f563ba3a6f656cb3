-- one row per quarter x market x category x currency x tier: the rate card's tiers in
-- force during that quarter (DOMAIN R23: Meta changes rates only on quarter starts, and
-- the rate card loader rejects any other effective_from). A key's rows dated d replace
-- its earlier rows from d on.
-- config: kind=cross-thread
with rate_card as (
    select * from ref_rate_card
),

calendar as (
    select * from int_bill_calendar
),

quarters as (
    select distinct cast(date_trunc('quarter', calendar_date) as date) as quarter_start
    from calendar
),

keys as (
    select distinct market, category, currency
    from rate_card
),

editions as (
    select
        quarters.quarter_start,
        keys.market,
        keys.category,
        keys.currency,
        max(rate_card.effective_from) as effective_from
    from quarters
    cross join keys
    join rate_card
        on rate_card.market = keys.market
        and rate_card.category = keys.category
        and rate_card.currency = keys.currency
        and rate_card.effective_from <= quarters.quarter_start
    group by quarters.quarter_start, keys.market, keys.category, keys.currency
),

final as (
    select
        editions.quarter_start,
        rate_card.market,
        rate_card.category,
        rate_card.currency,
        rate_card.tier_from,
        rate_card.tier_to,
        rate_card.tier,
        rate_card.rate_micros,
        rate_card.effective_from
    from editions
    join rate_card
        on rate_card.market = editions.market
        and rate_card.category = editions.category
        and rate_card.currency = editions.currency
        and rate_card.effective_from = editions.effective_from
)

select * from final
