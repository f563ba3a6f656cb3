-- one row per input record of the webhook event log (DOMAIN R11): the event and
-- the conversation it carries, and the first problem found or null when accepted.
-- Reads: incoming(seq, line, raw, pre_reason).
with objects as (
    select seq, line, raw
    from incoming
    where pre_reason is null and json_valid(raw) and json_type(raw) = 'OBJECT'
),

fields as (
    select
        seq,
        json_transform(raw, '{"id": "VARCHAR", "type": "VARCHAR", "created_at": "VARCHAR", "data": "JSON"}') as event,
        raw->'$.data' as data
    from objects
),

conversation as (
    select
        seq,
        event,
        data is not null and json_type(data) = 'OBJECT' as has_data,
        case when json_type(data) = 'OBJECT' then json_transform(data, '{
            "id": "VARCHAR", "tenant_id": "VARCHAR", "phone_number_id": "VARCHAR",
            "contact_phone": "VARCHAR", "contact_bsuid": "VARCHAR", "status": "VARCHAR",
            "ended_reason": "VARCHAR", "started_at": "VARCHAR", "ended_at": "VARCHAR"
        }') end as field
    from fields
),

typed as (
    select
        seq,
        has_data,
        blank_to_null(event.id) as event_id,
        lower(blank_to_null(event.type)) as type,
        blank_to_null(event.created_at) as created_at_text,
        parse_ts(trim(event.created_at)) as created_at,
        blank_to_null(field.id) as conversation_id_text,
        parse_int(trim(field.id)) as conversation_id,
        parse_int(trim(field.tenant_id)) as tenant_id,
        blank_to_null(field.phone_number_id) as phone_number_id_text,
        parse_int(trim(field.phone_number_id)) as phone_number_id,
        blank_to_null(field.contact_phone) as contact_phone_text,
        parse_phone(trim(field.contact_phone)) as contact_phone,
        blank_to_null(field.contact_bsuid) as contact_bsuid_text,
        parse_bsuid(trim(field.contact_bsuid)) as contact_bsuid,
        lower(blank_to_null(field.status)) as status,
        lower(blank_to_null(field.ended_reason)) as ended_reason,
        blank_to_null(field.started_at) as started_at_text,
        parse_ts(trim(field.started_at)) as started_at,
        blank_to_null(field.ended_at) as ended_at_text,
        parse_ts(trim(field.ended_at)) as ended_at
    from conversation
),

checked as (
    select
        *,
        case
            when event_id is null then ['missing_required_field', 'id']
            when type is null then ['missing_required_field', 'type']
            when created_at_text is null then ['missing_required_field', 'created_at']
            when not has_data then ['missing_required_field', 'data']
            when conversation_id_text is null then ['missing_required_field', 'data.id']
            when phone_number_id_text is null then ['missing_required_field', 'data.phone_number_id']
            when conversation_id is null then ['bad_value', 'data.id']
            when phone_number_id is null or phone_number_id <= 0 then ['bad_value', 'data.phone_number_id']
            when created_at is null then ['bad_timestamp', 'created_at']
            when started_at_text is not null and started_at is null then ['bad_timestamp', 'data.started_at']
            when ended_at_text is not null and ended_at is null then ['bad_timestamp', 'data.ended_at']
            when not list_contains(getvariable('event_types'), type) then ['unknown_enum', 'type']
            when not list_contains(getvariable('conversation_statuses'), status) then ['unknown_enum', 'data.status']
            when not list_contains(getvariable('ended_reasons'), ended_reason) then ['unknown_enum', 'data.ended_reason']
            when contact_phone_text is not null and contact_phone is null then ['unparseable_phone', 'data.contact_phone']
            when contact_bsuid_text is not null and contact_bsuid is null then ['unparseable_bsuid', 'data.contact_bsuid']
        end as problem
    from typed
),

final as (
    select
        incoming.seq,
        incoming.line,
        checked.event_id,
        checked.type,
        checked.created_at,
        checked.conversation_id,
        checked.tenant_id,
        checked.phone_number_id,
        checked.contact_phone,
        checked.contact_bsuid,
        checked.status,
        checked.ended_reason,
        checked.started_at,
        checked.ended_at,
        case
            when incoming.pre_reason is not null then incoming.pre_reason
            when checked.seq is null then 'malformed_json'
            else checked.problem[1]
        end as reason,
        case
            when incoming.pre_reason is not null then null
            when checked.seq is null and json_valid(incoming.raw) then 'not a JSON object'
            when checked.seq is not null then checked.problem[2]
        end as detail,
        incoming.raw
    from incoming
    left join checked using (seq)
)

select * from final
