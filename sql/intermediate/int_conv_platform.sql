-- one row per platform conversation id: what the platform itself says about the
-- conversation, from its exported record (DOMAIN R10) and its webhook events (R11),
-- for conversation_reconciliation. The record wins where both say something; an
-- ended event completes a record exported while the conversation was still open.
-- observed_at is a lower bound of the moment this state was true: the newest
-- timestamp in the export file the record came from, or the newest event about it.
-- config: kind=cross-thread
with exported as (
    select * from lake_conversations
),

events as (
    select * from lake_events
),

contact_keys as (
    select * from int_contact_keys
),

file_horizons as (
    select
        source_file,
        max(greatest(started_at, ended_at, last_inbound_at, last_outbound_at)) as observed_at
    from exported
    group by source_file
),

event_facts as (
    select
        conversation_id,
        any_value(tenant_id) as tenant_id,
        any_value(phone_number_id) as phone_number_id,
        arg_max(contact_bsuid, created_at) as contact_bsuid,
        arg_max(contact_phone, created_at) as contact_phone,
        min(started_at) as started_at,
        max(created_at) as last_event_at,
        arg_max(coalesce(ended_at, created_at), created_at) filter (
            where type = 'whatsapp.conversation.ended'
        ) as ended_at,
        arg_max(ended_reason, created_at) filter (where type = 'whatsapp.conversation.ended') as ended_reason
    from events
    where conversation_id is not null
    group by conversation_id
),

merged as (
    select
        coalesce(exported.id, event_facts.conversation_id) as platform_conversation_id,
        coalesce(exported.tenant_id, event_facts.tenant_id) as tenant_id,
        coalesce(exported.phone_number_id, event_facts.phone_number_id) as phone_number_id,
        coalesce(exported.contact_bsuid, event_facts.contact_bsuid) as contact_bsuid,
        coalesce(exported.contact_phone, event_facts.contact_phone) as contact_phone,
        exported.status as exported_status,
        coalesce(exported.started_at, event_facts.started_at) as started_at,
        coalesce(exported.ended_at, event_facts.ended_at) as ended_at,
        coalesce(exported.ended_reason, event_facts.ended_reason) as ended_reason,
        exported.messages_count,
        exported.last_inbound_at,
        exported.last_outbound_at,
        greatest(exported.last_inbound_at, exported.last_outbound_at) as last_message_at,
        greatest(file_horizons.observed_at, event_facts.last_event_at) as observed_at,
        case
            when exported.id is not null and event_facts.conversation_id is not null then 'record+events'
            when exported.id is not null then 'record'
            else 'events'
        end as source
    from exported
    full join event_facts
        on event_facts.conversation_id = exported.id
    left join file_horizons
        on file_horizons.source_file = exported.source_file
),

final as (
    select
        merged.platform_conversation_id,
        merged.tenant_id,
        merged.phone_number_id,
        merged.contact_key,
        merged.exported_status,
        merged.started_at,
        merged.ended_at,
        merged.ended_reason,
        merged.messages_count,
        merged.last_inbound_at,
        merged.last_outbound_at,
        merged.last_message_at,
        merged.observed_at,
        merged.source
    from with_contact_key('merged', 'contact_keys') as merged
)

select * from final
