-- one row per window_waste alert: a local day on which charged templates delivered
-- inside an open customer service window (wasted_spend reason template_in_open_window:
-- a free-form reply would have been free there) took a much larger share of one phone
-- number's bill than they usually do.
-- * share: that waste's cost / the number's cost that day (costs_daily); baseline: the
--   median share over the alert_baseline_days days before with a cost, of the same
--   pricing regime.
-- * fires when the baseline holds at least alert_min_baseline_days days, the waste is
--   at least window_waste_min_cost_micros, and the share exceeds the baseline's median
--   by at least window_waste_share_increase.
-- config: kind=cross-thread
with waste as (
    select * from wasted_spend
),

costs as (
    select * from costs_daily
),

thresholds as (
    select * from int_alert_policy
),

daily_costs as (
    select billing_date as local_date, tenant_id, phone_number_id, any_value(currency) as currency,
        sum(coalesce(cost_micros, 0)) as cost_micros
    from costs
    group by all
    having sum(coalesce(cost_micros, 0)) > 0
),

daily_waste as (
    select billing_date as local_date, phone_number_id, sum(cost_micros) as waste_micros
    from waste
    where reason = 'template_in_open_window'
    group by all
),

daily as (
    select
        daily_costs.*,
        coalesce(daily_waste.waste_micros, 0) as waste_micros,
        coalesce(daily_waste.waste_micros, 0) / daily_costs.cost_micros as waste_share,
        thresholds.regime
    from daily_costs
    left join daily_waste
        using (phone_number_id, local_date)
    left join thresholds
        on thresholds.calendar_date = daily_costs.local_date
),

candidates as (
    select daily.*, thresholds.* exclude (calendar_date, regime)
    from daily
    join thresholds
        on thresholds.calendar_date = daily.local_date
    where daily.waste_micros >= thresholds.window_waste_min_cost_micros
),

baselines as (
    select
        candidates.phone_number_id,
        candidates.local_date,
        count(*) as baseline_days,
        median(earlier.waste_share) as baseline_median
    from candidates
    join daily as earlier
        on earlier.phone_number_id = candidates.phone_number_id
        and earlier.regime is not distinct from candidates.regime
        and earlier.local_date >= candidates.local_date - candidates.baseline_days
        and earlier.local_date < candidates.local_date
    group by all
),

fired as (
    select candidates.*, baselines.baseline_days, baselines.baseline_median
    from candidates
    join baselines
        using (phone_number_id, local_date)
    where baselines.baseline_days >= candidates.min_baseline_days
        and candidates.waste_share >= baselines.baseline_median + candidates.window_waste_share_increase
),

final as (
    select
        'window_waste' as kind,
        cast(window_waste_severity as integer) as severity_level,
        local_date,
        tenant_id,
        phone_number_id,
        cast(null as varchar) as market,
        cast(null as varchar) as country_code,
        cast(null as varchar) as category,
        cast(null as varchar) as template_name,
        'waste_share' as measure,
        waste_share as observed_value,
        baseline_median as expected_value,
        currency,
        format('charged templates sent inside an open window cost {:.2f} {}, {:.1f}% of the day''s bill '
            || '({:.2f}); the {} days before had a median share of {:.1f}%, and {:.0f} points more fire',
            waste_micros / 1e6, currency, 100 * waste_share, cost_micros / 1e6, baseline_days,
            100 * baseline_median, 100 * window_waste_share_increase) as rule
    from fired
)

select * from final
