-- one row per message of a rebuilt conversation: its role in the exchange between
-- contact and business, and for an inbound message the human reply that answers it.
-- * which conversation: the one of conversations (the lifecycle's rebuild, DOMAIN
--   R7-R9) whose span holds the message: same thread, started_at <= sent_at <=
--   last_message_at. Conversations of a thread never overlap and the lifecycle's tie
--   order (inbound, template, other outbound, close) never puts a message of the span
--   outside it, so this is the lifecycle's own assignment; the messages counted are
--   the lifecycle's (sent up to the as-of, not failed), so each conversation gets
--   exactly its messages_count rows. Free-form messages sent while no conversation
--   was open belong to none and are not here.
-- * message_role: 'inbound' (the contact wrote); 'template' (an outbound template:
--   a campaign or notification, never a human reply); 'automated_reply' (an outbound
--   free-form message sent less than automated_reply_max_seconds (data/policy.csv)
--   after the contact's latest inbound message of the conversation: exports do not
--   say who sent a message, and a greeting, away message or bot answers within a
--   second or two while no person reads and types that fast); 'human_reply' (any
--   other outbound message, including one sent before any inbound message).
-- * answered_by_message_id / answered_at (inbound messages only): the conversation's
--   first human reply after the message, null while none came. Consecutive inbound
--   messages thus share their answer: they are one wait (int_outcome_waits).
-- Order within a conversation is the lifecycle's: sent_at, then inbound, template,
-- other outbound, then message_id.
with thread_messages as (
    select * from messages
),

rebuilt_conversations as (
    select * from conversations
),

counted_messages as (
    select
        message_id,
        phone_number_id,
        contact_key,
        sent_at,
        direction = 'inbound' as is_inbound,
        direction = 'outbound' and (type = 'template' or template_name is not null) as is_template,
        case
            when direction = 'inbound' then 0
            when type = 'template' or template_name is not null then 1
            else 2
        end as tie_rank
    from thread_messages
    where sent_at <= getvariable('as_of')
        and status <> 'failed'
),

assigned as (
    select
        rebuilt_conversations.id as conversation_id,
        counted_messages.*
    from counted_messages
    asof join rebuilt_conversations
        on rebuilt_conversations.phone_number_id = counted_messages.phone_number_id
        and rebuilt_conversations.contact_key = counted_messages.contact_key
        and counted_messages.sent_at >= rebuilt_conversations.started_at
    where counted_messages.sent_at <= rebuilt_conversations.last_message_at
),

with_latest_inbound as (
    select
        *,
        lag(case when is_inbound then sent_at end ignore nulls) over conversation_order as previous_inbound_at
    from assigned
    window conversation_order as (partition by conversation_id order by sent_at, tie_rank, message_id)
),

classified as (
    select
        *,
        case
            when is_inbound then 'inbound'
            when is_template then 'template'
            when sent_at - previous_inbound_at < to_seconds(getvariable('automated_reply_max_seconds'))
                then 'automated_reply'
            else 'human_reply'
        end as message_role
    from with_latest_inbound
),

answered as (
    select
        *,
        lead(case when message_role = 'human_reply' then message_id end ignore nulls)
            over conversation_order as next_human_reply_id,
        lead(case when message_role = 'human_reply' then sent_at end ignore nulls)
            over conversation_order as next_human_reply_at
    from classified
    window conversation_order as (partition by conversation_id order by sent_at, tie_rank, message_id)
),

final as (
    select
        conversation_id,
        message_id,
        phone_number_id,
        contact_key,
        sent_at,
        tie_rank,
        message_role,
        previous_inbound_at,
        case when is_inbound then next_human_reply_id end as answered_by_message_id,
        case when is_inbound then next_human_reply_at end as answered_at
    from answered
)

select * from final
