-- one row per message of a rebuilt conversation: its role in the exchange between
-- contact and business, and for an inbound message the human reply that answers it.
-- * which conversation: the lifecycle's own assignment (int_thread_messages: the
--   run's messages from its conversation's opener on; int_conv_lifecycle gives the
--   conversation's id); the messages counted are the lifecycle's (sent up to the as-of,
--   not failed), so each conversation gets exactly its messages_count rows. Free-form
--   messages sent while no conversation was open belong to none and are not here.
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
-- How: the roles and counts come from int_thread_messages (one sort of the thread);
-- an inbound message with k human replies before it in the thread is answered by the
-- thread's (k+1)-th human reply when that one is of the same conversation (same run):
-- a join on (thread, run, count), no second sort.
-- config: kind=per-thread, keep=temp
with timeline as (
    select * from int_thread_messages
),

lifecycle as (
    select * from int_conv_lifecycle
),

conversation_messages as (
    select
        lifecycle.id as conversation_id,
        timeline.message_id,
        timeline.phone_number_id,
        timeline.contact_key,
        timeline.run_number,
        timeline.sent_at,
        timeline.message_role,
        timeline.human_replies_through
    from timeline
    join lifecycle
        on lifecycle.phone_number_id = timeline.phone_number_id
        and lifecycle.contact_key = timeline.contact_key
        and lifecycle.run_number = timeline.run_number
    where timeline.is_in_conversation
),

human_replies as (
    select phone_number_id, contact_key, run_number, human_replies_through, message_id, sent_at
    from conversation_messages
    where message_role = 'human_reply'
),

final as (
    select
        conversation_messages.conversation_id,
        conversation_messages.message_id,
        conversation_messages.phone_number_id,
        conversation_messages.contact_key,
        conversation_messages.sent_at,
        conversation_messages.message_role,
        human_replies.message_id as answered_by_message_id,
        human_replies.sent_at as answered_at
    from conversation_messages
    left join human_replies
        on conversation_messages.message_role = 'inbound'
        and human_replies.phone_number_id = conversation_messages.phone_number_id
        and human_replies.contact_key = conversation_messages.contact_key
        and human_replies.run_number = conversation_messages.run_number
        and human_replies.human_replies_through = conversation_messages.human_replies_through + 1
)

select * from final
