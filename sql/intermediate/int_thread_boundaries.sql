-- one row per message that bounds something in its thread (DOMAIN R3): the first or
-- last inbound message of a customer service window (R4), the first or last message
-- of a run of the platform's conversation lifecycle (R7-R9), a message that may open a
-- conversation, or a message whose platform conversation id differs from the one
-- before it. Everything per thread is computed in ONE sort of the thread's timeline
-- (messages and operator closes by time), with running counts and lag/lead of the
-- same window; service_windows and conversations then work on these rows only (at
-- most two per window or conversation, plus platform id changes), never on every
-- message again (DESIGN "Performance").
--
-- The timeline holds the messages sent up to the build's as-of, except failed
-- outbound messages: they never reached the user, so they open, extend and count in
-- nothing (and inbound messages never fail). Ties in the same second are ordered
-- inbound, outbound template, other outbound, close, then by message id: the same
-- order on every run and for any subset of threads.
--
-- Boundaries:
-- * a window starts at an inbound message more than customer_service_window_hours
--   after the previous inbound one (a gap of exactly that long continues it, R4) and
--   ends at one with no inbound message within that long after it;
-- * the lifecycle runs through messages less than platform_conversation_timeout_hours
--   apart with no close between them; a run ends at a timeout (24 h of silence ends
--   a conversation, R8: exactly 24 h ends it) or at a close. A close at the same
--   second as a message comes after it.
-- * a conversation opens on the first inbound message or template of a run (R7); a
--   free-form outbound message before it in the run finds no conversation open and
--   belongs to none. Such a first opener always has either no earlier opener, an
--   earlier one at least the timeout before it, or a close after the earlier one: the
--   rows flagged is_opener_candidate, among which the first of each run opens.
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
        epoch_us(to_hours(getvariable('platform_conversation_timeout_hours'))) as conversation_timeout_us
),

timeline as (
    select
        tenant_id,
        phone_number_id,
        contact_key,
        sent_at,
        tie_rank,
        message_id,
        conversation_id as platform_conversation_id,
        true as is_message,
        direction = 'inbound' as is_inbound,
        direction = 'outbound' as is_outbound,
        direction = 'inbound' or is_template as is_opener,
        false as is_close,
        cast(null as varchar) as close_reason
    from thread_messages
    where sent_at <= getvariable('as_of')
        and status <> 'failed'
    union all
    select
        tenant_id,
        phone_number_id,
        contact_key,
        closed_at as sent_at,
        3 as tie_rank,
        cast(null as varchar) as message_id,
        cast(null as bigint) as platform_conversation_id,
        false as is_message,
        false as is_inbound,
        false as is_outbound,
        false as is_opener,
        true as is_close,
        ended_reason as close_reason
    from closes
),

-- The one sort: every window below shares partition and order. lag/lead ignoring
-- nulls find the previous or next row of a kind (cheaper than frame aggregates).
-- Gaps are compared in microseconds: subtracting two timestamptz (an interval) is
-- some 40 times slower in DuckDB.
ordered as (
    select
        *,
        count(*) filter (where is_message) over through_row as thread_position,
        count(*) filter (where is_inbound) over through_row as inbound_position,
        lag(case when is_message then sent_at end ignore nulls) over thread_order as previous_message_at,
        lead(case when is_message then sent_at end ignore nulls) over thread_order as next_message_at,
        lag(case when is_inbound then sent_at end ignore nulls) over thread_order as previous_inbound_at,
        lead(case when is_inbound then sent_at end ignore nulls) over thread_order as next_inbound_at,
        lag(case when is_outbound then sent_at end ignore nulls) over thread_order as previous_outbound_at,
        lag(case when is_opener then sent_at end ignore nulls) over thread_order as previous_opener_at,
        lag(case when is_close then sent_at end ignore nulls) over thread_order as previous_close_at,
        lead(case when is_close then sent_at end ignore nulls) over thread_order as next_close_at,
        lead(close_reason ignore nulls) over thread_order as next_close_reason,
        lag(platform_conversation_id) over thread_order as previous_row_platform_conversation_id,
        lag(is_message) over thread_order as is_previous_row_message
    from timeline
    window
        thread_order as (partition by phone_number_id, contact_key order by sent_at, tie_rank, message_id),
        through_row as (thread_order rows between unbounded preceding and current row)
),

flagged as (
    select
        ordered.*,
        case when is_inbound then sent_at else previous_inbound_at end as last_inbound_at,
        case when is_outbound then sent_at else previous_outbound_at end as last_outbound_at,
        is_inbound and (
            previous_inbound_at is null
            or epoch_us(sent_at) - epoch_us(previous_inbound_at) > limits.service_window_us
        ) as is_window_start,
        is_inbound and (
            next_inbound_at is null
            or epoch_us(next_inbound_at) - epoch_us(sent_at) > limits.service_window_us
        ) as is_window_end,
        is_message and (
            previous_message_at is null
            or epoch_us(sent_at) - epoch_us(previous_message_at) >= limits.conversation_timeout_us
            or coalesce(previous_close_at >= previous_message_at, false)
        ) as is_segment_start,
        is_message and (
            next_message_at is null
            or epoch_us(next_message_at) - epoch_us(sent_at) >= limits.conversation_timeout_us
            or coalesce(next_close_at < next_message_at, false)
        ) as is_segment_end,
        is_opener and (
            previous_opener_at is null
            or epoch_us(sent_at) - epoch_us(previous_opener_at) >= limits.conversation_timeout_us
            or coalesce(previous_close_at >= previous_opener_at, false)
        ) as is_opener_candidate,
        is_message and (
            not coalesce(is_previous_row_message, false)
            or previous_row_platform_conversation_id is distinct from platform_conversation_id
        ) as is_platform_change
    from ordered
    cross join limits
),

final as (
    select
        tenant_id,
        phone_number_id,
        contact_key,
        thread_position,
        inbound_position,
        message_id,
        sent_at,
        is_inbound,
        platform_conversation_id,
        last_inbound_at,
        last_outbound_at,
        next_message_at,
        case when next_close_at < coalesce(next_message_at, 'infinity') then next_close_at end as next_close_at,
        case when next_close_at < coalesce(next_message_at, 'infinity') then next_close_reason end as next_close_reason,
        is_window_start,
        is_window_end,
        is_segment_start,
        is_segment_end,
        is_opener_candidate,
        is_platform_change
    from flagged
    where is_window_start
        or is_window_end
        or is_segment_start
        or is_segment_end
        or is_opener_candidate
        or is_platform_change
)

select * from final
