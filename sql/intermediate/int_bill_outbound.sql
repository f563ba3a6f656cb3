-- one row per delivered outbound message (DOMAIN R27: status delivered or read) sent up
-- to the build's as-of: what billing needs to know about it. event_at is the delivery
-- (delivered_at, else the send, R27); billing_date is that instant's local date on the
-- business number (R1), which picks the regime, the pricing model and the market (R22).
-- category is the billing category: a template's category at send time,
-- authentication-international per R25, service for every other message.
-- config: kind=per-thread, keep=temp
with all_messages as (
    select * from messages
),

calendar as (
    select * from int_bill_calendar
),

market_map as (
    select * from ref_market_map
),

auth_international as (
    select * from ref_auth_international
),

delivered as (
    select
        message_id,
        tenant_id,
        phone_number_id,
        contact_key,
        country_code,
        is_template,
        template_name,
        category as message_category,
        coalesce(delivered_at, sent_at) as event_at,
        cast(timezone(timezone, coalesce(delivered_at, sent_at)) as date) as billing_date
    from all_messages
    where direction = 'outbound'
        and is_delivered
        and sent_at <= getvariable('as_of')
),

-- DOMAIN R25: an eligible business's authentication template to a listed country
-- other than its own is authentication-international.
categorized as (
    select
        delivered.*,
        case
            when delivered.message_category = 'authentication'
                and getvariable('billing_auth_international_eligible')
                and auth_international.country_code is not null
                and delivered.country_code is distinct from nullif(getvariable('billing_business_country'), '')
                then 'authentication-international'
            else delivered.message_category
        end as category
    from delivered
    left join auth_international
        on auth_international.country_code = delivered.country_code
        and delivered.billing_date >= auth_international.effective_from
        and (auth_international.effective_to is null or delivered.billing_date < auth_international.effective_to)
),

final as (
    select
        categorized.message_id,
        categorized.tenant_id,
        categorized.phone_number_id,
        categorized.contact_key,
        categorized.country_code,
        coalesce(market_map.market, 'Other') as market,
        categorized.is_template,
        categorized.template_name,
        categorized.category,
        categorized.event_at,
        categorized.billing_date,
        calendar.calendar_month as billing_month,
        calendar.regime,
        calendar.pricing_model
    from categorized
    left join calendar
        on calendar.calendar_date = categorized.billing_date
    left join market_map
        on market_map.country_code = categorized.country_code
        and categorized.billing_date >= market_map.effective_from
        and (market_map.effective_to is null or categorized.billing_date < market_map.effective_to)
)

select * from final
