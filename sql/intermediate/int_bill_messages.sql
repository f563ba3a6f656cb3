-- one row per delivered outbound message: the CBP conversation it belongs to as if CBP
-- applied at every date (the free entry point conversation inside an entry point
-- window, R15, category referral_conversion, R27; else its template conversation, R13,
-- or the conversation absorbing or opened by it, R14; conversation_id is the opening
-- message's id), and the billable unit it counts in under the regime in force: that
-- conversation when its billing date falls in a CBP regime (R13-R17), else the message
-- itself (PMP, R18; the delivery decides the regime, R27): unit 'conversation' (keyed by
-- conversation_id) or 'message' (keyed by message_id).
-- is_in_open_cbp_conversation: a template delivered under PMP inside a conversation of
-- its category that opened under CBP and is still open (R20; the rules say its price).
-- conversation_messages / conversation_billed_messages: how many messages its
-- conversation holds, and how many of them were delivered on CBP dates (counted with
-- the chaining, int_bill_cbp_conversations).
-- Its place in the thread's timeline comes from the one sorted pass (int_thread_messages,
-- DESIGN "Sort once"), read at the delivery t (R27):
-- * is_service_window_open: an inbound message in (t - customer_service_window, t]
--   (DOMAIN R4, R6; an inbound message at t counts for a delivery at t);
-- * last_inbound_at: the last inbound message at or before t;
-- * next_inbound_at: the first inbound message after t when it came within the
--   re-engagement reply window of t (wasted_spend asks no more), else null: so a reply
--   months later changes no row of an old message (incremental builds);
-- * the entry point window the delivery falls in, if any (int_bill_cbp_conversations
--   places it, sql/functions/with_entry_point.sql).
-- The sorted pass gives the inbound messages around the send; they are the ones around
-- the delivery unless an inbound message came between send and delivery (a few in a
-- million): only those deliveries search their thread's inbound messages again.
-- The last per-thread step, with what the cross-thread stage needs of each message.
-- config: kind=per-thread, month=billing_month
with outbound as (
    select * from int_bill_outbound
),

thread_messages as not materialized (
    select * from int_thread_messages
),

cbp_conversations as (
    select * from int_bill_cbp_conversations
),

numbers as (
    select * from phone_numbers
),

calendar as (
    select * from int_bill_calendar
),

-- deliveries with an inbound message between their send and their delivery (either
-- way round): the sorted pass's neighbours are not the delivery's
reordered_neighbours as (
    select
        reordered.message_id,
        max(inbound.sent_at) filter (where inbound.sent_at <= reordered.reordered_delivery_at) as last_inbound_at,
        min(inbound.sent_at) filter (where inbound.sent_at > reordered.reordered_delivery_at) as next_inbound_at
    from thread_messages as reordered
    join thread_messages as inbound
        on inbound.phone_number_id = reordered.phone_number_id
        and inbound.contact_key = reordered.contact_key
        and inbound.is_inbound
    where reordered.reordered_delivery_at is not null
    group by reordered.message_id
),

-- the inbound messages around each delivery: the sorted pass's, else the search's
delivery_neighbours as (
    select message_id, previous_inbound_at as last_inbound_at, next_inbound_at
    from thread_messages
    where not is_inbound and reordered_delivery_at is null
    union all
    select message_id, last_inbound_at, next_inbound_at
    from reordered_neighbours
),

neighbours as (
    select outbound.*, delivery_neighbours.last_inbound_at, delivery_neighbours.next_inbound_at
    from outbound
    join delivery_neighbours using (message_id)
),

assigned as (
    select
        neighbours.message_id,
        neighbours.tenant_id,
        neighbours.phone_number_id,
        neighbours.contact_key,
        neighbours.country_code,
        neighbours.market,
        neighbours.template_name,
        neighbours.last_inbound_at,
        case
            when calendar.re_engagement_reply_within is null
                or neighbours.next_inbound_at <= neighbours.event_at + calendar.re_engagement_reply_within
                then neighbours.next_inbound_at
        end as next_inbound_at,
        neighbours.is_template,
        neighbours.category,
        neighbours.event_at,
        neighbours.billing_date,
        neighbours.billing_month,
        neighbours.pricing_model,
        coalesce(neighbours.event_at < neighbours.last_inbound_at + calendar.customer_service_window, false)
            as is_service_window_open,
        cbp_conversations.conversation_id,
        cbp_conversations.conversation_category,
        -- the opening message is on the same number: its local date, from its delivery
        cast(timezone(coalesce(numbers.timezone, 'UTC'), cbp_conversations.conversation_started_at) as date)
            as conversation_opening_date,
        coalesce(cbp_conversations.is_in_entry_point_window, false) as is_in_entry_point_window,
        cbp_conversations.conversation_messages,
        cbp_conversations.conversation_billed_messages
    from neighbours
    left join calendar
        on calendar.calendar_date = neighbours.billing_date
    left join cbp_conversations
        on cbp_conversations.message_id = neighbours.message_id
    left join numbers
        on numbers.phone_number_id = neighbours.phone_number_id
),

final as (
    select
        assigned.message_id,
        assigned.tenant_id,
        assigned.phone_number_id,
        assigned.contact_key,
        assigned.country_code,
        assigned.market,
        assigned.is_template,
        assigned.template_name,
        assigned.category,
        assigned.event_at,
        assigned.billing_date,
        assigned.billing_month,
        assigned.is_in_entry_point_window,
        assigned.is_service_window_open,
        assigned.last_inbound_at,
        assigned.next_inbound_at,
        assigned.conversation_id,
        assigned.conversation_category,
        case when assigned.pricing_model = 'CBP' then 'conversation' else 'message' end as unit,
        coalesce(
            assigned.pricing_model = 'PMP'
                and assigned.is_template
                and not assigned.is_in_entry_point_window
                and assigned.conversation_category = assigned.category
                and opening.pricing_model = 'CBP',
            false
        ) as is_in_open_cbp_conversation,
        assigned.conversation_messages,
        assigned.conversation_billed_messages
    from assigned
    left join calendar as opening
        on opening.calendar_date = assigned.conversation_opening_date
)

select * from final
