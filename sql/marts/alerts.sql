-- one row per alert (kind x local_date x scope x measure): the scope is tenant_id,
-- phone_number_id, market, country_code, category, template_name where they apply. Written by every
-- build from the whole history (a baseline reaches back alert_baseline_days days, so
-- the model is cross-thread: recomputed in full after the per-thread stage and the
-- monthly models, which keeps incremental nights correct).
-- * kind: cost_spike, otp_pumping, failure_spike, window_waste, tier_change,
--   input_quality, reconciliation_drift (one int_alert_<kind> model each; README
--   "Alerts" says what each rule means); measure: what observed_value counts.
-- * severity: info, warning or critical (severity_level 1, 2, 3: <kind>_severity in
--   data/policy.csv, in force on the alert's day).
-- * local_date: the day in the number's timezone (input_quality: the input's UTC day).
-- * observed_value / expected_value: the day's value and the baseline's (for a share, a
--   fraction; for money, micro-units of currency); rule: why it fired, in words.
-- * alert_key: kind, day, scope and measure in one text: the same alert has the same
--   key in every build (convo nightly --fail-on tells new alerts by it).
-- config: kind=cross-thread
with cost_spikes as (
    select * from int_alert_cost_spike
),

otp_pumping as (
    select * from int_alert_otp_pumping
),

failure_spikes as (
    select * from int_alert_failure_spike
),

window_waste as (
    select * from int_alert_window_waste
),

tier_changes as (
    select * from int_alert_tier_change
),

input_quality as (
    select * from int_alert_input_quality
),

reconciliation_drift as (
    select * from int_alert_reconciliation_drift
),

unioned as (
    select * from cost_spikes
    union all by name
    select * from otp_pumping
    union all by name
    select * from failure_spikes
    union all by name
    select * from window_waste
    union all by name
    select * from tier_changes
    union all by name
    select * from input_quality
    union all by name
    select * from reconciliation_drift
),

final as (
    select
        concat_ws('|', kind, local_date, coalesce(cast(tenant_id as varchar), ''),
            coalesce(cast(phone_number_id as varchar), ''), coalesce(market, ''), coalesce(country_code, ''),
            coalesce(category, ''), coalesce(template_name, ''), measure) as alert_key,
        kind,
        case severity_level when 1 then 'info' when 2 then 'warning' when 3 then 'critical' end as severity,
        severity_level,
        local_date,
        tenant_id,
        phone_number_id,
        market,
        country_code,
        category,
        template_name,
        measure,
        observed_value,
        expected_value,
        currency,
        rule
    from unioned
)

select * from final
order by local_date, severity_level desc, kind, alert_key
