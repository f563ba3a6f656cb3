-- one row per record of a messages export read as JSON text (JSONL, CSV, JSON pages):
-- its fields as VARCHAR, for messages.sql to type and check, and why it is no record at
-- all (pre_reason: not JSON, not an object, not UTF-8) or null.
-- Reads: incoming(seq, line, raw, pre_reason) through json_records() (_macros.sql). DESIGN.md "messages".
with parsed as (
    select * from json_records()
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

final as (
    select
        seq,
        line,
        raw,
        pre_reason,
        pre_detail,
        field,
        pricing_fields(field.pricing) as pricing
    from fields
)

select * from final
