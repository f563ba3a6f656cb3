-- one row per message_id: the lake's messages, renamed and cast, nothing more
-- config: kind=staging, shard_by=contact_fields
with source as (
    select * from lake_messages
),

final as (
    select
        message_id,
        tenant_id,
        phone_number_id,
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
)

select * from final
