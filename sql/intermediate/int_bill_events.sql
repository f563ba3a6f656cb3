-- one row per message that takes part in billing: every inbound message (it opens or
-- extends a customer service window, DOMAIN R4, and may arrive through an entry point,
-- R15) and every delivered outbound message (R27: status delivered or read), sent up to
-- the build's as-of. event_at is when it counts: received, or delivered (else sent,
-- R27); billing_date is that instant's local date on the business number (R1), which
-- picks the regime, the market (R22) and the durations in force. category is the
-- billing category: a template's category at send time, authentication-international
-- per R25, service for other outbound messages, null inbound.
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

timed as (
    select
        message_id,
        tenant_id,
        phone_number_id,
        contact_key,
        country_code,
        timezone,
        direction = 'inbound' as is_inbound,
        direction = 'outbound' and (type = 'template' or template_name is not null) as is_template,
        template_name,
        category as message_category,
        direction = 'inbound' and referral_source is not null as is_entry_point_arrival,
        case when direction = 'inbound' then sent_at else coalesce(delivered_at, sent_at) end as event_at
    from all_messages
    where sent_at <= getvariable('as_of')
        and (direction = 'inbound' or is_delivered)
),

localized as (
    select
        *,
        cast(timezone(timezone, event_at) as date) as billing_date
    from timed
),

-- DOMAIN R25: an eligible business's authentication template to a listed country
-- other than its own is authentication-international.
categorized as (
    select
        localized.*,
        case
            when localized.message_category = 'authentication'
                and getvariable('billing_auth_international_eligible')
                and auth_international.country_code is not null
                and localized.country_code is distinct from nullif(getvariable('billing_business_country'), '')
                then 'authentication-international'
            else localized.message_category
        end as category
    from localized
    left join auth_international
        on auth_international.country_code = localized.country_code
        and localized.billing_date >= auth_international.effective_from
        and (auth_international.effective_to is null or localized.billing_date < auth_international.effective_to)
),

final as (
    select
        categorized.message_id,
        categorized.tenant_id,
        categorized.phone_number_id,
        categorized.contact_key,
        categorized.country_code,
        coalesce(market_map.market, 'Other') as market,
        categorized.is_inbound,
        categorized.is_template,
        categorized.template_name,
        categorized.category,
        categorized.is_entry_point_arrival,
        categorized.event_at,
        categorized.billing_date,
        calendar.calendar_month as billing_month,
        calendar.regime,
        calendar.pricing_model,
        calendar.customer_service_window,
        calendar.cbp_conversation_length,
        calendar.entry_point_reply_within,
        calendar.entry_point_window_length,
        calendar.re_engagement_reply_within
    from categorized
    left join calendar
        on calendar.calendar_date = categorized.billing_date
    left join market_map
        on market_map.country_code = categorized.country_code
        and categorized.billing_date >= market_map.effective_from
        and (market_map.effective_to is null or categorized.billing_date < market_map.effective_to)
)

select * from final
