-- one row per input record of a messages export: the typed fields, and the first
-- problem found (reason, detail) or null when the record is accepted.
-- Reads: incoming(seq, line, raw, pre_reason). DESIGN.md "messages".
with parsed as (
    select
        seq,
        line,
        raw,
        pre_reason,
        case when pre_reason is null and json_valid(raw) then json_type(raw) = 'OBJECT' else false end as is_object
    from incoming
),

fields as (
    select
        *,
        case when is_object then json_transform(raw, '{
            "message_id": "VARCHAR", "tenant_id": "VARCHAR", "phone_number_id": "VARCHAR",
            "contact_bsuid": "VARCHAR", "contact_phone": "VARCHAR", "contact_name": "VARCHAR",
            "direction": "VARCHAR", "type": "VARCHAR", "template_name": "VARCHAR",
            "template_category": "VARCHAR", "status": "VARCHAR", "error_code": "VARCHAR",
            "timestamp": "VARCHAR", "delivered_at": "VARCHAR", "referral_source": "VARCHAR",
            "conversation_id": "VARCHAR", "pricing": "JSON"
        }') end as field
    from parsed
),

-- Meta's pricing object, also when a writer stored it as JSON text (a CSV cell, a Parquet
-- string column, a double-encoded JSONL field): the text is read as the object it holds.
pricing_objects as (
    select
        *,
        case
            when json_type(field.pricing) = 'VARCHAR' and json_valid(field.pricing ->> '$')
                then (field.pricing ->> '$')::json
            else field.pricing
        end as pricing
    from fields
),

priced as (
    select
        *,
        case when json_type(pricing) = 'OBJECT'
            then json_transform(pricing, '{"billable": "VARCHAR", "pricing_model": "VARCHAR",
                "type": "VARCHAR", "category": "VARCHAR"}') end as price,
        coalesce(json_type(pricing) <> 'OBJECT', false) as pricing_not_object
    from pricing_objects
),

typed as (
    select
        seq,
        line,
        raw,
        pre_reason,
        is_object,
        blank_to_null(field.message_id) as message_id,
        blank_to_null(field.tenant_id) as tenant_id_text,
        parse_int(trim(field.tenant_id)) as tenant_id,
        blank_to_null(field.phone_number_id) as phone_number_id_text,
        parse_int(trim(field.phone_number_id)) as phone_number_id,
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
        blank_to_null(field.error_code) as error_code_text,
        parse_int(trim(field.error_code)) as error_code,
        blank_to_null(field.timestamp) as sent_at_text,
        parse_ts(trim(field.timestamp)) as sent_at,
        blank_to_null(field.delivered_at) as delivered_at_text,
        parse_ts(trim(field.delivered_at)) as delivered_at,
        lower(blank_to_null(field.referral_source)) as referral_source,
        blank_to_null(field.conversation_id) as conversation_id_text,
        parse_int(trim(field.conversation_id)) as conversation_id,
        pricing_not_object,
        price.billable as billable_text,
        parse_bool(trim(price.billable)) as pricing_billable,
        upper(blank_to_null(price.pricing_model)) as pricing_model,
        lower(blank_to_null(price.type)) as pricing_type,
        lower(blank_to_null(price.category)) as pricing_category
    from priced
),

checked as (
    select
        *,
        case
            when message_id is null then ['missing_required_field', 'message_id']
            when tenant_id_text is null then ['missing_required_field', 'tenant_id']
            when phone_number_id_text is null then ['missing_required_field', 'phone_number_id']
            when direction is null then ['missing_required_field', 'direction']
            when type is null then ['missing_required_field', 'type']
            when status is null then ['missing_required_field', 'status']
            when sent_at_text is null then ['missing_required_field', 'timestamp']
            when contact_bsuid_text is null and contact_phone_text is null
                then ['missing_required_field', 'contact_bsuid or contact_phone']
            when tenant_id is null or tenant_id <= 0 then ['bad_value', 'tenant_id']
            when phone_number_id is null or phone_number_id <= 0 then ['bad_value', 'phone_number_id']
            when error_code_text is not null and error_code is null then ['bad_value', 'error_code']
            when conversation_id_text is not null and conversation_id is null then ['bad_value', 'conversation_id']
            when pricing_not_object then ['bad_value', 'pricing']
            when billable_text is not null and pricing_billable is null then ['bad_value', 'pricing.billable']
            when sent_at is null then ['bad_timestamp', 'timestamp']
            when delivered_at_text is not null and delivered_at is null then ['bad_timestamp', 'delivered_at']
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
        case
            when pre_reason is not null then pre_reason
            when not is_object then 'malformed_json'
            else problem[1]
        end as reason,
        case
            when pre_reason is not null then null
            when not is_object and json_valid(raw) then 'not a JSON object'
            when is_object then problem[2]
        end as detail,
        raw
    from checked
)

select * from final
