-- one row per rebuilt conversation (conversation_id = conversations.id): how it ended
-- and how fast the business answered, as of the build's as-of.
-- * local_start_date: started_at's date in the business number's timezone (that of
--   the opening message, DOMAIN R1).
-- * ended_reason (DOMAIN R8): agent_close, manual_close or timeout; null while open.
--   closed_by says who or what ended it, from ended_reason alone (exports name no
--   person): 'agent' (agent_close: the agent handling it closed it), 'operator'
--   (manual_close: closed by hand from the console or the API, e.g. a supervisor),
--   'platform' (timeout: nobody closed it, platform_conversation_timeout_hours of
--   silence did); null while open. time_to_close_seconds: started_at -> ended_at
--   (a timeout's includes the final silence), null while open.
-- * message counts by role (int_conv_lifecycle, from int_thread_messages): inbound, human replies,
--   automated replies (outbound free-form within automated_reply_max_seconds of the
--   latest inbound message), templates. They add up to messages_count.
-- * waits and exchanges (int_outcome_waits): a wait runs from the first inbound
--   message of a run of consecutive inbound messages to the next human reply;
--   exchanges_count counts the answered waits; reply_seconds lists each one's wait
--   in seconds, in order (empty when none was answered); reply_median_seconds,
--   reply_mean_seconds and reply_max_seconds describe them, null when none.
-- * first response: first_inbound_at (the conversation's first inbound message) ->
--   first_response_at (the first human reply after it); null when never answered
--   (or no inbound message). first_response_bucket: '0-1h', '1-4h', '4-8h', '8-24h',
--   'over 24h' with lower edges inclusive (exactly 1 h is '1-4h'); the edges are
--   policy data (first_response_bucket_N_max_hours) and the labels are made from
--   them; first_response_bucket_number orders them (1 = fastest).
-- * business time ([[phone_numbers]] business_hours and holidays; null for a number
--   without business_hours): first_response_business_seconds, and per answered wait
--   reply_business_seconds (in order, beside reply_seconds), reply_business_median_seconds
--   and reply_business_max_seconds: the same waits with the clock stopped outside
--   business hours (int_outcome_waits, int_business_clock).
-- * awaiting_reply_since_at: the start of the unanswered wait (the contact wrote last
--   and no human answered), null otherwise; awaiting_reply_seconds: how long it has
--   waited, up to the as-of while open, up to ended_at once ended.
-- * is_reopen (DOMAIN R9): opened by the contact after an operator's close, from
--   conversations.
-- config: kind=per-thread, month=local_start_date
with rebuilt_conversations as (
    select * from conversations
),

numbers as (
    select * from phone_numbers
),

lifecycle as (
    select * from int_conv_lifecycle
),

waits as (
    select * from int_outcome_waits
),

role_counts as (
    select
        id as conversation_id,
        inbound_count,
        human_reply_count,
        automated_reply_count,
        template_count
    from lifecycle
),

-- One row per conversation with waits. Every aggregate here is one DuckDB's hash
-- aggregate can spill to disk: the reply times are listed unordered, as (wait start,
-- seconds) pairs, and put in wait order by list_sort afterwards (an ordered list()
-- and median() are states it cannot spill: they ran out of a 1 GB limit at 10M
-- messages, the 8 GB default's share at 80M; a window over each conversation's waits
-- fitted but cost twice the time). This fits 500 MB at 10M.
wait_stats as (
    select
        conversation_id,
        min(wait_started_at) as first_inbound_at,
        -- the first wait's (arg_min_null: its reply may be null)
        arg_min_null(replied_at, wait_started_at) as first_response_at,
        arg_min_null(reply_business_seconds, wait_started_at) as first_response_business_seconds,
        list_transform(
            list_sort(list({'started_at': wait_started_at, 'seconds': reply_business_seconds})
                filter (where replied_at is not null and reply_business_seconds is not null)),
            lambda exchange: exchange.seconds
        ) as exchange_reply_business_seconds,
        max(reply_business_seconds) as reply_business_max_seconds,
        count(*) as waits_count,
        count(replied_at) as exchanges_count,
        list_transform(
            list_sort(list({'started_at': wait_started_at, 'seconds': reply_seconds})
                filter (where replied_at is not null)),
            lambda exchange: exchange.seconds
        ) as exchange_reply_seconds,
        avg(reply_seconds) as reply_mean_seconds,
        max(reply_seconds) as reply_max_seconds,
        min(wait_started_at) filter (where replied_at is null) as awaiting_reply_since_at
    from waits
    group by conversation_id
),

-- The first-response bucket edges, from policy data (data/policy.csv), in microseconds.
-- Durations here are differences of epoch_us: subtracting two timestamptz (an interval)
-- costs DuckDB ~0.3 CPU-us each, 1-2 CPU-s of this table at 10M messages.
bucket_edges as (
    select
        epoch_us(to_hours(getvariable('first_response_bucket_1_max_hours'))) as bucket_1_max_us,
        epoch_us(to_hours(getvariable('first_response_bucket_2_max_hours'))) as bucket_2_max_us,
        epoch_us(to_hours(getvariable('first_response_bucket_3_max_hours'))) as bucket_3_max_us,
        epoch_us(to_hours(getvariable('first_response_bucket_4_max_hours'))) as bucket_4_max_us,
        format('0-{}h', getvariable('first_response_bucket_1_max_hours')) as bucket_1_label,
        format('{}-{}h', getvariable('first_response_bucket_1_max_hours'),
            getvariable('first_response_bucket_2_max_hours')) as bucket_2_label,
        format('{}-{}h', getvariable('first_response_bucket_2_max_hours'),
            getvariable('first_response_bucket_3_max_hours')) as bucket_3_label,
        format('{}-{}h', getvariable('first_response_bucket_3_max_hours'),
            getvariable('first_response_bucket_4_max_hours')) as bucket_4_label,
        format('over {}h', getvariable('first_response_bucket_4_max_hours')) as bucket_5_label
),

joined as (
    select
        rebuilt_conversations.*,
        -- the opening message's local_date (messages), without reading every message
        cast(timezone(coalesce(numbers.timezone, 'UTC'), rebuilt_conversations.started_at) as date)
            as local_start_date,
        coalesce(role_counts.inbound_count, 0) as inbound_count,
        coalesce(role_counts.human_reply_count, 0) as human_reply_count,
        coalesce(role_counts.automated_reply_count, 0) as automated_reply_count,
        coalesce(role_counts.template_count, 0) as template_count,
        wait_stats.first_inbound_at,
        wait_stats.first_response_at,
        epoch_us(wait_stats.first_response_at) - epoch_us(wait_stats.first_inbound_at) as first_response_us,
        coalesce(wait_stats.waits_count, 0) as waits_count,
        coalesce(wait_stats.exchanges_count, 0) as exchanges_count,
        coalesce(wait_stats.exchange_reply_seconds, []) as reply_seconds,
        list_median(wait_stats.exchange_reply_seconds) as reply_median_seconds,
        wait_stats.reply_mean_seconds,
        wait_stats.reply_max_seconds,
        wait_stats.first_response_business_seconds,
        coalesce(wait_stats.exchange_reply_business_seconds, []) as reply_business_seconds,
        list_median(wait_stats.exchange_reply_business_seconds) as reply_business_median_seconds,
        wait_stats.reply_business_max_seconds,
        wait_stats.awaiting_reply_since_at
    from rebuilt_conversations
    left join numbers
        on numbers.phone_number_id = rebuilt_conversations.phone_number_id
    left join role_counts
        on role_counts.conversation_id = rebuilt_conversations.id
    left join wait_stats
        on wait_stats.conversation_id = rebuilt_conversations.id
),

bucketed as (
    select
        joined.*,
        case
            when joined.first_response_us is null then null
            when joined.first_response_us < bucket_edges.bucket_1_max_us then 1
            when joined.first_response_us < bucket_edges.bucket_2_max_us then 2
            when joined.first_response_us < bucket_edges.bucket_3_max_us then 3
            when joined.first_response_us < bucket_edges.bucket_4_max_us then 4
            else 5
        end as first_response_bucket_number,
        bucket_edges.*
    from joined
    cross join bucket_edges
),

final as (
    select
        id as conversation_id,
        tenant_id,
        phone_number_id,
        contact_key,
        started_at,
        local_start_date,
        is_opened_by_inbound,
        status,
        ended_at,
        ended_reason,
        case ended_reason
            when 'agent_close' then 'agent'
            when 'manual_close' then 'operator'
            when 'timeout' then 'platform'
        end as closed_by,
        (epoch_us(ended_at) - epoch_us(started_at)) / 1000000 as time_to_close_seconds,
        is_reopen,
        messages_count,
        inbound_count,
        human_reply_count,
        automated_reply_count,
        template_count,
        first_inbound_at,
        first_response_at,
        first_response_us / 1000000 as first_response_seconds,
        first_response_bucket_number,
        case first_response_bucket_number
            when 1 then bucket_1_label
            when 2 then bucket_2_label
            when 3 then bucket_3_label
            when 4 then bucket_4_label
            when 5 then bucket_5_label
        end as first_response_bucket,
        waits_count,
        exchanges_count,
        reply_seconds,
        reply_median_seconds,
        reply_mean_seconds,
        reply_max_seconds,
        first_response_business_seconds,
        reply_business_seconds,
        reply_business_median_seconds,
        reply_business_max_seconds,
        awaiting_reply_since_at,
        (epoch_us(coalesce(ended_at, getvariable('as_of'))) - epoch_us(awaiting_reply_since_at)) / 1000000
            as awaiting_reply_seconds,
        last_message_at
    from bucketed
)

select * from final
