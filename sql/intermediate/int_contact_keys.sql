-- one row per tenant_id x contact_phone seen with a bsuid: the bsuid a phone-only
-- record is attributed to (DOMAIN R2: the bsuid seen with that phone in the same
-- tenant; when a phone was seen with several, the first one seen).
-- config: kind=cross-thread
with messages as (
    select * from stg_messages
),

pairs as (
    select tenant_id, contact_phone, contact_bsuid, sent_at
    from messages
    where contact_phone is not null and contact_bsuid is not null
),

final as (
    select
        tenant_id,
        contact_phone,
        arg_min(contact_bsuid, (sent_at, contact_bsuid)) as contact_bsuid
    from pairs
    group by tenant_id, contact_phone
)

select * from final
