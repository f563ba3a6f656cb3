-- one row per delivered outbound message: the billable unit it counts in under the
-- regime in force ('actual'): its CBP conversation when its billing date falls in a
-- CBP regime (R13-R17), else the message itself (PMP, R18; the delivery decides the
-- regime, R27). unit_id is the conversation's opening message_id, or the message_id.
-- is_in_open_cbp_conversation: a PMP template inside a conversation of its category
-- opened on a CBP date, still open (DOMAIN R20; the rules say how it is priced).
with bill_messages as (
    select * from int_bill_messages
),

calendar as (
    select * from int_bill_calendar
),

conversation_openings as (
    select
        bill_messages.message_id as conversation_id,
        calendar.pricing_model as opening_pricing_model
    from bill_messages
    left join calendar
        on calendar.calendar_date = bill_messages.billing_date
    where bill_messages.message_id = bill_messages.conversation_id
),

final as (
    select
        bill_messages.message_id,
        case when bill_messages.pricing_model = 'CBP' then 'conversation' else 'message' end as unit,
        case
            when bill_messages.pricing_model = 'CBP' then bill_messages.conversation_id
            else bill_messages.message_id
        end as unit_id,
        coalesce(
            bill_messages.pricing_model = 'PMP'
                and bill_messages.is_template
                and not bill_messages.is_in_entry_point_window
                and bill_messages.conversation_category = bill_messages.category
                and conversation_openings.opening_pricing_model = 'CBP',
            false
        ) as is_in_open_cbp_conversation
    from bill_messages
    left join conversation_openings using (conversation_id)
)

select * from final
