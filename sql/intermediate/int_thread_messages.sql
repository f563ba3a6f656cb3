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
-- The kernel thread_pass (pipeline/kernels.py) walks each thread in this order, forward
-- and back, and gives each message (pass 1: its neighbours of each kind) the flags:
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
-- Then (pass 2: running counts over the messages in the same order) it numbers the
-- windows and the runs, says whether a message is in a conversation (a candidate came
-- since its run began), and finds for each inbound message the thread's next human
-- reply: it answers the message when no run starts before it (answered_by_message_id,
-- answered_at: the conversation's first human reply after the message, null while none
-- came). Consecutive inbound messages thus share their answer: they are one wait
-- (int_outcome_waits).
--
-- One sort and one compiled walk instead of two DuckDB window passes (each a sort of
-- every thread, `lag`/`lead ... ignore nulls` and running counts): ~10 CPU-s less at
-- 10M messages, the same rows (bench/README, Build profile, ninth session). The select
-- below is the kernel's input, not the relation: the timeline (messages and closes) in
-- thread order, the columns passed through, times in microseconds and each row's kind
-- as bits of `flags` (pipeline/kernels.py: message 1, inbound 2, outbound 4, template 8,
-- opener 16, close 32, delivered 64). The relation holds the messages' rows only.
-- config: kind=per-thread, keep=temp, kernel=thread_pass
with thread_messages as (
    select * from messages
),

closes as (
    select * from int_conv_closes
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
        false as is_inbound,
        false as is_outbound,
        false as is_template,
        false as is_opener,
        true as is_close,
        ended_reason as close_reason
    from closes
)

select
    tenant_id,
    phone_number_id,
    contact_key,
    message_id,
    sent_at,
    platform_conversation_id,
    epoch_us(sent_at) as sent_us,
    coalesce(epoch_us(delivered_at), 0) as delivered_us,
    cast(
        case when is_close then 32 else 1 end
        + case when is_inbound then 2 else 0 end
        + case when is_outbound then 4 else 0 end
        + case when is_template then 8 else 0 end
        + case when is_opener then 16 else 0 end
        + case when delivered_at is not null then 64 else 0 end
        as utinyint
    ) as flags,
    close_reason,
    tie_rank,
    hash(contact_key) as thread_hash
from timeline
-- thread order by the contact key's hash (integers sort faster than text); the kernel
-- puts the rows tied on all three in message_id order (nulls last) and checks that no
-- two keys share a hash (pipeline/kernels.py)
order by phone_number_id, thread_hash, sent_us, tie_rank
