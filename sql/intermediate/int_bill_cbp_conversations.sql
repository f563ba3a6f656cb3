-- one row per delivered outbound message in a conversation as if CBP applied at every
-- date (the regime decides later what counts, R20): inside an entry point window, that
-- window's free entry point conversation (R15: conversation_id is the window's opening
-- message, category referral_conversion, R27); else, a template of a known category or
-- any non-template message, the CBP conversation it belongs to, its opening message and
-- instant, and its category (DOMAIN R13, R14); is_chained: in a chain so dense that its
-- conversations follow each other back to back (a member earlier than a conversation
-- length before it, and the first member after that one less than a conversation
-- length after it). conversation_messages / conversation_billed_messages: how many
-- messages its conversation holds, and how many of them were delivered on CBP dates.
--
-- The select gives the candidates in thread order (delivery, then message_id, which the
-- kernel settles); the kernel cbp_pass (pipeline/kernels.py) walks each thread once, the
-- one CBP chaining:
-- 1. templates, one chain per category (R13): a template opens a conversation of its
--    category unless one of that category is open; a conversation lasts exactly
--    cbp_conversation_length (of its opening's billing date) from its opening, later
--    messages do not extend it; at one instant the smallest message_id opens;
-- 2. non-template messages (R14) open a service conversation only when no
--    conversation of any category is open (the templates of their instant first):
--    the ones no template conversation covers form the service chain, chained as the
--    templates are; every other one is absorbed into the conversation opened first
--    (then the smallest message_id) among those open at its delivery, template or
--    service (DOMAIN does not say which; Meta's pricing objects, as the simulator
--    writes them, name that one);
-- 3. the messages of each conversation (and of each entry point window) are counted.
-- An entry point window closes every open conversation (R15); since it outlasts a
-- conversation (the policy loader checks it), no conversation reaches across one, and
-- the window's own messages take no part in the chaining.
-- config: kind=per-thread, keep=temp, kernel=cbp_pass
with outbound as (
    select * from int_bill_outbound
),

entry_points as (
    select * from int_bill_entry_points
),

calendar as (
    select * from int_bill_calendar
),

candidates as (
    select
        outbound.message_id,
        outbound.phone_number_id,
        outbound.contact_key,
        outbound.is_template,
        -- a template's chain is its category; every non-template message is service
        coalesce(outbound.category, 'service') as chain,
        outbound.event_at,
        epoch_us(outbound.event_at) as event_us,
        epoch_us(calendar.cbp_conversation_length) as length_us,
        -- the bill counts it in its conversation (delivered on a CBP date)
        coalesce(outbound.pricing_model = 'CBP', false) as is_billed,
        outbound.entry_point_message_id,
        outbound.entry_point_opened_at
    from with_entry_point('outbound', 'entry_points') as outbound
    left join calendar
        on calendar.calendar_date = outbound.billing_date
    -- every delivery inside an entry point window (R15); outside, the chains' candidates
    where outbound.entry_point_message_id is not null
        or (calendar.calendar_date is not null and (not outbound.is_template or outbound.category is not null))
)

select *, hash(contact_key) as thread_hash from candidates
-- thread order by the contact key's hash (integers sort faster than text); the kernel
-- puts each instant's rows in message_id order and checks that no two keys share a hash
order by phone_number_id, thread_hash, event_us
