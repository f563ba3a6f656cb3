-- one row per input record of the webhook event log (DOMAIN R11): the event and
-- the conversation it carries, and the first problem found or null when accepted.
-- Reads: records(seq, line, raw, pre_reason, pre_detail, field): field holds the event's
-- fields, has_data and the conversation (data) as VARCHAR; made by events_json.sql.
with typed as (
    select
        seq,
        line,
        raw,
        pre_reason,
        pre_detail,
        field.has_data as has_data,
        blank_to_null(field.id) as event_id,
        lower(blank_to_null(field.type)) as type,
        blank_to_null(field.created_at) as created_at_text,
        parse_ts(field.created_at) as created_at,
        blank_to_null(field.data.id) as conversation_id_text,
        parse_int(field.data.id) as conversation_id,
        parse_int(field.data.tenant_id) as tenant_id,
        blank_to_null(field.data.phone_number_id) as phone_number_id_text,
        parse_int(field.data.phone_number_id) as phone_number_id,
        blank_to_null(field.data.contact_phone) as contact_phone_text,
        parse_phone(trim(field.data.contact_phone)) as contact_phone,
        blank_to_null(field.data.contact_bsuid) as contact_bsuid_text,
        parse_bsuid(trim(field.data.contact_bsuid)) as contact_bsuid,
        lower(blank_to_null(field.data.status)) as status,
        lower(blank_to_null(field.data.ended_reason)) as ended_reason,
        blank_to_null(field.data.started_at) as started_at_text,
        parse_ts(field.data.started_at) as started_at,
        blank_to_null(field.data.ended_at) as ended_at_text,
        parse_ts(field.data.ended_at) as ended_at
    from records
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
        seq,
        line,
        event_id,
        type,
        created_at,
        conversation_id,
        tenant_id,
        phone_number_id,
        contact_phone,
        contact_bsuid,
        status,
        ended_reason,
        started_at,
        ended_at,
        coalesce(pre_reason, problem[1]) as reason,
        case when pre_reason is not null then pre_detail else problem[2] end as detail,
        raw
    from checked
)

select * from final
