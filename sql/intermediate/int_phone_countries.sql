-- one row per distinct contact_phone: its country by the longest calling prefix
-- (DOMAIN R22; prefixes generated from the phonenumbers library, +1 by area code)
with phones as (
    select distinct contact_phone, ltrim(contact_phone, '+') as digits
    from stg_messages
    where contact_phone is not null
),

prefix_lengths as (
    select distinct prefix_length from ref_calling_prefixes
),

matches as (
    select
        phones.contact_phone,
        prefixes.country_code,
        prefixes.prefix_length
    from phones
    cross join prefix_lengths
    join ref_calling_prefixes as prefixes
        on prefixes.prefix_length = prefix_lengths.prefix_length
        and prefixes.prefix = left(phones.digits, prefix_lengths.prefix_length)
),

final as (
    select
        contact_phone,
        arg_max(country_code, prefix_length) as country_code
    from matches
    group by contact_phone
)

select * from final
