-- one row per message of a thread's timeline (DOMAIN R3): everything the windows, the
-- platform's conversation lifecycle and the outcomes need of it, from ONE order of the
-- thread (DESIGN "Sort once"): service_windows, int_conv_lifecycle, conversations and
-- int_outcome_waits are group-bys and joins of these rows, never another sort of
-- every message.
--
-- The timeline holds the messages sent up to the build's as-of, except failed
-- outbound messages: they never reached the user, so they open, extend and count in
-- nothing (an inbound message reached the business, whatever its status), and the
-- operator closes (int_conv_closes). The order is messages' own: sent_at, then tie_rank (inbound,
-- template, other outbound), then message_id; a close comes after every message of its
-- instant. The same order on every run and for any subset of threads.
--
-- Pass 1 (lag/lead over the timeline) flags each message:
-- * a customer service window starts at an inbound message more than
--   customer_service_window_hours after the previous inbound one (a gap of exactly
--   that long continues it, R4);
-- * a lifecycle run starts at a message platform_conversation_timeout_hours or more
--   after the previous message (24 h of silence ends a conversation, R8: exactly 24 h
--   ends it) or after a close, and ends at one followed by such a gap or a close
--   (segment start / end);
-- * an opener (an inbound message or a template, R7) is a candidate when no opener
--   came before it in its run: then the first candidate of each run opens its
--   conversation, and the run's messages from it on belong to that conversation; a
--   free-form outbound message before it finds no conversation open (R7);
-- * message_role (conversation_outcomes): 'inbound'; 'template' (never a human reply);
--   'automated_reply', an outbound free-form message sent less than
--   automated_reply_max_seconds (data/policy.csv) after the contact's latest inbound
--   message of the conversation (no close between them: a gap that short never
--   crosses a timeout), as greetings, away messages and bots answer and no person
--   types; 'human_reply', any other outbound message.
-- * previous_inbound_at / next_inbound_at: the thread's inbound messages just before
--   and after it in this order (an inbound message at an outbound one's instant comes
--   before it): the bill reads the service window at each delivery from them (int_bill_messages);
--   reordered_delivery_at: an outbound message's delivery when an inbound message of
--   the thread came between its send and its delivery (a few in a million), else
--   null: then they are not the delivery's neighbours and the bill looks again.
-- Pass 2 (running counts over the messages in the same order, by thread_position)
-- numbers the windows and the runs, says whether a message is in a conversation (a
-- candidate came since its run began), and finds for each inbound message the
-- thread's next human reply: it answers the message when no run starts before it
-- (answered_by_message_id, answered_at: the conversation's first human reply after
-- the message, null while none came). Consecutive inbound messages thus share their
-- answer: they are one wait (int_outcome_waits).
-- Gaps are compared in microseconds: subtracting two timestamptz (an interval) is
-- some 40 times slower in DuckDB.
-- config: kind=per-thread, keep=temp
with thread_messages as (
    select * from messages
),

closes as (
    select * from int_conv_closes
),

limits as (
    select
        epoch_us(to_hours(getvariable('customer_service_window_hours'))) as service_window_us,
        epoch_us(to_hours(getvariable('platform_conversation_timeout_hours'))) as conversation_timeout_us,
        getvariable('automated_reply_max_seconds') * 1000000 as automated_reply_us
),

timeline as (
    select
        tenant_id,
        phone_number_id,
        contact_key,
        sent_at,
        delivered_at,
        tie_rank,
        message_id,
        conversation_id as platform_conversation_id,
        true as is_message,
        direction = 'inbound' as is_inbound,
        direction = 'outbound' as is_outbound,
        is_template,
        direction = 'inbound' or is_template as is_opener,
        false as is_close,
        cast(null as varchar) as close_reason
    from thread_messages
    where sent_at <= getvariable('as_of')
        and (direction = 'inbound' or status <> 'failed')
    union all
    select
        tenant_id,
        phone_number_id,
        contact_key,
        closed_at as sent_at,
        cast(null as timestamptz) as delivered_at,
        3 as tie_rank,
        cast(null as varchar) as message_id,
        cast(null as bigint) as platform_conversation_id,
        false as is_message,
        false as is_inbound,
        false as is_outbound,
        false as is_template,
        false as is_opener,
        true as is_close,
        ended_reason as close_reason
    from closes
),

