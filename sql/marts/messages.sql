-- one row per message_id: every accepted message with its thread key (DOMAIN R2,
-- R3), the category at send time, its country and market (R22) and the business
-- number's local date (R1)
-- config: kind=per-thread, changes_month=local_date
with messages as not materialized (
    select * from stg_messages
),

contact_keys as (
    select * from int_contact_keys
),

contacts as (
    select * from int_contacts
),

numbers as (
    select * from phone_numbers
),

templates as (
    select * from stg_templates
),

keyed as (
    select
        with_key.*,
        coalesce(numbers.timezone, 'UTC') as timezone,
        numbers.phone_number_id is not null as is_configured_number
    from with_contact_key('messages', 'contact_keys') as with_key
    left join numbers
        on numbers.phone_number_id = with_key.phone_number_id
),

-- Category of a template = its category at send time (DOMAIN "Billing"): the
-- message's own, else the catalog's latest entry at or before the send.
-- (Read from messages, not keyed: a second reader of keyed would make DuckDB keep
-- every keyed row in memory.)
catalog_category as (
    select
        messages.message_id,
        arg_max(templates.template_category, templates.updated_at) as template_category
    from messages
    join templates
        on templates.template_name = messages.template_name
        and templates.updated_at <= messages.sent_at
    where messages.template_category is null and messages.template_name is not null
    group by messages.message_id
),

localized as (
    select
        keyed.*,
        coalesce(keyed.template_category, catalog_category.template_category) as resolved_template_category,
        cast(timezone(keyed.timezone, keyed.sent_at) as date) as local_date,
        -- the one definition of a template (every later model reads it from here)
        keyed.direction = 'outbound' and (keyed.message_type = 'template' or keyed.template_name is not null)
            as is_template
    from keyed
    left join catalog_category using (message_id)
),

final as (
    select
        localized.message_id,
        localized.tenant_id,
        localized.phone_number_id,
        localized.contact_key,
        localized.contact_bsuid,
        localized.contact_phone,
        localized.contact_name,
        localized.direction,
        localized.message_type as type,
        localized.template_name,
        case
            when localized.direction = 'inbound' then null
            when localized.is_template then localized.resolved_template_category
            -- DOMAIN R21a: a Meta Business Agent message (AI-generated, billed by Meta per
            -- token) is not service and is not priced; an export marks it by its type or by
            -- Meta's pricing category (convo's reading: Meta publishes no label for them in
            -- the sources read, data/README.md)
            when lower(localized.message_type) = 'meta_business_agent'
                or lower(localized.meta_category) = 'meta_business_agent' then 'meta_business_agent'
            else 'service'
        end as category,
        localized.is_template,
        -- the one tie order of a thread's messages at the same instant (DOMAIN R3-R9):
        -- inbound, then templates, then other outbound messages (then message_id)
        case when localized.direction = 'inbound' then 0 when localized.is_template then 1 else 2 end as tie_rank,
        localized.status,
        localized.error_code,
        localized.sent_at,
        localized.delivered_at,
        localized.status in ('delivered', 'read') as is_delivered,
        localized.referral_source,
        localized.conversation_id,
        contacts.country_code,
        coalesce(market_map.market, 'Other') as market,
        localized.timezone,
        localized.local_date,
        localized.is_configured_number,
        localized.meta_billable,
        localized.meta_pricing_model,
        localized.meta_pricing_type,
        localized.meta_category,
        localized.source_file,
        localized.source_line
    from localized
    left join contacts
        on contacts.tenant_id = localized.tenant_id
        and contacts.contact_key = localized.contact_key
    left join ref_market_map as market_map
        on market_map.country_code = contacts.country_code
        and localized.local_date >= market_map.effective_from
        and (market_map.effective_to is null or localized.local_date < market_map.effective_to)
)

select * from final
