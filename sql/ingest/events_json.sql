-- one row per line of the webhook event log read as JSON text: the event's fields and
-- the conversation it carries (data) as VARCHAR, for events.sql to type and check, and
-- why it is no record at all (pre_reason: not JSON, not an object, not UTF-8) or null.
-- Reads: incoming(seq, line, raw, pre_reason) through json_records() (_macros.sql).
with parsed as (
    select * from json_records()
),

events as (
    select
        *,
        case when is_object
            then json_transform(raw, '{"id": "VARCHAR", "type": "VARCHAR", "created_at": "VARCHAR"}') end as event,
        case when is_object then raw->'$.data' end as data
    from parsed
),

final as (
    select
        seq,
        line,
        raw,
        pre_reason,
        pre_detail,
        struct_pack(
            id := event.id,
            type := event.type,
            created_at := event.created_at,
            has_data := data is not null and json_type(data) = 'OBJECT',
            data := case when json_type(data) = 'OBJECT' then json_transform(data, '{
                "id": "VARCHAR", "tenant_id": "VARCHAR", "phone_number_id": "VARCHAR",
                "contact_phone": "VARCHAR", "contact_bsuid": "VARCHAR", "status": "VARCHAR",
                "ended_reason": "VARCHAR", "started_at": "VARCHAR", "ended_at": "VARCHAR"
            }') end
        ) as field
    from events
)

select * from final