-- Pass 1: every window function shares one partition and order (one sort); lag/lead
-- ignoring nulls find the previous or next row of a kind.
ordered as (
    select
        *,
        count(*) filter (where is_message) over through_row as thread_position,
        lag(case when is_message then sent_at end ignore nulls) over thread_order as previous_message_at,
        lead(case when is_message then sent_at end ignore nulls) over thread_order as next_message_at,
        lag(case when is_inbound then sent_at end ignore nulls) over thread_order as previous_inbound_at,
        lead(case when is_inbound then sent_at end ignore nulls) over thread_order as next_inbound_at,
        lag(case when is_opener then sent_at end ignore nulls) over thread_order as previous_opener_at,
        lag(case when is_close then sent_at end ignore nulls) over thread_order as previous_close_at,
        lead(case when is_close then sent_at end ignore nulls) over thread_order as next_close_at,
        lead(close_reason ignore nulls) over thread_order as next_close_reason
    from timeline
    window
        thread_order as (partition by phone_number_id, contact_key order by sent_at, tie_rank, message_id),
        through_row as (thread_order rows between unbounded preceding and current row)
),

flagged as (
    select
        ordered.tenant_id,
        ordered.phone_number_id,
        ordered.contact_key,
        ordered.thread_position,
        ordered.message_id,
        ordered.sent_at,
        ordered.is_inbound,
        ordered.platform_conversation_id,
        ordered.next_message_at,
        ordered.previous_inbound_at,
        ordered.next_inbound_at,
        case
            when ordered.is_outbound
                and (ordered.previous_inbound_at > ordered.delivered_at or ordered.next_inbound_at <= ordered.delivered_at)
                then ordered.delivered_at
        end as reordered_delivery_at,
        case
            when ordered.next_close_at < coalesce(ordered.next_message_at, 'infinity') then ordered.next_close_at
        end as next_close_at,
        case
            when ordered.next_close_at < coalesce(ordered.next_message_at, 'infinity') then ordered.next_close_reason
        end as next_close_reason,
        ordered.is_inbound and (
            ordered.previous_inbound_at is null
            or epoch_us(ordered.sent_at) - epoch_us(ordered.previous_inbound_at) > limits.service_window_us
        ) as is_window_start,
        ordered.previous_message_at is null
            or epoch_us(ordered.sent_at) - epoch_us(ordered.previous_message_at) >= limits.conversation_timeout_us
            or coalesce(ordered.previous_close_at >= ordered.previous_message_at, false)
            as is_segment_start,
        ordered.next_message_at is null
            or epoch_us(ordered.next_message_at) - epoch_us(ordered.sent_at) >= limits.conversation_timeout_us
            or coalesce(ordered.next_close_at < ordered.next_message_at, false)
            as is_segment_end,
        ordered.is_opener and (
            ordered.previous_opener_at is null
            or epoch_us(ordered.sent_at) - epoch_us(ordered.previous_opener_at) >= limits.conversation_timeout_us
            or coalesce(ordered.previous_close_at >= ordered.previous_opener_at, false)
        ) as is_opener_candidate,
        case
            when ordered.is_inbound then 'inbound'
            when ordered.is_template then 'template'
            when epoch_us(ordered.sent_at) - epoch_us(ordered.previous_inbound_at) < limits.automated_reply_us
                and not coalesce(ordered.previous_close_at >= ordered.previous_inbound_at, false)
                then 'automated_reply'
            else 'human_reply'
        end as message_role
    from ordered
    cross join limits
    where ordered.is_message
),

-- Pass 2: running counts in the same order, now a number per thread.
numbered as (
    select
        *,
        count(*) filter (where is_window_start) over through_row as window_number,
        count(*) filter (where is_segment_start) over through_row as run_number,
        max(thread_position) filter (where is_segment_start) over through_row as run_start_position,
        max(thread_position) filter (where is_opener_candidate) over through_row as last_candidate_position,
        lead(case when message_role = 'human_reply' then thread_position end ignore nulls)
            over thread_order as next_human_reply_position,
        lead(case when message_role = 'human_reply' then message_id end ignore nulls)
            over thread_order as next_human_reply_message_id,
        lead(case when message_role = 'human_reply' then sent_at end ignore nulls)
            over thread_order as next_human_reply_at,
        lead(case when is_segment_start then thread_position end ignore nulls)
            over thread_order as next_run_start_position
    from flagged
    window
        thread_order as (partition by phone_number_id, contact_key order by thread_position),
        through_row as (thread_order rows between unbounded preceding and current row)
),

final as (
    select
        tenant_id,
        phone_number_id,
        contact_key,
        thread_position,
        message_id,
        sent_at,
        is_inbound,
        platform_conversation_id,
        next_message_at,
        previous_inbound_at,
        next_inbound_at,
        reordered_delivery_at,
        next_close_at,
        next_close_reason,
        is_window_start,
        window_number,
        run_number,
        is_segment_end,
        coalesce(last_candidate_position >= run_start_position, false) as is_in_conversation,
        message_role,
        case
            when is_inbound and next_human_reply_position < coalesce(next_run_start_position, 9223372036854775807)
                then next_human_reply_message_id
        end as answered_by_message_id,
        case
            when is_inbound and next_human_reply_position < coalesce(next_run_start_position, 9223372036854775807)
                then next_human_reply_at
        end as answered_at
    from numbered
)

select * from final
