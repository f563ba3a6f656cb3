-- one row per rebuilt conversation: phone_number_id x contact_key x started_at, with
-- what its messages say (DOMAIN R7-R9), before any as-of judgement (conversations
-- adds status, ended_at and the R10 fields). A lifecycle run of int_thread_boundaries
-- holds at most one conversation: from the run's first opener (an inbound message or
-- a template, R7) to the run's last message. The run ends by a close when one comes
-- after its last message and before the timeout would end it, else by timeout
-- (last message + platform_conversation_timeout_hours, R8).
-- platform_conversation_id is the platform id carried by most of its messages (ties:
-- the smallest), counted over spans of messages between the boundary rows where the
-- id may change (no second pass over the messages).
-- config: kind=per-thread, keep=temp
with boundaries as (
    select * from int_thread_boundaries
),

-- One window over the boundary rows: the run each belongs to, and where the span of
-- messages starting at it ends (the next row where the platform id may change).
lifecycle_edges as (
    select
        *,
        count(*) filter (where is_segment_start) over through_row as run_number,
        lead(case when is_span_start then thread_position end ignore nulls) over thread_order as next_span_position
    from (
        select
            *,
            is_platform_change or is_opener_candidate or is_segment_start as is_span_start
        from boundaries
        where is_segment_start or is_segment_end or is_opener_candidate or is_platform_change
    )
    window
        thread_order as (partition by phone_number_id, contact_key order by thread_position),
        through_row as (thread_order rows between unbounded preceding and current row)
),

runs as (
    select
        phone_number_id,
        contact_key,
        run_number,
        any_value(tenant_id) as tenant_id,
        min(thread_position) filter (where is_opener_candidate) as opening_position,
        arg_min(message_id, thread_position) filter (where is_opener_candidate) as opening_message_id,
        arg_min(sent_at, thread_position) filter (where is_opener_candidate) as started_at,
        arg_min(is_inbound, thread_position) filter (where is_opener_candidate) as is_opened_by_inbound,
        max(thread_position) filter (where is_segment_end) as last_position,
        max(sent_at) filter (where is_segment_end) as last_message_at,
        max(last_inbound_at) filter (where is_segment_end) as last_inbound_through,
        max(last_outbound_at) filter (where is_segment_end) as last_outbound_through,
        max(next_close_at) filter (where is_segment_end) as closed_at,
        max(next_close_reason) filter (where is_segment_end) as close_reason
    from lifecycle_edges
    group by phone_number_id, contact_key, run_number
),

conversation_runs as (
    select * from runs where opening_position is not null
),

-- Messages per platform id in a conversation: spans from its opening message on.
platform_counts as (
    select
        edges.phone_number_id,
        edges.contact_key,
        edges.run_number,
        edges.platform_conversation_id,
        sum(coalesce(edges.next_span_position, conversation_runs.last_position + 1) - edges.thread_position)
            as span_messages
    from lifecycle_edges as edges
    join conversation_runs
        on conversation_runs.phone_number_id = edges.phone_number_id
        and conversation_runs.contact_key = edges.contact_key
        and conversation_runs.run_number = edges.run_number
    where edges.is_span_start
        and edges.thread_position >= conversation_runs.opening_position
        and edges.platform_conversation_id is not null
    group by edges.phone_number_id, edges.contact_key, edges.run_number, edges.platform_conversation_id
),

platform_ids as (
    select
        phone_number_id,
        contact_key,
        run_number,
        first(platform_conversation_id order by span_messages desc, platform_conversation_id) as platform_conversation_id
    from platform_counts
    group by phone_number_id, contact_key, run_number
),

final as (
    select
        conversation_runs.tenant_id,
        conversation_runs.phone_number_id,
        conversation_runs.contact_key,
        conversation_runs.started_at,
        conversation_runs.opening_message_id,
        conversation_runs.is_opened_by_inbound,
        conversation_runs.last_position - conversation_runs.opening_position + 1 as messages_count,
        conversation_runs.last_message_at,
        case
            when conversation_runs.last_inbound_through >= conversation_runs.started_at
                then conversation_runs.last_inbound_through
        end as last_inbound_at,
        case
            when conversation_runs.last_outbound_through >= conversation_runs.started_at
                then conversation_runs.last_outbound_through
        end as last_outbound_at,
        case
            when conversation_runs.closed_at < conversation_runs.last_message_at
                + to_hours(getvariable('platform_conversation_timeout_hours'))
                then conversation_runs.closed_at
            else conversation_runs.last_message_at + to_hours(getvariable('platform_conversation_timeout_hours'))
        end as end_at,
        case
            when conversation_runs.closed_at < conversation_runs.last_message_at
                + to_hours(getvariable('platform_conversation_timeout_hours'))
                then conversation_runs.close_reason
            else 'timeout'
        end as end_reason,
        platform_ids.platform_conversation_id
    from conversation_runs
    left join platform_ids
        on platform_ids.phone_number_id = conversation_runs.phone_number_id
        and platform_ids.contact_key = conversation_runs.contact_key
        and platform_ids.run_number = conversation_runs.run_number
)

select * from final
