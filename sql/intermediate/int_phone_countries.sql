-- one row per distinct contact_phone: its country by the longest calling prefix
-- (DOMAIN R22; prefixes generated from the phonenumbers library, +1 by area code)
-- config: kind=per-thread, keep=temp
with phones as (
    select distinct contact_phone, ltrim(contact_phone, '+') as digits
    from stg_messages
    where contact_phone is not null
),

prefix_lengths as (
    select distinct prefix_length from ref_calling_prefixes
),

-- Each phone's leading digits at every prefix length, as a column, then one hash join
-- on (length, digits). Written as a join condition on left(digits, length) instead,
-- DuckDB planned it as phones x all 365 prefixes filtered (200 million rows at 10M
-- messages, 3.5 CPU-s).
candidates as (
    select
        phones.contact_phone,
        prefix_lengths.prefix_length,
        left(phones.digits, prefix_lengths.prefix_length) as leading_digits
    from phones
    cross join prefix_lengths
),

matches as (
    select
        candidates.contact_phone,
        prefixes.country_code,
        prefixes.prefix_length
    from candidates
    join ref_calling_prefixes as prefixes
        on prefixes.prefix_length = candidates.prefix_length
        and prefixes.prefix = candidates.leading_digits
),

final as (
    select
        contact_phone,
        arg_max(country_code, prefix_length) as country_code
    from matches
    group by contact_phone
)

select * from final
