-- one row per tenant_id x contact_key: the contact's latest phone and bsuid, and its
-- country: from its phone's calling code, else from its bsuid prefix (DOMAIN R2, R22)
-- config: kind=per-thread, keep=temp
-- The key depends on (tenant_id, contact_bsuid, contact_phone) alone, so the messages
-- are first reduced to those identities with their last send, and only the identities
-- are keyed (at 10M: 10M messages to ~0.5M rows before the join).
-- A phone's country is that of its longest calling prefix (DOMAIN R22; the prefixes are
-- generated from the phonenumbers library, +1 by area code), looked up for each
-- contact's latest phone only.
with messages as (
    select * from stg_messages
),

contact_keys as (
    select * from int_contact_keys
),

known_countries as (
    select distinct country_code from ref_market_map
),

identities as (
    select tenant_id, contact_bsuid, contact_phone, max(sent_at) as sent_at
    from messages
    group by tenant_id, contact_bsuid, contact_phone
),

keyed as (
    select tenant_id, contact_key, contact_bsuid, contact_phone, sent_at
    from with_contact_key('identities', 'contact_keys')
),

per_contact as (
    select
        tenant_id,
        contact_key,
        arg_max(contact_phone, sent_at) filter (where contact_phone is not null) as contact_phone,
        arg_max(contact_bsuid, sent_at) filter (where contact_bsuid is not null) as contact_bsuid
    from keyed
    group by tenant_id, contact_key
),

prefix_lengths as (
    select distinct prefix_length from ref_calling_prefixes
),

-- Each phone's leading digits at every prefix length, as a column, then one hash join
-- on (length, digits). Written as a join condition on left(digits, length) instead,
-- DuckDB plans phones x every calling prefix, filtered (2.7 -> 19 CPU-s at 10M).
prefix_candidates as (
    select
        phones.contact_phone,
        prefix_lengths.prefix_length,
        left(ltrim(phones.contact_phone, '+'), prefix_lengths.prefix_length) as leading_digits
    from (select distinct contact_phone from per_contact where contact_phone is not null) as phones
    cross join prefix_lengths
),

phone_countries as (
    select
        prefix_candidates.contact_phone,
        arg_max(prefixes.country_code, prefixes.prefix_length) as country_code
    from prefix_candidates
    join ref_calling_prefixes as prefixes
        on prefixes.prefix_length = prefix_candidates.prefix_length
        and prefixes.prefix = prefix_candidates.leading_digits
    group by prefix_candidates.contact_phone
),

final as (
    select
        per_contact.tenant_id,
        per_contact.contact_key,
        per_contact.contact_phone,
        per_contact.contact_bsuid,
        coalesce(phone_countries.country_code, known_countries.country_code) as country_code,
        case
            when phone_countries.country_code is not null then 'phone'
            when known_countries.country_code is not null then 'bsuid'
        end as country_source
    from per_contact
    left join phone_countries
        on phone_countries.contact_phone = per_contact.contact_phone
    left join known_countries
        on known_countries.country_code = split_part(per_contact.contact_bsuid, '.', 1)
)

select * from final
