-- one row per billable unit of the bill: a CBP conversation (unit 'conversation', key
-- conversation_id = its opening message) or a PMP delivered outbound message (unit
-- 'message', key message_id), free ones included with their pricing_type, so volumes
-- line up with Meta's pricing_analytics (DOMAIN R13-R27). Money in micro-units of
-- currency; tier is Meta's "from:to" label of the volume tier the unit fell in (R24).
-- started_at is the delivery of the message (of the conversation's opening message).
-- Units with no rule (a template of unknown category, a date before the first rule)
-- or no rate in the card have a null cost.
-- config: kind=monthly, month=billing_month
with units as (
    select * from int_bill_units
    where scenario = 'actual'
),

outbound as (
    select * from int_bill_messages
),

final as (
    select
        units.unit,
        units.unit_id,
        units.pricing_model,
        units.regime,
        units.tenant_id,
        units.phone_number_id,
        outbound.contact_key,
        outbound.country_code,
        units.market,
        units.category,
        units.pricing_type,
        outbound.event_at as started_at,
        units.billing_date,
        units.billing_month,
        units.tier,
        units.rate_micros,
        units.cost_micros,
        units.currency,
        case when units.unit = 'message' then units.unit_id end as message_id,
        case when units.unit = 'conversation' then units.unit_id end as conversation_id,
        outbound.template_name,
        units.messages_count,
        units.rate_category
    from units
    join outbound
        on outbound.message_id = units.unit_id
)

select * from final
