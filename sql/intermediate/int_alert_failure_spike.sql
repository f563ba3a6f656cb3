-- one row per failure_spike alert: a local day on which far more of one phone number's
-- outbound messages failed than its own baseline says, on one of two measures:
-- * share_131047: of the day's free-form (non-template) sends, those Meta refused with
--   131047 because no customer service window was open (DOMAIN R5): a bot or an agent
--   tool answering too late, or messaging contacts who never wrote;
-- * share_failed: of all the day's outbound messages, those with status failed.
-- baseline: the measure's daily share on each of the alert_baseline_days days before
-- with at least one send, from the same pricing regime; fires when the baseline holds
-- at least alert_min_baseline_days days, the day has at least failure_spike_min_sends
-- sends, and its failures exceed the expected share (the baseline's median share plus
-- failure_spike_mad_multiplier MADs) of its sends by at least failure_spike_min_excess.
-- config: kind=cross-thread
with all_messages as (
    select * from messages
),

thresholds as (
    select * from int_alert_policy
),

outbound as (
    select * from all_messages
    where direction = 'outbound'
),

measures as (
    select tenant_id, phone_number_id, local_date, 'share_131047' as measure,
        count(*) as sends,
        count(*) filter (where error_code = 131047) as failures
    from outbound
    where not is_template
    group by all
    union all
    select tenant_id, phone_number_id, local_date, 'share_failed' as measure,
        count(*) as sends,
        count(*) filter (where status = 'failed') as failures
    from outbound
    group by all
),

daily as (
    select measures.*, failures / sends as failure_share, thresholds.regime
    from measures
    left join thresholds
        on thresholds.calendar_date = measures.local_date
),

candidates as (
    select daily.*, thresholds.* exclude (calendar_date, regime)
    from daily
    join thresholds
        on thresholds.calendar_date = daily.local_date
    where daily.sends >= thresholds.failure_spike_min_sends
        and daily.failures >= thresholds.failure_spike_min_excess
),

baselines as (
    select
        candidates.phone_number_id,
        candidates.measure,
        candidates.local_date,
        count(*) as baseline_days,
        median(earlier.failure_share) as baseline_median,
        mad(earlier.failure_share) as baseline_mad
    from candidates
    join daily as earlier
        on earlier.phone_number_id = candidates.phone_number_id
        and earlier.measure = candidates.measure
        and earlier.regime is not distinct from candidates.regime
        and earlier.local_date >= candidates.local_date - candidates.baseline_days
        and earlier.local_date < candidates.local_date
    group by all
),

fired as (
    select
        candidates.*,
        baselines.baseline_days,
        baselines.baseline_median,
        baselines.baseline_mad,
        baselines.baseline_median + candidates.failure_spike_mad_multiplier * baselines.baseline_mad as expected_share
    from candidates
    join baselines
        using (phone_number_id, measure, local_date)
    where baselines.baseline_days >= candidates.min_baseline_days
        and candidates.failures - candidates.sends
            * (baselines.baseline_median + candidates.failure_spike_mad_multiplier * baselines.baseline_mad)
            >= candidates.failure_spike_min_excess
),

final as (
    select
        'failure_spike' as kind,
        cast(failure_spike_severity as integer) as severity_level,
        local_date,
        tenant_id,
        phone_number_id,
        cast(null as varchar) as market,
        cast(null as varchar) as country_code,
        cast(null as varchar) as category,
        cast(null as varchar) as template_name,
        measure,
        failure_share as observed_value,
        baseline_median as expected_value,
        cast(null as varchar) as currency,
        format('{} of {} {} failed{} ({:.1f}%); the {} days before had a median of {:.1f}% (MAD {:.1f} '
            || 'points): that many failures exceed the median + {} MADs by {:.0f} messages, at least {} '
            || 'fire',
            failures, sends,
            case measure when 'share_131047' then 'free-form sends' else 'outbound messages' end,
            case measure when 'share_131047' then ' with 131047 (no open window)' else '' end,
            100 * failure_share, baseline_days, 100 * baseline_median, 100 * baseline_mad,
            cast(failure_spike_mad_multiplier as varchar), failures - sends * expected_share, cast(failure_spike_min_excess as bigint)) as rule
    from fired
)

select * from final
