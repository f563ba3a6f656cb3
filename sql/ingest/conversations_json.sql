-- one row per record of a conversations export read as JSON text: its fields as VARCHAR, for
-- conversations.sql to type and check, and why it is no record at all (pre_reason: not JSON,
-- not an object, not UTF-8) or null.
-- Reads: incoming(seq, line, raw, pre_reason) through json_records() (_macros.sql).
with parsed as (
    select * from json_records()
),

final as (
    select
        seq,
        line,
        raw,
        pre_reason,
        pre_detail,
        case when is_object then json_transform(raw, '{
            "id": "VARCHAR", "tenant_id": "VARCHAR", "customer_id": "VARCHAR",
            "phone_number_id": "VARCHAR", "contact_phone": "VARCHAR", "contact_bsuid": "VARCHAR",
            "contact_name": "VARCHAR", "status": "VARCHAR", "ended_reason": "VARCHAR",
            "messages_count": "VARCHAR", "last_inbound_at": "VARCHAR", "last_outbound_at": "VARCHAR",
            "started_at": "VARCHAR", "ended_at": "VARCHAR"
        }') end as field
    from parsed
)

select * from final
