-- one row per billable unit of the bill: a CBP conversation (unit 'conversation', key
-- conversation_id = its opening message) or a PMP delivered outbound message (unit
-- 'message', key message_id), free ones included with their pricing_type, so volumes
-- line up with Meta's pricing_analytics (DOMAIN R13-R27). Money in micro-units of
-- currency; tier is Meta's "from:to" label of the volume tier the unit fell in (R24).
-- started_at is the delivery of the message (of the conversation's opening message).
-- Units with no rule (a template of unknown category, a date before the first rule)
-- or no rate in the card have a null cost.
-- config: kind=monthly, month=billing_month
-- Priced by sql/functions/bill_price.sql (scenario 'actual'), the pricing written once
-- for the bill and the what-if regimes (regime_whatif).
with bill_messages as not materialized (
    select * from int_bill_messages
),

rules as (
    select * from int_bill_rules_daily
),

numbers as (
    select * from phone_numbers
),

rates as (
    select * from int_bill_rate_quarters
),

units as (
    select * from bill_price('bill_messages', 'rules', 'numbers', 'rates', true)
),

final as (
    select
        unit,
        unit_id,
        pricing_model,
        regime,
        tenant_id,
        phone_number_id,
        contact_key,
        country_code,
        market,
        category,
        pricing_type,
        started_at,
        billing_date,
        billing_month,
        tier,
        rate_micros,
        rate_micros as cost_micros,
        currency,
        case when unit = 'message' then unit_id end as message_id,
        case when unit = 'conversation' then unit_id end as conversation_id,
        template_name,
        messages_count,
        rate_category
    from units
)

select * from final
