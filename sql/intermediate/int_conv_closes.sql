-- one row per phone_number_id x contact_key x closed_at: an operator's close of that
-- thread's conversation (DOMAIN R8 manual_close / agent_close), from the webhook log
-- (whatsapp.conversation.ended, R11) and from exported conversation records, up to the
-- build's as-of. Which conversation a close ends is decided by time in
-- int_thread_messages: the one of the thread open at closed_at, if any. Two reasons
-- at the same instant keep the first by name, so the row is unique and stable.
-- config: kind=cross-thread, shard_by=contact_key
with events as (
    select * from lake_events
),

exported as (
    select * from lake_conversations
),

contact_keys as (
    select * from int_contact_keys
),

staged_messages as (
    select * from stg_messages
),

-- A close names its thread by contact; one that names none is traced through the
-- platform conversation id its messages carry.
conversation_threads as (
    select
        conversation_id,
        arg_min(contact_key, sent_at) as contact_key
    from with_contact_key('staged_messages', 'contact_keys')
    where conversation_id in (
        select conversation_id from events where contact_bsuid is null and contact_phone is null
        union all
        select id from exported where contact_bsuid is null and contact_phone is null
    )
    group by conversation_id
),

reported as (
    select
        tenant_id,
        phone_number_id,
        contact_bsuid,
        contact_phone,
        conversation_id,
        coalesce(ended_at, created_at) as closed_at,
        ended_reason
    from events
    where type = 'whatsapp.conversation.ended'
        and ended_reason in ('manual_close', 'agent_close')
    union all
    select
        tenant_id,
        phone_number_id,
        contact_bsuid,
        contact_phone,
        id as conversation_id,
        ended_at as closed_at,
        ended_reason
    from exported
    where ended_reason in ('manual_close', 'agent_close')
        and ended_at is not null
),

keyed as (
    select
        reported.tenant_id,
        reported.phone_number_id,
        coalesce(reported.contact_key, conversation_threads.contact_key) as contact_key,
        reported.closed_at,
        reported.ended_reason
    from with_contact_key('reported', 'contact_keys') as reported
    left join conversation_threads
        on conversation_threads.conversation_id = reported.conversation_id
    where reported.closed_at <= getvariable('as_of')
),

final as (
    select
        phone_number_id,
        contact_key,
        closed_at,
        any_value(tenant_id) as tenant_id,
        min(ended_reason) as ended_reason
    from keyed
    where contact_key is not null
    group by phone_number_id, contact_key, closed_at
)

select * from final
