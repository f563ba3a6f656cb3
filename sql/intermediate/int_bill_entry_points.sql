-- one row per free entry point window (DOMAIN R15, R19), per thread (R3): a user
-- arrives through a click-to-WhatsApp ad or a Page button; the business's first
-- outbound message delivered at or after the arrival, when it comes within
-- entry_point_reply_within of it, opens a window of entry_point_window_length from its
-- delivery (in CBP: the free entry point conversation). No window opens while one is
-- open, so the windows of a thread are a chain walked by recursion: the first reply,
-- then the first reply at or after the previous window's end, and so on. Ties: the
-- earliest delivery, then the smallest message_id.
-- config: kind=per-thread
with recursive all_messages as (
    select * from messages
),

outbound as (
    select * from int_bill_outbound
),

calendar as (
    select * from int_bill_calendar
),

arrivals as (
    select
        all_messages.tenant_id,
        all_messages.phone_number_id,
        all_messages.contact_key,
        all_messages.sent_at as arrived_at,
        calendar.entry_point_reply_within
    from all_messages
    join calendar
        on calendar.calendar_date = all_messages.local_date
    where all_messages.direction = 'inbound'
        and all_messages.referral_source is not null
        and all_messages.sent_at <= getvariable('as_of')
),

-- The first outbound message at or after each arrival, if it is within reach.
first_replies as (
    select
        arrivals.phone_number_id,
        arrivals.contact_key,
        arrivals.arrived_at,
        any_value(arrivals.tenant_id) as tenant_id,
        min({
            'opened_at': outbound.event_at,
            'message_id': outbound.message_id,
            'expires_at': outbound.event_at + calendar.entry_point_window_length
        }) as reply
    from arrivals
    join outbound
        on outbound.phone_number_id = arrivals.phone_number_id
        and outbound.contact_key = arrivals.contact_key
        and outbound.event_at >= arrivals.arrived_at
        and outbound.event_at < arrivals.arrived_at + arrivals.entry_point_reply_within
    join calendar
        on calendar.calendar_date = outbound.billing_date
    group by arrivals.phone_number_id, arrivals.contact_key, arrivals.arrived_at
),

candidates as (
    select distinct tenant_id, phone_number_id, contact_key, reply
    from first_replies
),

chain as (
    select tenant_id, phone_number_id, contact_key, min(reply) as opener
    from candidates
    group by tenant_id, phone_number_id, contact_key
    union all
    select chain.tenant_id, chain.phone_number_id, chain.contact_key, min(candidates.reply) as opener
    from chain
    join candidates
        on candidates.phone_number_id = chain.phone_number_id
        and candidates.contact_key = chain.contact_key
        and candidates.reply.opened_at >= chain.opener.expires_at
    group by chain.tenant_id, chain.phone_number_id, chain.contact_key
),

final as (
    select
        tenant_id,
        phone_number_id,
        contact_key,
        opener.message_id as message_id,
        opener.opened_at as opened_at,
        opener.expires_at as expires_at
    from chain
)

select * from final
