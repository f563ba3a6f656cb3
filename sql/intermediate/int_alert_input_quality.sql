-- one row per input_quality alert: a day of message input of which a far larger share
-- was quarantined (rejected with a reason) than usual.
-- * a day's input: the message files whose accepted records' latest timestamp falls on
--   that UTC day (the platform exports a file a day); its records: the accepted messages
--   (messages.source_file) plus the quarantined records of the same files (quarantine).
--   A file none of whose records was accepted has no day and is not judged here (the
--   quarantine lists it).
-- * baseline: the daily quarantined share on each of the alert_baseline_days days
--   before that had input; fires when it holds at least alert_min_baseline_days days,
--   the day has at least input_quality_min_records records, and its share exceeds the
--   baseline's median by more than input_quality_mad_multiplier MADs and by at least
--   input_quality_share_increase.
-- config: kind=cross-thread
with accepted_messages as (
    select * from messages
),

rejected as (
    select * from quarantine
),

thresholds as (
    select * from int_alert_policy
),

files as (
    select source_file, cast(max(sent_at) as date) as input_date, count(*) as accepted
    from accepted_messages
    where source_file is not null
    group by source_file
),

rejected_by_file as (
    select source_file, count(*) as quarantined, arg_max(reason, {'count': reason_count, 'reason': reason}) as top_reason
    from (
        select source_file, reason, count(*) over (partition by source_file, reason) as reason_count
        from rejected
    )
    group by source_file
),

daily as (
    select
        files.input_date as local_date,
        sum(files.accepted) as accepted,
        sum(coalesce(rejected_by_file.quarantined, 0)) as quarantined,
        sum(coalesce(rejected_by_file.quarantined, 0)) / (sum(files.accepted)
            + sum(coalesce(rejected_by_file.quarantined, 0))) as quarantined_share,
        arg_max(rejected_by_file.top_reason, {'count': rejected_by_file.quarantined, 'reason': rejected_by_file.top_reason})
            as top_reason
    from files
    left join rejected_by_file
        using (source_file)
    group by files.input_date
),

candidates as (
    select daily.*, thresholds.* exclude (calendar_date)
    from daily
    join thresholds
        on thresholds.calendar_date = daily.local_date
    where daily.accepted + daily.quarantined >= thresholds.input_quality_min_records
),

baselines as (
    select
        candidates.local_date,
        count(*) as baseline_days,
        median(earlier.quarantined_share) as baseline_median,
        mad(earlier.quarantined_share) as baseline_mad
    from candidates
    join daily as earlier
        on earlier.local_date >= candidates.local_date - candidates.baseline_days
        and earlier.local_date < candidates.local_date
    group by all
),

fired as (
    select candidates.*, baselines.baseline_days, baselines.baseline_median, baselines.baseline_mad
    from candidates
    join baselines
        using (local_date)
    where baselines.baseline_days >= candidates.min_baseline_days
        and candidates.quarantined_share > baselines.baseline_median
            + candidates.input_quality_mad_multiplier * baselines.baseline_mad
        and candidates.quarantined_share >= baselines.baseline_median + candidates.input_quality_share_increase
),

final as (
    select
        'input_quality' as kind,
        cast(input_quality_severity as integer) as severity_level,
        local_date,
        cast(null as bigint) as tenant_id,
        cast(null as bigint) as phone_number_id,
        cast(null as varchar) as market,
        cast(null as varchar) as country_code,
        cast(null as varchar) as category,
        cast(null as varchar) as template_name,
        'quarantined_share' as measure,
        quarantined_share as observed_value,
        baseline_median as expected_value,
        cast(null as varchar) as currency,
        format('{} of {} message records of this day''s input were quarantined ({:.1f}%, mostly {}); the '
            || '{} days before had a median of {:.1f}% (MAD {:.1f} points): over the median + {} MADs and '
            || '{:.0f} points more fire',
            quarantined, accepted + quarantined, 100 * quarantined_share, coalesce(top_reason, '?'),
            baseline_days, 100 * baseline_median, 100 * baseline_mad, input_quality_mad_multiplier,
            100 * input_quality_share_increase) as rule
    from fired
)

select * from final
