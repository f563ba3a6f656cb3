-- one row per local calendar date the messages span (int_bill_calendar): the alert
-- thresholds of data/policy.csv in force that day, one column per key (a key with no
-- row in force that day is null, and the rules that read it stay silent), and the
-- pricing regime of the day (a baseline holds days of the same regime only).
-- config: kind=cross-thread
with calendar as (
    select * from int_bill_calendar
),

policy as (
    select * from ref_policy
),

in_force as (
    select
        calendar.calendar_date,
        policy.key,
        policy.value
    from calendar
    join policy
        on policy.effective_from <= calendar.calendar_date
        and (policy.effective_to is null or calendar.calendar_date < policy.effective_to)
),

pivoted as (
    select
        calendar_date,
        cast(max(value) filter (where key = 'alert_baseline_days') as integer) as baseline_days,
        cast(max(value) filter (where key = 'alert_min_baseline_days') as integer) as min_baseline_days,
        max(value) filter (where key = 'cost_spike_min_cost_micros') as cost_spike_min_cost_micros,
        max(value) filter (where key = 'cost_spike_mad_multiplier') as cost_spike_mad_multiplier,
        max(value) filter (where key = 'cost_spike_max_ratio') as cost_spike_max_ratio,
        max(value) filter (where key = 'cost_spike_severity') as cost_spike_severity,
        max(value) filter (where key = 'otp_pumping_min_recipients') as otp_pumping_min_recipients,
        max(value) filter (where key = 'otp_pumping_baseline_ratio') as otp_pumping_baseline_ratio,
        max(value) filter (where key = 'otp_pumping_max_reply_share') as otp_pumping_max_reply_share,
        max(value) filter (where key = 'otp_pumping_reply_within_hours') as otp_pumping_reply_within_hours,
        max(value) filter (where key = 'otp_pumping_severity') as otp_pumping_severity,
        max(value) filter (where key = 'failure_spike_min_sends') as failure_spike_min_sends,
        max(value) filter (where key = 'failure_spike_mad_multiplier') as failure_spike_mad_multiplier,
        max(value) filter (where key = 'failure_spike_min_excess') as failure_spike_min_excess,
        max(value) filter (where key = 'failure_spike_severity') as failure_spike_severity,
        max(value) filter (where key = 'window_waste_min_cost_micros') as window_waste_min_cost_micros,
        max(value) filter (where key = 'window_waste_share_increase') as window_waste_share_increase,
        max(value) filter (where key = 'window_waste_severity') as window_waste_severity,
        max(value) filter (where key = 'tier_change_severity') as tier_change_severity,
        max(value) filter (where key = 'input_quality_min_records') as input_quality_min_records,
        max(value) filter (where key = 'input_quality_mad_multiplier') as input_quality_mad_multiplier,
        max(value) filter (where key = 'input_quality_share_increase') as input_quality_share_increase,
        max(value) filter (where key = 'input_quality_severity') as input_quality_severity,
        max(value) filter (where key = 'reconciliation_min_agreement') as reconciliation_min_agreement,
        max(value) filter (where key = 'reconciliation_min_compared') as reconciliation_min_compared,
        max(value) filter (where key = 'reconciliation_drift_severity') as reconciliation_drift_severity
    from in_force
    group by calendar_date
),

final as (
    select
        calendar.calendar_date,
        calendar.regime,
        pivoted.* exclude (calendar_date)
    from calendar
    left join pivoted using (calendar_date)
)

select * from final
