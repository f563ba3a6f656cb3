-- one row per record of a Meta Cloud API webhook log (DESIGN.md "Meta Cloud API webhook logs"):
-- each value.messages[] element (an inbound message), each value.statuses[] element (an
-- outbound message's status), each value.calls[] connect event of a "calls" change (a user's
-- call, which opens a window like a message, DOMAIN R4) and each account_update tier change, typed as a row of the lake's
-- messages or meta_tier_updates dataset (target_dataset); or the body, change or element that
-- cannot be read, with its reason, detail (where in the body, and which field) and raw text.
-- contacts[] are not records: they give the message of the same change its name and its other
-- identity (DOMAIN R2). Meta sends no tenant: tenant_id is null (README "From Meta's webhooks").
-- A status row's sent_at is its own time and its type is 'template' when Meta's pricing (else
-- conversation.origin) category is a template's, else 'unknown'; ingest merges the statuses of
-- one message (pipeline/ingest.py: earliest sent_at and delivery, latest status, known type).
-- Reads: incoming(seq, line, raw, pre_reason) through json_records() (_macros.sql).
with bodies as (
    select * from json_records()
),

-- A body: a JSON object {"object": "whatsapp_business_account", "entry": [...]}.
body_checked as materialized (
    select
        seq,
        line,
        raw,
        case
            when pre_reason is not null then [pre_reason, pre_detail]
            when json_type(raw, '$.object') is null then ['missing_required_field', 'object']
            when raw ->> '$.object' is distinct from 'whatsapp_business_account' then ['bad_value', 'object']
            when json_type(raw, '$.entry') is null then ['missing_required_field', 'entry']
            when json_type(raw, '$.entry') <> 'ARRAY' then ['bad_value', 'entry']
            when json_array_length(raw, '$.entry') = 0 then ['missing_required_field', 'entry[]']
        end as problem
    from bodies
),

entries as (
    select
        seq,
        line,
        unnest(entry_list) as entry,
        generate_subscripts(entry_list, 1) - 1 as entry_index
    from (
        select seq, line, json_transform(raw -> '$.entry', '["JSON"]') as entry_list
        from body_checked
        where problem is null
    )
),

entry_checked as materialized (
    select
        *,
        'entry[' || entry_index || ']' as entry_path,
        case
            when json_type(entry) <> 'OBJECT' then ['bad_value', '']
            when json_type(entry, '$.changes') is null then ['missing_required_field', '.changes']
            when json_type(entry, '$.changes') <> 'ARRAY' then ['bad_value', '.changes']
            when json_array_length(entry, '$.changes') = 0 then ['missing_required_field', '.changes[]']
        end as problem
    from entries
),

changes as (
    select
        seq,
        line,
        entry_index,
        entry_path,
        entry ->> '$.id' as waba_id,
        unnest(change_list) as change,
        generate_subscripts(change_list, 1) - 1 as change_index
    from (
        select *, json_transform(entry -> '$.changes', '["JSON"]') as change_list
        from entry_checked
        where problem is null
    )
),

