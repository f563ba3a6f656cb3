-- one row per message that carries Meta's own pricing object (DOMAIN R26): our estimate
-- of its pricing_model, category, pricing_type and billable flag next to Meta's, and
-- whether all four agree. A message counts in its billable unit (billable_units): a
-- CBP message takes its conversation's labels, a PMP message its own. billable means
-- charged: pricing_type regular. Undelivered messages have no estimate (never billed).
-- config: kind=cross-thread
with all_messages as (
    select * from messages
),

message_units as (
    select * from int_bill_messages
),

units as (
    select * from billable_units
),

carrying as (
    select *
    from all_messages
    where meta_pricing_model is not null
        or meta_category is not null
        or meta_pricing_type is not null
        or meta_billable is not null
),

estimated as (
    select
        carrying.message_id,
        carrying.tenant_id,
        carrying.phone_number_id,
        carrying.contact_key,
        carrying.type,
        carrying.template_name,
        carrying.status,
        carrying.is_delivered,
        coalesce(carrying.delivered_at, carrying.sent_at) as delivered_at,
        units.billing_date,
        message_units.unit,
        case when message_units.unit = 'conversation' then message_units.conversation_id
            else message_units.message_id end as unit_id,
        message_units.is_in_open_cbp_conversation,
        units.pricing_model as estimated_pricing_model,
        carrying.meta_pricing_model,
        units.category as estimated_category,
        carrying.meta_category,
        units.pricing_type as estimated_pricing_type,
        carrying.meta_pricing_type,
        units.pricing_type = 'regular' as estimated_billable,
        carrying.meta_billable
    from carrying
    left join message_units using (message_id)
    left join units
        on units.unit = message_units.unit
        and units.unit_id = case when message_units.unit = 'conversation' then message_units.conversation_id
            else message_units.message_id end
),

final as (
    select
        *,
        concat_ws(', ',
            case when estimated_pricing_model is distinct from meta_pricing_model then 'pricing_model' end,
            case when estimated_category is distinct from meta_category then 'category' end,
            case when estimated_pricing_type is distinct from meta_pricing_type then 'pricing_type' end,
            case when estimated_billable is distinct from meta_billable then 'billable' end
        ) as disagreement,
        estimated_pricing_model is not distinct from meta_pricing_model
            and estimated_category is not distinct from meta_category
            and estimated_pricing_type is not distinct from meta_pricing_type
            and estimated_billable is not distinct from meta_billable as agrees
    from estimated
)

select * from final
