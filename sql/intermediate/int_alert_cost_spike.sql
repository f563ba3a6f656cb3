-- one row per cost_spike alert: a local day whose cost for one phone number x market x
-- category (costs_daily, every country, pricing type and tier of the market together)
-- is far above that series' own trailing baseline.
-- * baseline: the series' cost on each of the alert_baseline_days days before, a day
--   without cost counting as 0, from the number's first billed day on and of the same
--   pricing regime only (int_alert_policy.regime: 2026-10-01 starts a new baseline).
-- * fires when the baseline holds at least alert_min_baseline_days days and the day's
--   cost is at least cost_spike_min_cost_micros, above the baseline's median by more
--   than cost_spike_mad_multiplier median absolute deviations (MAD), and more than
--   cost_spike_max_ratio times the baseline's costliest day (a regular campaign is in
--   the baseline; a new market or category starts from 0).
-- config: kind=cross-thread
with costs as (
    select * from costs_daily
),

thresholds as (
    select * from int_alert_policy
),

daily as (
    select
        billing_date as local_date,
        tenant_id,
        phone_number_id,
        market,
        category,
        any_value(currency) as currency,
        sum(coalesce(cost_micros, 0)) as cost_micros
    from costs
    group by billing_date, tenant_id, phone_number_id, market, category
),

number_days as (
    select phone_number_id, min(local_date) as first_date, max(local_date) as last_date
    from daily
    group by phone_number_id
),

series as (
    select tenant_id, phone_number_id, market, category, any_value(currency) as currency
    from daily
    where cost_micros > 0
    group by tenant_id, phone_number_id, market, category
),

days as (
    select
        phone_number_id,
        cast(unnest(generate_series(first_date, last_date, interval 1 day)) as date) as local_date
    from number_days
),

filled as (
    select
        series.tenant_id,
        series.phone_number_id,
        series.market,
        series.category,
        series.currency,
        days.local_date,
        thresholds.regime,
        coalesce(daily.cost_micros, 0) as cost_micros
    from series
    join days
        on days.phone_number_id = series.phone_number_id
    left join thresholds
        on thresholds.calendar_date = days.local_date
    left join daily
        on daily.phone_number_id = series.phone_number_id
        and daily.market is not distinct from series.market
        and daily.category is not distinct from series.category
        and daily.local_date = days.local_date
),

candidates as (
    select filled.*, thresholds.* exclude (calendar_date, regime)
    from filled
    join thresholds
        on thresholds.calendar_date = filled.local_date
    where filled.cost_micros >= thresholds.cost_spike_min_cost_micros
),

baselines as (
    select
        candidates.tenant_id,
        candidates.phone_number_id,
        candidates.market,
        candidates.category,
        candidates.local_date,
        count(*) as baseline_days,
        median(earlier.cost_micros) as baseline_median,
        mad(earlier.cost_micros) as baseline_mad,
        max(earlier.cost_micros) as baseline_max
    from candidates
    join filled as earlier
        on earlier.phone_number_id = candidates.phone_number_id
        and earlier.market is not distinct from candidates.market
        and earlier.category is not distinct from candidates.category
        and earlier.regime is not distinct from candidates.regime
        and earlier.local_date >= candidates.local_date - candidates.baseline_days
        and earlier.local_date < candidates.local_date
    group by all
),

fired as (
    select candidates.*, baselines.baseline_days, baselines.baseline_median, baselines.baseline_mad,
        baselines.baseline_max
    from candidates
    join baselines
        using (phone_number_id, market, category, local_date)
    where baselines.baseline_days >= candidates.min_baseline_days
        and candidates.cost_micros > baselines.baseline_median
            + candidates.cost_spike_mad_multiplier * baselines.baseline_mad
        and candidates.cost_micros > candidates.cost_spike_max_ratio * baselines.baseline_max
),

final as (
    select
        'cost_spike' as kind,
        cast(cost_spike_severity as integer) as severity_level,
        local_date,
        tenant_id,
        phone_number_id,
        market,
        cast(null as varchar) as country_code,
        category,
        cast(null as varchar) as template_name,
        'cost_micros' as measure,
        cast(cost_micros as double) as observed_value,
        cast(baseline_median as double) as expected_value,
        currency,
        format('{} cost {:.2f} {} on this number in {}; the {} days before (same regime) had a median '
            || 'of {:.2f} (MAD {:.2f}) and at most {:.2f}: it is over the median + {} MADs and over {} '
            || 'times the costliest of them, and at least {:.2f}',
            category, cost_micros / 1e6, currency, market, baseline_days, baseline_median / 1e6,
            baseline_mad / 1e6, baseline_max / 1e6, cost_spike_mad_multiplier, cost_spike_max_ratio,
            cost_spike_min_cost_micros / 1e6) as rule
    from fired
)

select * from final
