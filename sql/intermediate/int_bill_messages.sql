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
-- conversation holds, and how many of them were delivered on CBP dates.
-- The last per-thread step, with what the cross-thread stage needs of each message.
-- config: kind=per-thread, month=billing_month
with outbound as (
    select * from int_bill_outbound
),

timeline as (
    select * from int_bill_timeline
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

assigned as (
    select
        outbound.message_id,
        outbound.tenant_id,
        outbound.phone_number_id,
        outbound.contact_key,
        outbound.country_code,
        outbound.market,
        outbound.template_name,
        timeline.last_inbound_at,
        timeline.next_inbound_at,
        outbound.is_template,
        outbound.category,
        outbound.event_at,
        outbound.billing_date,
        outbound.billing_month,
        outbound.pricing_model,
        timeline.is_service_window_open,
        case
            when timeline.is_in_entry_point_window then timeline.entry_point_message_id
            else cbp_conversations.conversation_id
        end as conversation_id,
        case
            when timeline.is_in_entry_point_window then 'referral_conversion'
            else cbp_conversations.conversation_category
        end as conversation_category,
        -- the opening message is on the same number: its local date, from its delivery
        cast(timezone(coalesce(numbers.timezone, 'UTC'), case
            when timeline.is_in_entry_point_window then timeline.entry_point_opened_at
            else cbp_conversations.conversation_started_at
        end) as date) as conversation_opening_date,
        timeline.is_in_entry_point_window
    from outbound
    join timeline using (message_id)
    left join cbp_conversations using (message_id)
    left join numbers
        on numbers.phone_number_id = outbound.phone_number_id
),

-- messages per conversation: all of them (as if CBP applied at every date), and those
-- the bill counts in it (delivered on CBP dates)
conversation_sizes as (
    select
        conversation_id,
        count(*) as conversation_messages,
        count(*) filter (where pricing_model = 'CBP') as conversation_billed_messages
    from assigned
    group by conversation_id
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
        conversation_sizes.conversation_messages,
        conversation_sizes.conversation_billed_messages
    from assigned
    left join calendar as opening
        on opening.calendar_date = assigned.conversation_opening_date
    left join conversation_sizes using (conversation_id)
)

select * from final
