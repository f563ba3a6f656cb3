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
-- How: two windows over each thread's messages in that order, the first with each
-- conversation's opening row put in the stream just before its first message (so a
-- message finds its conversation as the latest opening before it: no join of 10M
-- messages to conversations) and the latest inbound message (a role needs it), the
-- second with the next human reply (it needs the roles).
-- config: kind=per-thread, keep=temp
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
        is_template,
        tie_rank,
        null::struct(id varchar, started_at timestamptz, last_message_at timestamptz) as opening
    from thread_messages
    where sent_at <= getvariable('as_of')
        and status <> 'failed'
),

conversation_openings as (
    select
        null::varchar as message_id,
        phone_number_id,
        contact_key,
        started_at as sent_at,
        false as is_inbound,
        false as is_template,
        -1 as tie_rank,
        {'id': id, 'started_at': started_at, 'last_message_at': last_message_at} as opening
    from rebuilt_conversations
),

-- A message belongs to the latest conversation opened at or before it (openings sort
-- first among rows of the same instant), if it came by that conversation's last
-- message; the others were sent while no conversation was open.
located as (
    select
        *,
        lag(opening ignore nulls) over thread_order as conversation,
        lag(case when is_inbound then sent_at end ignore nulls) over thread_order as previous_thread_inbound_at
    from (select * from counted_messages union all select * from conversation_openings)
    window thread_order as (partition by phone_number_id, contact_key order by sent_at, tie_rank, message_id)
),

classified as (
    select
        conversation.id as conversation_id,
        message_id,
        phone_number_id,
        contact_key,
        sent_at,
        is_inbound,
        tie_rank,
        -- the latest inbound message of this conversation: the thread's, if sent since it opened
        case when previous_thread_inbound_at >= conversation.started_at then previous_thread_inbound_at end
            as previous_inbound_at,
        case
            when is_inbound then 'inbound'
            when is_template then 'template'
            -- microseconds: subtracting two timestamptz (an interval) costs far more
            when epoch_us(sent_at) - epoch_us(previous_inbound_at)
                < getvariable('automated_reply_max_seconds') * 1000000 then 'automated_reply'
            else 'human_reply'
        end as message_role
    from located
    where opening is null
        and sent_at <= conversation.last_message_at
),

-- The thread's next human reply answers an inbound message if it is of the same conversation.
answered as (
    select
        *,
        lead(
            case when message_role = 'human_reply' then
                {'conversation_id': conversation_id, 'message_id': message_id, 'sent_at': sent_at}
            end ignore nulls
        ) over thread_order as next_human_reply
    from classified
    window thread_order as (partition by phone_number_id, contact_key order by sent_at, tie_rank, message_id)
),

final as (
    select
        conversation_id,
        message_id,
        phone_number_id,
        contact_key,
        sent_at,
        message_role,
        case when is_inbound and next_human_reply.conversation_id = conversation_id
            then next_human_reply.message_id end as answered_by_message_id,
        case when is_inbound and next_human_reply.conversation_id = conversation_id
            then next_human_reply.sent_at end as answered_at
    from answered
)

select * from final
