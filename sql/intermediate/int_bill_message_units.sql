-- one row per delivered outbound message: the billable unit it counts in under the
-- regime in force ('actual'): its CBP conversation when its billing date falls in a
-- CBP regime, or when it is a template inside a conversation of its category opened
-- under CBP that the rules of its date keep open (DOMAIN R20: a CBP utility
-- conversation open at the switch keeps its utility templates free); else the message
-- itself (PMP, R18). unit_id is the conversation's opening message_id or the message_id.
with bill_messages as (
    select * from int_bill_messages
),

calendar as (
    select * from int_bill_calendar
),

rules as (
    select * from int_bill_rules_daily where scenario = 'actual'
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

flagged as (
    select
        bill_messages.message_id,
        bill_messages.conversation_id,
        bill_messages.pricing_model = 'CBP' as is_cbp_date,
        coalesce(
            bill_messages.pricing_model = 'PMP'
                and rules.is_cbp_carry_over
                and bill_messages.is_template
                and not bill_messages.is_in_entry_point_window
                and bill_messages.conversation_category = bill_messages.category
                and conversation_openings.opening_pricing_model = 'CBP',
            false
        ) as is_carried_over
    from bill_messages
    left join rules
        on rules.calendar_date = bill_messages.billing_date
        and rules.category = bill_messages.category
    left join conversation_openings using (conversation_id)
),

final as (
    select
        message_id,
        case when is_cbp_date or is_carried_over then 'conversation' else 'message' end as unit,
        case when is_cbp_date or is_carried_over then conversation_id else message_id end as unit_id,
        is_carried_over
    from flagged
)

select * from final
