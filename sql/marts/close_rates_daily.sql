-- one row per local day x phone_number_id with at least one conversation started:
-- the conversations that STARTED that day (conversation_outcomes.local_start_date, in
-- the number's timezone) and what became of them as of the build's as-of.
-- * agent_closes, manual_closes, timeouts: ended for that reason; still_open: not
--   ended yet. They add up to conversations_started.
-- * engaged_conversations: those in which the contact wrote at least once; the rest
--   were opened by a template nobody answered (a campaign, a notification): nobody
--   has anything to close there and they time out, so they are kept out of the rate.
--   engaged_agent_closes, engaged_manual_closes, engaged_still_open: of those.
-- * close_rate = (engaged_agent_closes + engaged_manual_closes) / engaged_conversations:
--   the share of the day's engaged conversations an operator closed. One still open
--   counts as not closed (yet): a day with open conversations is provisional and its
--   rate can only rise. Null when none was engaged.
-- * first response (conversation_outcomes.first_response_seconds), over the
--   conversations answered: first_responses (how many), median, p90, mean.
--   unanswered: conversations with an inbound message but no human reply yet.
--   first_response_<bucket>: conversations per first-response bucket (the column
--   names are the shipped buckets of data/policy.csv, first_response_bucket_N_max_hours;
--   bucket 1 is the fastest); they add up to first_responses.
-- * replies: every answered wait (conversation_outcomes.reply_seconds) of these
--   conversations, not only the first: exchanges (how many), median, p90, mean.
-- * business time (conversation_outcomes' business columns; null for a number without
--   business_hours): first_response_business_median_seconds and _p90_seconds over the
--   answered conversations, reply_business_median_seconds and _p90_seconds over every
--   answered wait.
-- * p90 is quantile_cont(x, 0.9): continuous, interpolated linearly between the two
--   nearest order statistics (position 0.9 * (n - 1) in the sorted values, counted
--   from 0); the median is quantile_cont(x, 0.5). Seconds keep their fractions.
-- * reopens: conversations opened by the contact after an operator's close (R9).
-- * a day's row reads only the conversations started that day: an incremental night
--   recomputes the months from the first one whose conversation_outcomes changed (monthly).
-- config: kind=monthly, month=local_date
with outcomes as (
    select * from conversation_outcomes
),

daily_conversations as (
    select
        local_start_date as local_date,
        tenant_id,
        phone_number_id,
        count(*) as conversations_started,
        count(*) filter (where ended_reason = 'agent_close') as agent_closes,
        count(*) filter (where ended_reason = 'manual_close') as manual_closes,
        count(*) filter (where ended_reason = 'timeout') as timeouts,
        count(*) filter (where ended_reason is null) as still_open,
        count(*) filter (where inbound_count > 0) as engaged_conversations,
        count(*) filter (where inbound_count > 0 and ended_reason = 'agent_close') as engaged_agent_closes,
        count(*) filter (where inbound_count > 0 and ended_reason = 'manual_close') as engaged_manual_closes,
        count(*) filter (where inbound_count > 0 and ended_reason is null) as engaged_still_open,
        count(*) filter (where is_reopen) as reopens,
        count(first_response_seconds) as first_responses,
        count(*) filter (where inbound_count > 0 and first_response_seconds is null) as unanswered,
        quantile_cont(first_response_seconds, 0.5) as first_response_median_seconds,
        quantile_cont(first_response_seconds, 0.9) as first_response_p90_seconds,
        avg(first_response_seconds) as first_response_mean_seconds,
        quantile_cont(first_response_business_seconds, 0.5) as first_response_business_median_seconds,
        quantile_cont(first_response_business_seconds, 0.9) as first_response_business_p90_seconds,
        count(*) filter (where first_response_bucket_number = 1) as first_response_0_1h,
        count(*) filter (where first_response_bucket_number = 2) as first_response_1_4h,
        count(*) filter (where first_response_bucket_number = 3) as first_response_4_8h,
        count(*) filter (where first_response_bucket_number = 4) as first_response_8_24h,
        count(*) filter (where first_response_bucket_number = 5) as first_response_over_24h
    from outcomes
    group by local_start_date, tenant_id, phone_number_id
),

exchanges as (
    select
        local_start_date as local_date,
        phone_number_id,
        unnest(reply_seconds) as reply_seconds
    from outcomes
),

business_exchanges as (
    select
        local_start_date as local_date,
        phone_number_id,
        unnest(reply_business_seconds) as reply_business_seconds
    from outcomes
),

daily_business_replies as (
    select
        local_date,
        phone_number_id,
        quantile_cont(reply_business_seconds, 0.5) as reply_business_median_seconds,
        quantile_cont(reply_business_seconds, 0.9) as reply_business_p90_seconds
    from business_exchanges
    group by local_date, phone_number_id
),

daily_replies as (
    select
        local_date,
        phone_number_id,
        count(*) as exchanges,
        quantile_cont(reply_seconds, 0.5) as reply_median_seconds,
        quantile_cont(reply_seconds, 0.9) as reply_p90_seconds,
        avg(reply_seconds) as reply_mean_seconds
    from exchanges
    group by local_date, phone_number_id
),

final as (
    select
        daily_conversations.local_date,
        daily_conversations.tenant_id,
        daily_conversations.phone_number_id,
        daily_conversations.conversations_started,
        daily_conversations.agent_closes,
        daily_conversations.manual_closes,
        daily_conversations.timeouts,
        daily_conversations.still_open,
        daily_conversations.engaged_conversations,
        daily_conversations.engaged_agent_closes,
        daily_conversations.engaged_manual_closes,
        daily_conversations.engaged_still_open,
        (daily_conversations.engaged_agent_closes + daily_conversations.engaged_manual_closes)
            / nullif(daily_conversations.engaged_conversations, 0) as close_rate,
        daily_conversations.reopens,
        daily_conversations.first_responses,
        daily_conversations.unanswered,
        daily_conversations.first_response_median_seconds,
        daily_conversations.first_response_p90_seconds,
        daily_conversations.first_response_mean_seconds,
        daily_conversations.first_response_0_1h,
        daily_conversations.first_response_1_4h,
        daily_conversations.first_response_4_8h,
        daily_conversations.first_response_8_24h,
        daily_conversations.first_response_over_24h,
        coalesce(daily_replies.exchanges, 0) as exchanges,
        daily_replies.reply_median_seconds,
        daily_replies.reply_p90_seconds,
        daily_replies.reply_mean_seconds,
        daily_conversations.first_response_business_median_seconds,
        daily_conversations.first_response_business_p90_seconds,
        daily_business_replies.reply_business_median_seconds,
        daily_business_replies.reply_business_p90_seconds
    from daily_conversations
    left join daily_replies
        on daily_replies.local_date = daily_conversations.local_date
        and daily_replies.phone_number_id = daily_conversations.phone_number_id
    left join daily_business_replies
        on daily_business_replies.local_date = daily_conversations.local_date
        and daily_business_replies.phone_number_id = daily_conversations.phone_number_id
)

select * from final
