-- one row per input record of a messages export: the typed fields, and the first
-- problem found (reason, detail) or null when the record is accepted.
-- Reads: records(seq, line, raw, pre_reason, pre_detail, field, pricing): field holds the
-- export's fields as VARCHAR, pricing is pricing_fields(); made by messages_json.sql from
-- JSON text, or straight from a Parquet file's columns (pipeline/ingest.py). DESIGN.md "messages".
with typed as (
    select
        seq,
        line,
        raw,
        pre_reason,
        pre_detail,
        blank_to_null(field.message_id) as message_id,
        is_present(field.tenant_id) as has_tenant_id,
        parse_int(field.tenant_id) as tenant_id,
        is_present(field.phone_number_id) as has_phone_number_id,
        parse_int(field.phone_number_id) as phone_number_id,
        blank_to_null(field.contact_bsuid) as contact_bsuid_text,
        parse_bsuid(trim(field.contact_bsuid)) as contact_bsuid,
        blank_to_null(field.contact_phone) as contact_phone_text,
        parse_phone(trim(field.contact_phone)) as contact_phone,
        field.contact_name as contact_name,
        lower(blank_to_null(field.direction)) as direction,
        lower(blank_to_null(field.type)) as type,
        blank_to_null(field.template_name) as template_name,
        lower(blank_to_null(field.template_category)) as template_category,
        lower(blank_to_null(field.status)) as status,
        is_present(field.error_code) as has_error_code,
        parse_int(field.error_code) as error_code,
        is_present(field.timestamp) as has_sent_at,
        parse_ts(field.timestamp) as sent_at,
        is_present(field.delivered_at) as has_delivered_at,
        parse_ts(field.delivered_at) as delivered_at,
        lower(blank_to_null(field.referral_source)) as referral_source,
        is_present(field.conversation_id) as has_conversation_id,
        parse_int(field.conversation_id) as conversation_id,
        unnest(pricing_values(pricing))
    from records
),

checked as (
    select
        *,
        case
            when message_id is null then ['missing_required_field', 'message_id']
            when not has_tenant_id then ['missing_required_field', 'tenant_id']
            when not has_phone_number_id then ['missing_required_field', 'phone_number_id']
            when direction is null then ['missing_required_field', 'direction']
            when type is null then ['missing_required_field', 'type']
            when status is null then ['missing_required_field', 'status']
            when not has_sent_at then ['missing_required_field', 'timestamp']
            when contact_bsuid_text is null and contact_phone_text is null
                then ['missing_required_field', 'contact_bsuid or contact_phone']
            when tenant_id is null or tenant_id <= 0 then ['bad_value', 'tenant_id']
            when phone_number_id is null or phone_number_id <= 0 then ['bad_value', 'phone_number_id']
            when has_error_code and error_code is null then ['bad_value', 'error_code']
            when has_conversation_id and conversation_id is null then ['bad_value', 'conversation_id']
            when pricing_not_object then ['bad_value', 'pricing']
            when billable_text is not null and pricing_billable is null then ['bad_value', 'pricing.billable']
            when sent_at is null then ['bad_timestamp', 'timestamp']
            when has_delivered_at and delivered_at is null then ['bad_timestamp', 'delivered_at']
            when not list_contains(getvariable('directions'), direction) then ['unknown_enum', 'direction']
            when not list_contains(getvariable('statuses'), status) then ['unknown_enum', 'status']
            when not list_contains(getvariable('template_categories'), template_category)
                then ['unknown_enum', 'template_category']
            when not list_contains(getvariable('referral_sources'), referral_source)
                then ['unknown_enum', 'referral_source']
            when not list_contains(getvariable('pricing_models'), pricing_model)
                then ['unknown_enum', 'pricing.pricing_model']
            when not list_contains(getvariable('pricing_types'), pricing_type)
                then ['unknown_enum', 'pricing.type']
            when not list_contains(getvariable('pricing_categories'), pricing_category)
                then ['unknown_enum', 'pricing.category']
            when contact_phone_text is not null and contact_phone is null then ['unparseable_phone', 'contact_phone']
            when contact_bsuid_text is not null and contact_bsuid is null then ['unparseable_bsuid', 'contact_bsuid']
        end as problem
    from typed
),

final as (
    select
        seq,
        line,
        message_id,
        tenant_id,
        phone_number_id,
        contact_bsuid,
        contact_phone,
        contact_name,
        direction,
        type,
        template_name,
        template_category,
        status,
        error_code,
        sent_at,
        delivered_at,
        referral_source,
        conversation_id,
        pricing_billable,
        pricing_model,
        pricing_type,
        pricing_category,
        coalesce(pre_reason, problem[1]) as reason,
        case when pre_reason is not null then pre_detail else problem[2] end as detail,
        raw
    from checked
)

select * from final
