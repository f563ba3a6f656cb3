-- one row per wait of a conversation: a run of consecutive inbound messages with no
-- human reply between them (automated replies and templates do not end it), from the
-- run's FIRST inbound message to the conversation's next human reply. The inbound
-- messages of a run are exactly those answered by the same human reply
-- (int_thread_messages.answered_by_message_id); the run after the last human reply
-- is the one unanswered wait, if any. The conversation is the lifecycle's
-- (int_conv_lifecycle: one per run of int_thread_messages, its messages flagged
-- is_in_conversation).
-- * reply_seconds: replied_at - wait_started_at in seconds (fractions kept), null
--   while unanswered. An answered wait is an exchange.
-- * wait_started_at orders a conversation's waits (no two start at the same instant:
--   inbound messages at one instant come before any reply at it, so they are one
--   wait); the first is the one whose reply is the first response.
-- * reply_business_seconds: the same wait counted in the number's business hours only
--   (int_business_clock: the clock stops outside hours and on holidays); null while
--   unanswered, and for a number without business_hours in convo.toml.
-- config: kind=per-thread, keep=temp
with timeline as (
    select * from int_thread_messages
),

lifecycle as (
    select * from int_conv_lifecycle
),

clock as (
    select * from int_business_clock
),

run_waits as (
    select
        phone_number_id,
        contact_key,
        run_number,
        answered_by_message_id as reply_message_id,
        min(sent_at) as wait_started_at,
        max(sent_at) as last_inbound_at,
        count(*) as inbound_messages,
        min(answered_at) as replied_at
    from timeline
    where is_in_conversation and message_role = 'inbound'
    group by phone_number_id, contact_key, run_number, answered_by_message_id
),

grouped as (
    select
        lifecycle.id as conversation_id,
        run_waits.phone_number_id,
        run_waits.reply_message_id,
        run_waits.wait_started_at,
        run_waits.last_inbound_at,
        run_waits.inbound_messages,
        run_waits.replied_at
    from run_waits
    join lifecycle using (phone_number_id, contact_key, run_number)
),

-- B(t) of int_business_clock at the wait's start and at its reply (ASOF: the last
-- interval of the number opening at or before the instant)
-- Only waits on numbers with business hours meet the clock: an as-of join sorts all
-- its left side even when the clock is empty (some 7 CPU-s at 10M messages).
clocked_numbers as (
    select distinct phone_number_id from clock
),

business as (
    select
        clocked.*,
        started_clock.business_seconds_before
            + least(epoch_us(clocked.wait_started_at) - epoch_us(started_clock.opens_at),
                epoch_us(started_clock.closes_at) - epoch_us(started_clock.opens_at)) / 1000000
            as business_started_seconds,
        replied_clock.business_seconds_before
            + least(epoch_us(clocked.replied_at) - epoch_us(replied_clock.opens_at),
                epoch_us(replied_clock.closes_at) - epoch_us(replied_clock.opens_at)) / 1000000
            as business_replied_seconds
    from (select * from grouped semi join clocked_numbers using (phone_number_id)) as clocked
    asof left join clock as started_clock
        on started_clock.phone_number_id = clocked.phone_number_id
        and clocked.wait_started_at >= started_clock.opens_at
    asof left join clock as replied_clock
        on replied_clock.phone_number_id = clocked.phone_number_id
        and clocked.replied_at >= replied_clock.opens_at
    union all
    select
        grouped.*,
        cast(null as double) as business_started_seconds,
        cast(null as double) as business_replied_seconds
    from grouped
    anti join clocked_numbers using (phone_number_id)
),

final as (
    select
        conversation_id,
        wait_started_at,
        last_inbound_at,
        inbound_messages,
        reply_message_id,
        replied_at,
        -- a difference of epoch_us (an interval of two timestamptz costs ~0.3 CPU-us)
        (epoch_us(replied_at) - epoch_us(wait_started_at)) / 1000000 as reply_seconds,
        business_replied_seconds - business_started_seconds as reply_business_seconds
    from business
)

select * from final
