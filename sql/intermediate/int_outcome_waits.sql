-- one row per wait of a conversation: a run of consecutive inbound messages with no
-- human reply between them (automated replies and templates do not end it), from the
-- run's FIRST inbound message to the conversation's next human reply. The inbound
-- messages of a run are exactly those answered by the same human reply
-- (int_outcome_messages.answered_by_message_id); the run after the last human reply
-- is the one unanswered wait, if any.
-- * reply_seconds: replied_at - wait_started_at in seconds (fractions kept), null
--   while unanswered. An answered wait is an exchange.
-- * wait_number: 1 for the wait that starts at the conversation's first inbound
--   message (its reply is the first response), then in order.
-- config: kind=per-thread, keep=temp
with conversation_messages as (
    select * from int_outcome_messages
),

inbound_messages as (
    select * from conversation_messages
    where message_role = 'inbound'
),

grouped as (
    select
        conversation_id,
        answered_by_message_id as reply_message_id,
        min(sent_at) as wait_started_at,
        max(sent_at) as last_inbound_at,
        count(*) as inbound_messages,
        min(answered_at) as replied_at
    from inbound_messages
    group by conversation_id, answered_by_message_id
),

final as (
    select
        conversation_id,
        row_number() over (partition by conversation_id order by wait_started_at) as wait_number,
        wait_started_at,
        last_inbound_at,
        inbound_messages,
        reply_message_id,
        replied_at,
        epoch(replied_at - wait_started_at) as reply_seconds
    from grouped
)

select * from final