-- A change: field "messages" (messages, statuses, contacts of one business number), "calls"
-- (calls[] {id, event, from, timestamp}: Meta's calling webhooks, a shape taken from third-party
-- code, not from META_FACTS) or "account_update" with event VOLUME_BASED_PRICING_TIER_UPDATE;
-- convo reads no other.
change_checked as materialized (
    select
        *,
        entry_path || '.changes[' || change_index || ']' as change_path,
        change ->> '$.field' as field_name,
        change -> '$.value' as value,
        case
            when json_type(change) <> 'OBJECT' then ['bad_value', '']
            when blank_to_null(change ->> '$.field') is null then ['missing_required_field', '.field']
            when json_type(change, '$.value') is distinct from 'OBJECT' then
                [case when json_type(change, '$.value') is null then 'missing_required_field' else 'bad_value' end,
                 '.value']
            when change ->> '$.field' in ('messages', 'calls') then
                case
                    when not is_present(change ->> '$.value.metadata.phone_number_id')
                        then ['missing_required_field', '.value.metadata.phone_number_id']
                    when coalesce(parse_int(change ->> '$.value.metadata.phone_number_id') <= 0, true)
                        then ['bad_value', '.value.metadata.phone_number_id']
                    when change ->> '$.field' = 'calls' and coalesce(json_array_length(change, '$.value.calls'), 0) = 0
                        then ['missing_required_field', '.value.calls']
                    when change ->> '$.field' = 'messages'
                        and coalesce(json_array_length(change, '$.value.messages'), 0)
                            + coalesce(json_array_length(change, '$.value.statuses'), 0) = 0
                        then ['missing_required_field', '.value.messages or .value.statuses']
                end
            when change ->> '$.field' = 'account_update' then
                case
                    when change ->> '$.value.event' is distinct from 'VOLUME_BASED_PRICING_TIER_UPDATE'
                        then ['unsupported_webhook', '.value.event ' || coalesce(change ->> '$.value.event', 'missing')]
                end
            else ['unsupported_webhook', '.field ' || (change ->> '$.field')]
        end as problem
    from changes
),

message_changes as materialized (
    select
        *,
        parse_int(value ->> '$.metadata.phone_number_id') as phone_number_id,
        coalesce(json_transform(value -> '$.contacts', '["JSON"]'), []) as contact_list
    from change_checked
    where problem is null and field_name in ('messages', 'calls')
),

-- contacts[] of a change, typed; a contact that is not an object is quarantined and not used.
contact_elements as (
    select
        seq,
        line,
        change_path,
        unnest(contact_list) as contact,
        generate_subscripts(contact_list, 1) - 1 as element_index
    from message_changes
),

