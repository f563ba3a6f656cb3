-- one row per tenant_id x contact_phone seen with a bsuid: the bsuid a phone-only
-- record is attributed to (DOMAIN R2: the bsuid seen with that phone in the same
-- tenant; when a phone was seen with several, the first one seen). A phone seen with a
-- bsuid on one record takes that one; else a phone on phone-only records of a platform
-- conversation (conversation_id) whose bsuid-only records name a bsuid takes it (R2:
-- the same user seen by phone before the 2026-03-31 cut-over and by bsuid after, in one
-- conversation that spans it, is one contact and one thread).
-- config: kind=cross-thread, recompute_by=contact_phone
-- The staged messages are read three times below, each reading only its columns: a
-- materialized CTE would hold every column of every message in memory (at 100M
-- messages it spilled 2.3 GB; at 10M: 5.0 -> 3.8 CPU-s, 927 -> 196 MB, bench/README).
with messages as not materialized (
    select * from stg_messages
),

direct_pairs as (
    select tenant_id, contact_phone, contact_bsuid, sent_at
    from messages
    where contact_phone is not null and contact_bsuid is not null
),

-- the bsuid of each platform conversation with bsuid-only records (few: the phone is
-- absent only for users Meta no longer sends it for, R2), the first one seen
bsuid_only_conversations as (
    select
        tenant_id,
        conversation_id,
        arg_min(contact_bsuid, (sent_at, contact_bsuid)) as contact_bsuid,
        min(sent_at) as first_seen_at
    from messages
    where contact_phone is null and contact_bsuid is not null and conversation_id is not null
    group by tenant_id, conversation_id
),

conversation_pairs as (
    select distinct
        messages.tenant_id,
        messages.contact_phone,
        bsuid_only_conversations.contact_bsuid,
        bsuid_only_conversations.first_seen_at as sent_at
    from messages
    join bsuid_only_conversations
        on bsuid_only_conversations.tenant_id = messages.tenant_id
        and bsuid_only_conversations.conversation_id = messages.conversation_id
    where messages.contact_phone is not null and messages.contact_bsuid is null
),

pairs as (
    select tenant_id, contact_phone, contact_bsuid, sent_at, 1 as preference
    from direct_pairs
    union all
    select tenant_id, contact_phone, contact_bsuid, sent_at, 2 as preference
    from conversation_pairs
),

final as (
    select
        tenant_id,
        contact_phone,
        arg_min(contact_bsuid, (preference, sent_at, contact_bsuid)) as contact_bsuid
    from pairs
    group by tenant_id, contact_phone
)

select * from final
