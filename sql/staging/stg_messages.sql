-- one row per message_id: the lake's messages, renamed and cast; the one lookup: a
-- message from Meta's webhook logs names no tenant (the lake keeps tenant_id null), so
-- it takes its business number's tenant from convo.toml (DOMAIN R1)
-- config: kind=staging, shard_by=contact_fields
with source as (
    select * from lake_messages
),

numbers as (
    select * from phone_numbers
),

final as (
    select
        source.message_id,
        coalesce(source.tenant_id, numbers.tenant_id) as tenant_id,
        source.phone_number_id,
        contact_bsuid,
        contact_phone,
        contact_name,
        direction,
        type as message_type,
        template_name,
        template_category,
        status,
        cast(error_code as integer) as error_code,
        sent_at,
        delivered_at,
        referral_source,
        conversation_id,
        pricing_billable as meta_billable,
        pricing_model as meta_pricing_model,
        pricing_type as meta_pricing_type,
        pricing_category as meta_category,
        source_file,
        source_line
    from source
    left join numbers
        on numbers.phone_number_id = source.phone_number_id
)

select * from final
