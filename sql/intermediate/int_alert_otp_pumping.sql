-- one row per otp_pumping alert: a local day on which one phone number sent
-- authentication templates (one-time codes) to many more recipients in one country than
-- it ever does, and almost none of them wrote back: the pattern of artificially
-- inflated traffic, where a fraudster triggers codes to premium numbers he is paid for.
-- * recipients: distinct contacts of the number and country sent an authentication
--   template that day (any status: the fraud pays on sends); baseline: the busiest day
--   of the alert_baseline_days days before for the same number and country (0 when it
--   sent none there), from the number's first message on.
-- * replied: of the day's recipients, those who sent the number any inbound message
--   within otp_pumping_reply_within_hours after their first code of the day.
-- * fires when the number has messages on at least alert_min_baseline_days of the
--   baseline's days, recipients >= otp_pumping_min_recipients, recipients >
--   otp_pumping_baseline_ratio x the baseline's busiest day, and replied / recipients <=
--   otp_pumping_max_reply_share.
-- config: kind=cross-thread
-- Read three times below, each scan reading only its columns (materialized, it held
-- every message in memory: 2.2-2.8 -> 1.3-1.4 CPU-s, 1.8 -> 0.55 GB at 10M; bench/README).
with all_messages as not materialized (
    select * from messages
),

thresholds as (
    select * from int_alert_policy
),

codes as (
    select tenant_id, phone_number_id, country_code, market, local_date, contact_key, min(sent_at) as first_sent_at
    from all_messages
    where direction = 'outbound' and is_template and category like 'authentication%'
    group by all
),

daily as (
    select tenant_id, phone_number_id, country_code, local_date,
        any_value(market) as market, count(*) as recipients
    from codes
    group by all
),

number_days as (
    select phone_number_id, min(local_date) as first_date
    from all_messages
    group by phone_number_id
),

candidates as (
    select daily.*, number_days.first_date, thresholds.* exclude (calendar_date)
    from daily
    join thresholds
        on thresholds.calendar_date = daily.local_date
    join number_days
        on number_days.phone_number_id = daily.phone_number_id
    where daily.recipients >= thresholds.otp_pumping_min_recipients
),

baselines as (
    select
        candidates.phone_number_id,
        candidates.country_code,
        candidates.local_date,
        coalesce(max(earlier.recipients), 0) as baseline_max
    from candidates
    left join daily as earlier
        on earlier.phone_number_id = candidates.phone_number_id
        and earlier.country_code is not distinct from candidates.country_code
        and earlier.local_date >= candidates.local_date - candidates.baseline_days
        and earlier.local_date < candidates.local_date
    group by all
),

replies as (
    select
        candidates.phone_number_id,
        candidates.country_code,
        candidates.local_date,
        count(distinct codes.contact_key) as replied
    from candidates
    join codes
        on codes.phone_number_id = candidates.phone_number_id
        and codes.country_code is not distinct from candidates.country_code
        and codes.local_date = candidates.local_date
    join all_messages as inbound
        on inbound.phone_number_id = codes.phone_number_id
        and inbound.contact_key = codes.contact_key
        and inbound.direction = 'inbound'
        and inbound.sent_at > codes.first_sent_at
        and inbound.sent_at <= codes.first_sent_at + to_hours(cast(candidates.otp_pumping_reply_within_hours as bigint))
    group by all
),

fired as (
    select
        candidates.*,
        baselines.baseline_max,
        coalesce(replies.replied, 0) as replied,
        least(candidates.baseline_days, candidates.local_date - candidates.first_date) as history_days
    from candidates
    join baselines
        using (phone_number_id, country_code, local_date)
    left join replies
        using (phone_number_id, country_code, local_date)
    where least(candidates.baseline_days, candidates.local_date - candidates.first_date) >= candidates.min_baseline_days
        and candidates.recipients > candidates.otp_pumping_baseline_ratio * baselines.baseline_max
        and coalesce(replies.replied, 0) <= candidates.otp_pumping_max_reply_share * candidates.recipients
),

final as (
    select
        'otp_pumping' as kind,
        cast(otp_pumping_severity as integer) as severity_level,
        local_date,
        tenant_id,
        phone_number_id,
        market,
        country_code,
        'authentication' as category,
        cast(null as varchar) as template_name,
        'recipients' as measure,
        cast(recipients as double) as observed_value,
        cast(baseline_max as double) as expected_value,
        cast(null as varchar) as currency,
        format('authentication templates went to {} recipients in {} from this number; on the {} days '
            || 'before it sent codes to at most {} there a day (over {} times that fires), and {} of '
            || 'them wrote back within {} hours (at most {:.0f}% may)',
            recipients, coalesce(country_code, 'an unknown country'), history_days, baseline_max,
            otp_pumping_baseline_ratio, replied, cast(otp_pumping_reply_within_hours as bigint),
            100 * otp_pumping_max_reply_share) as rule
    from fired
)

select * from final
