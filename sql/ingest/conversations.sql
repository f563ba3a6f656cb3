-- one row per input record of a conversations export (DOMAIN R10): the typed
-- fields, and the first problem found (reason, detail) or null when accepted.
-- Reads: records(seq, line, raw, pre_reason, pre_detail, field): field holds the export's
-- fields as VARCHAR; made by conversations_json.sql from JSON text, or straight from a Parquet
-- file's columns (pipeline/ingest.py).
with typed as (
    select
        seq,
        line,
        raw,
        pre_reason,
        pre_detail,
        blank_to_null(field.id) as id_text,
        parse_int(field.id) as id,
        blank_to_null(field.tenant_id) as tenant_id_text,
        parse_int(field.tenant_id) as tenant_id,
        blank_to_null(field.customer_id) as customer_id,
        blank_to_null(field.phone_number_id) as phone_number_id_text,
        parse_int(field.phone_number_id) as phone_number_id,
        blank_to_null(field.contact_phone) as contact_phone_text,
        parse_phone(trim(field.contact_phone)) as contact_phone,
        blank_to_null(field.contact_bsuid) as contact_bsuid_text,
        parse_bsuid(trim(field.contact_bsuid)) as contact_bsuid,
        field.contact_name as contact_name,
        lower(blank_to_null(field.status)) as status,
        lower(blank_to_null(field.ended_reason)) as ended_reason,
        blank_to_null(field.messages_count) as messages_count_text,
        parse_int(field.messages_count) as messages_count,
        blank_to_null(field.last_inbound_at) as last_inbound_at_text,
        parse_ts(field.last_inbound_at) as last_inbound_at,
        blank_to_null(field.last_outbound_at) as last_outbound_at_text,
        parse_ts(field.last_outbound_at) as last_outbound_at,
        blank_to_null(field.started_at) as started_at_text,
        parse_ts(field.started_at) as started_at,
        blank_to_null(field.ended_at) as ended_at_text,
        parse_ts(field.ended_at) as ended_at
    from records
),

checked as (
    select
        *,
        case
            when id_text is null then ['missing_required_field', 'id']
            when tenant_id_text is null then ['missing_required_field', 'tenant_id']
            when phone_number_id_text is null then ['missing_required_field', 'phone_number_id']
            when status is null then ['missing_required_field', 'status']
            when started_at_text is null then ['missing_required_field', 'started_at']
            when id is null then ['bad_value', 'id']
            when tenant_id is null or tenant_id <= 0 then ['bad_value', 'tenant_id']
            when phone_number_id is null or phone_number_id <= 0 then ['bad_value', 'phone_number_id']
            when messages_count_text is not null and (messages_count is null or messages_count < 0)
                then ['bad_value', 'messages_count']
            when started_at is null then ['bad_timestamp', 'started_at']
            when ended_at_text is not null and ended_at is null then ['bad_timestamp', 'ended_at']
            when last_inbound_at_text is not null and last_inbound_at is null then ['bad_timestamp', 'last_inbound_at']
            when last_outbound_at_text is not null and last_outbound_at is null then ['bad_timestamp', 'last_outbound_at']
            when not list_contains(getvariable('conversation_statuses'), status) then ['unknown_enum', 'status']
            when not list_contains(getvariable('ended_reasons'), ended_reason) then ['unknown_enum', 'ended_reason']
            when contact_phone_text is not null and contact_phone is null then ['unparseable_phone', 'contact_phone']
            when contact_bsuid_text is not null and contact_bsuid is null then ['unparseable_bsuid', 'contact_bsuid']
        end as problem
    from typed
),

final as (
    select
        seq,
        line,
        id,
        tenant_id,
        customer_id,
        phone_number_id,
        contact_phone,
        contact_bsuid,
        contact_name,
        status,
        ended_reason,
        messages_count,
        last_inbound_at,
        last_outbound_at,
        started_at,
        ended_at,
        coalesce(pre_reason, problem[1]) as reason,
        case when pre_reason is not null then pre_detail else problem[2] end as detail,
        raw
    from checked
)

select * from final