contacts as (
    select
        seq,
        change_path,
        list(json_transform(contact, '{"wa_id": "VARCHAR", "user_id": "VARCHAR",
            "parent_user_id": "VARCHAR", "profile": {"name": "VARCHAR", "username": "VARCHAR"}}'))
            filter (where json_type(contact) = 'OBJECT') as contact_structs
    from contact_elements
    group by seq, change_path
),

-- One row per messages[] and statuses[] element, with the change's contacts beside it.
elements as (
    select
        seq,
        line,
        change_path,
        phone_number_id,
        kind,
        element,
        element_index,
        coalesce(contacts.contact_structs, []) as contact_structs
    from (
        select
            seq, line, change_path, phone_number_id, 'messages' as kind,
            unnest(json_transform(value -> '$.messages', '["JSON"]')) as element,
            generate_subscripts(json_transform(value -> '$.messages', '["JSON"]'), 1) - 1 as element_index
        from message_changes
        union all
        select
            seq, line, change_path, phone_number_id, 'statuses' as kind,
            unnest(json_transform(value -> '$.statuses', '["JSON"]')) as element,
            generate_subscripts(json_transform(value -> '$.statuses', '["JSON"]'), 1) - 1 as element_index
        from message_changes
        union all
        select
            seq, line, change_path, phone_number_id, 'calls' as kind,
            unnest(json_transform(value -> '$.calls', '["JSON"]')) as element,
            generate_subscripts(json_transform(value -> '$.calls', '["JSON"]'), 1) - 1 as element_index
        from message_changes
    ) as listed
    left join contacts using (seq, change_path)
),

element_fields as (
    select
        *,
        change_path || '.value.' || kind || '[' || element_index || ']' as element_path,
        json_type(element) = 'OBJECT' as is_object,
        case when json_type(element) = 'OBJECT' then json_transform(element, '{
            "id": "VARCHAR", "timestamp": "VARCHAR", "type": "VARCHAR", "status": "VARCHAR",
            "from": "VARCHAR", "from_user_id": "VARCHAR", "from_parent_user_id": "VARCHAR",
            "recipient_id": "VARCHAR", "recipient_user_id": "VARCHAR",
            "parent_recipient_user_id": "VARCHAR", "parent_user_id": "VARCHAR",
            "referral": "JSON", "conversation": "JSON", "errors": "JSON", "event": "VARCHAR",
            "recipient_type": "VARCHAR", "group_id": "VARCHAR"
        }') end as field,
        pricing_object_fields(element -> '$.pricing') as pricing
    from elements
),

-- The contact a message or status is about: the one whose ids match, else the only one.
element_contacts as (
    select
        *,
        case when kind = 'statuses' then blank_to_null(field.recipient_id) else blank_to_null(field."from") end
            as own_phone,
        case when kind = 'statuses' then blank_to_null(field.recipient_user_id)
            else blank_to_null(field.from_user_id) end as own_bsuid,
        case when kind <> 'statuses' then blank_to_null(field.from_parent_user_id)
            else coalesce(blank_to_null(field.parent_recipient_user_id), blank_to_null(field.parent_user_id))
        end as own_parent_bsuid
    from element_fields
),

matched as (
    select
        *,
        coalesce(
            list_filter(contact_structs, lambda contact: contact.wa_id = own_phone or contact.user_id = own_bsuid
                or contact.parent_user_id = own_parent_bsuid)[1],
            case when len(contact_structs) = 1 then contact_structs[1] end
        ) as contact
    from element_contacts
),

typed as (
    select
        seq,
        line,
        element_index,
        kind,
        element_path,
        element::varchar as element_text,
        is_object,
        blank_to_null(field.id) as message_id,
        phone_number_id,
        -- DOMAIN R2: the business-scoped id (user_id, from_user_id, recipient_user_id, else the
        -- parent_* one) is the bsuid; wa_id / from / recipient_id, when sent, the phone.
        coalesce(own_bsuid, blank_to_null(contact.user_id), own_parent_bsuid,
                 blank_to_null(contact.parent_user_id)) as contact_bsuid_text,
        coalesce(own_phone, blank_to_null(contact.wa_id)) as contact_phone_text,
        coalesce(contact.profile.name, blank_to_null(contact.profile.username)) as contact_name,
        case kind when 'statuses' then 'outbound' else 'inbound' end as direction,
        case kind when 'calls' then 'call' else lower(blank_to_null(field.type)) end as inbound_type,
        lower(blank_to_null(field.event)) as call_event,
        lower(field.recipient_type) = 'group' or blank_to_null(field.group_id) is not null as is_group,
        case kind when 'statuses' then lower(blank_to_null(field.status)) else 'received' end as status,
        is_present(field.timestamp) as has_timestamp,
        parse_ts(field.timestamp) as event_at,
        field.referral as referral,
        json_type(field.errors) is not distinct from 'ARRAY' and json_array_length(field.errors) > 0 as has_errors,
        field.errors ->> '$[0].code' as error_code_text,
        json_type(field.conversation) as conversation_type,
        lower(blank_to_null(field.conversation ->> '$.origin.type')) as origin_category,
        unnest(pricing_values(pricing))
    from matched
),

-- The lake's messages columns. A status's category at send time is its pricing object's
-- (else its conversation's origin): the rate Meta applied names a template's category; Meta's
-- authentication-international and marketing_lite are authentication and marketing templates
-- (convo applies R25 itself). service and referral_conversion name no template category.
shaped as (
    select
        *,
        parse_bsuid(trim(contact_bsuid_text)) as contact_bsuid,
        parse_phone(trim(contact_phone_text)) as contact_phone,
        case
            when kind = 'statuses' then
                case replace(coalesce(pricing_category, origin_category), '_', '-')
                    when 'marketing' then 'marketing'
                    when 'marketing-lite' then 'marketing'
                    when 'utility' then 'utility'
                    when 'authentication' then 'authentication'
                    when 'authentication-international' then 'authentication'
                end
        end as template_category,
        case
            when kind = 'messages' and json_type(referral) = 'OBJECT' then
                case when lower(referral ->> '$.source_type') = 'post' then 'page_cta' else 'ad' end
        end as referral_source,
        parse_int(error_code_text) as error_code
    from typed
),

element_checked as materialized (
    select
        *,
        case
            when not is_object then ['bad_value', '']
            when message_id is null then ['missing_required_field', '.id']
            when not has_timestamp then ['missing_required_field', '.timestamp']
            when kind = 'calls' and call_event is distinct from 'connect'
                then ['unsupported_webhook', '.event ' || coalesce(call_event, 'missing')]
            when kind = 'messages' and inbound_type is null then ['missing_required_field', '.type']
            when kind = 'statuses' and status is null then ['missing_required_field', '.status']
            when contact_bsuid_text is null and contact_phone_text is null then
                ['missing_required_field', case kind when 'statuses' then '.recipient_id or .recipient_user_id'
                                                     else '.from or .from_user_id' end]
            when event_at is null then ['bad_timestamp', '.timestamp']
            when kind = 'messages' and inbound_type = 'system' then ['unsupported_webhook', '.type system']
            when is_group then ['unsupported_webhook', '.group']
            when kind = 'statuses' and not list_contains(['sent', 'delivered', 'read', 'failed'], status)
                then ['unknown_enum', '.status']
            when has_errors and error_code is null then ['bad_value', '.errors[0].code']
            when pricing_not_object then ['bad_value', '.pricing']
            when billable_text is not null and pricing_billable is null then ['bad_value', '.pricing.billable']
            when not list_contains(getvariable('pricing_models'), pricing_model)
                then ['unknown_enum', '.pricing.pricing_model']
            when not list_contains(getvariable('pricing_types'), pricing_type) then ['unknown_enum', '.pricing.type']
            when not list_contains(getvariable('pricing_categories'), pricing_category)
                then ['unknown_enum', '.pricing.category']
            when contact_phone_text is not null and contact_phone is null then ['unparseable_phone', '.recipient']
            when contact_bsuid_text is not null and contact_bsuid is null then ['unparseable_bsuid', '.recipient']
        end as problem
    from shaped
),

-- account_update: Meta's volume tier change for a WABA (META_FACTS 2.3), e.g.
-- {"tier_update_time": 1743451903, "pricing_category": "UTILITY", "tier": "25000001:50000000",
--  "effective_month": "2025-11", "region": "India"}.
tier_changes as (
    select
        seq,
        line,
        change_path,
        change::varchar as change_text,
        blank_to_null(waba_id) as waba_id,
        is_present(value ->> '$.volume_tier_info.tier_update_time') as has_update_time,
        parse_ts(value ->> '$.volume_tier_info.tier_update_time') as tier_update_time,
        lower(blank_to_null(value ->> '$.volume_tier_info.pricing_category')) as pricing_category,
        trim(value ->> '$.volume_tier_info.tier') as tier,
        regexp_extract(trim(value ->> '$.volume_tier_info.tier'), '^([0-9]{1,18}):([0-9]{1,18}|MAX)$',
                       ['lower', 'upper']) as tier_parts,
        trim(value ->> '$.volume_tier_info.effective_month') as effective_month,
        blank_to_null(value ->> '$.volume_tier_info.region') as region
    from change_checked
    where problem is null and field_name = 'account_update'
),

tier_checked as materialized (
    select
        *,
        case
            when waba_id is null then ['missing_required_field', 'entry[].id']
            when not has_update_time then ['missing_required_field', '.value.volume_tier_info.tier_update_time']
            when pricing_category is null then ['missing_required_field', '.value.volume_tier_info.pricing_category']
            when blank_to_null(tier) is null then ['missing_required_field', '.value.volume_tier_info.tier']
            when blank_to_null(effective_month) is null
                then ['missing_required_field', '.value.volume_tier_info.effective_month']
            when region is null then ['missing_required_field', '.value.volume_tier_info.region']
            when tier_update_time is null then ['bad_timestamp', '.value.volume_tier_info.tier_update_time']
            when tier_parts.lower = '' then ['bad_value', '.value.volume_tier_info.tier']
            when not regexp_full_match(effective_month, '20[0-9]{2}-(0[1-9]|1[0-2])')
                then ['bad_value', '.value.volume_tier_info.effective_month']
            when not list_contains(getvariable('analytics_pricing_categories'), replace(pricing_category, '-', '_'))
                then ['unknown_enum', '.value.volume_tier_info.pricing_category']
        end as problem
    from tier_changes
),

-- Every record of the batch, ordered as written: a body's elements keep their order in seq
-- (line * 100 + their place, at most 99: ingest keeps seq below the next file's).
records as (
    select seq, line, 0 as place, 'messages' as target_dataset, problem, raw as raw_text,
        null::varchar as path
    from body_checked where problem is not null
    union all
    select seq, line, 0, 'messages', problem, entry::varchar, entry_path
    from entry_checked where problem is not null
    union all
    select seq, line, 0, 'messages', problem, change::varchar, change_path
    from change_checked where problem is not null
    union all
    select seq, line, 0, 'messages', ['bad_value', ''], contact::varchar,
        change_path || '.value.contacts[' || element_index || ']'
    from contact_elements where json_type(contact) <> 'OBJECT'
    union all
    select seq, line, 0, 'meta_tier_updates', problem, change_text, change_path
    from tier_checked
    union all
    select seq, line, 0, 'messages', problem, element_text, element_path
    from element_checked
),

numbered as materialized (
    select
        *,
        row_number() over (partition by seq order by path nulls first) - 1 as position
    from records
),

final_messages as (
    select
        element_checked.seq,
        element_checked.line,
        element_checked.element_path as path,
        message_id,
        null::bigint as tenant_id,
        phone_number_id,
        contact_bsuid,
        contact_phone,
        contact_name,
        direction,
        -- A status does not say a non-template message's type: 'unknown' (a status with pricing
        -- says it is not a template; one without, nothing: ingest prefers a known type).
        case
            when kind <> 'statuses' then inbound_type
            when template_category is not null then 'template'
            else 'unknown'
        end as type,
        null::varchar as template_name,
        template_category,
        status,
        error_code,
        event_at as sent_at,
        case when status in ('delivered', 'read') then event_at end as delivered_at,
        referral_source,
        null::bigint as conversation_id,
        pricing_billable,
        pricing_model,
        pricing_type,
        pricing_category
    from element_checked
    where problem is null
),

final_tiers as (
    select
        seq,
        line,
        change_path as path,
        waba_id,
        tier_update_time,
        pricing_category,
        cast(tier_parts.lower as bigint) as tier_lower,
        case when tier_parts.upper <> 'MAX' then cast(tier_parts.upper as bigint) end as tier_upper,
        effective_month,
        region
    from tier_checked
    where problem is null
),

final as (
    select
        numbered.seq - numbered.line + numbered.line * 100 + least(numbered.position, 99) as seq,
        numbered.line,
        numbered.target_dataset,
        final_messages.* exclude (seq, line, path),
        final_tiers.* exclude (seq, line, path, pricing_category),
        final_tiers.pricing_category as tier_pricing_category,
        numbered.problem[1] as reason,
        case when numbered.problem is not null then ltrim(coalesce(numbered.path, '') || numbered.problem[2], '.')
        end as detail,
        case when numbered.problem is not null then numbered.raw_text end as raw
    from numbered
    left join final_messages
        on numbered.target_dataset = 'messages' and final_messages.seq = numbered.seq
        and final_messages.path = numbered.path
    left join final_tiers
        on numbered.target_dataset = 'meta_tier_updates' and final_tiers.seq = numbered.seq
        and final_tiers.path = numbered.path
)

select * from final
