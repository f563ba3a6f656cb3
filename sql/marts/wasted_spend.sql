-- one row per message that cost money it need not have, or was lost (reason):
-- * template_in_open_window: a charged template delivered while the customer service
--   window was open (DOMAIN R6), on a date whose rules make a free-form reply in an
--   open window free (the service rule's in_service_window is not regular): regime B
--   (R19) and CBP from 2024-11-01 (R16); not regime C (R21: free-form is charged there
--   too) nor CBP before 2024-11 (service conversations were charged). In CBP it is the
--   template that opened the charged conversation; the cost is the unit's.
-- * free_form_outside_window: a free-form message that failed with Meta's error 131047
--   (re-engagement, R5) because no window was open: never billed (cost 0), but lost.
-- * unanswered_re_engagement: a charged marketing or utility template delivered outside
--   the window to a contact who had written before (re-engaging a known contact) that
--   got no inbound message within re_engagement_reply_within_hours
--   (data/pricing_policy.csv); templates delivered less than that before the build's
--   as-of are not judged yet. Authentication templates (one-time codes) expect no
--   reply, and a first contact is acquisition, not re-engagement: neither is waste.
-- config: kind=monthly, month=billing_month
with units as (
    select * from billable_units
),

bill_messages as (
    select * from int_bill_messages
),

calendar as (
    select * from int_bill_calendar
),

rules as (
    select * from int_bill_rules_daily where scenario = 'actual'
),

all_messages as (
    select * from messages
),

-- the delivered template that made each charged unit
charged_templates as (
    select
        units.*,
        bill_messages.message_id as template_message_id,
        bill_messages.event_at,
        bill_messages.is_service_window_open,
        bill_messages.next_inbound_at,
        bill_messages.last_inbound_at,
        calendar.re_engagement_reply_within
    from units
    join bill_messages
        on bill_messages.message_id = units.unit_id
    join calendar
        on calendar.calendar_date = bill_messages.billing_date
    where units.pricing_type = 'regular'
        and bill_messages.is_template
        and not bill_messages.is_in_entry_point_window
),

in_open_window as (
    select
        charged_templates.template_message_id as message_id,
        'template_in_open_window' as reason,
        charged_templates.*
    from charged_templates
    join rules
        on rules.calendar_date = charged_templates.billing_date
        and rules.category = 'service'
    where charged_templates.is_service_window_open
        and rules.in_service_window <> 'regular'
),

unanswered as (
    select
        charged_templates.template_message_id as message_id,
        'unanswered_re_engagement' as reason,
        charged_templates.*
    from charged_templates
    where not charged_templates.is_service_window_open
        and charged_templates.last_inbound_at is not null
        and charged_templates.category in ('marketing', 'utility')
        and charged_templates.event_at + charged_templates.re_engagement_reply_within <= getvariable('as_of')
        and (charged_templates.next_inbound_at is null
            or charged_templates.next_inbound_at > charged_templates.event_at + charged_templates.re_engagement_reply_within)
),

-- Meta's error code for a free-form message sent outside the window (DOMAIN R5)
failed_free_form as (
    select
        all_messages.*,
        coalesce(numbers.currency, getvariable('billing_default_currency')) as currency
    from all_messages
    left join phone_numbers as numbers using (phone_number_id)
    where all_messages.direction = 'outbound'
        and all_messages.category = 'service'
        and all_messages.status = 'failed'
        and all_messages.error_code = 131047
        and all_messages.sent_at <= getvariable('as_of')
),

final as (
    select
        message_id, reason, cost_micros, currency, tenant_id, phone_number_id, contact_key, template_name,
        category, market, country_code, pricing_model, regime, billing_date, billing_month, event_at as occurred_at
    from in_open_window
    union all
    select
        message_id, reason, cost_micros, currency, tenant_id, phone_number_id, contact_key, template_name,
        category, market, country_code, pricing_model, regime, billing_date, billing_month, event_at as occurred_at
    from unanswered
    union all
    select
        failed_free_form.message_id,
        'free_form_outside_window' as reason,
        0 as cost_micros,
        failed_free_form.currency,
        failed_free_form.tenant_id,
        failed_free_form.phone_number_id,
        failed_free_form.contact_key,
        failed_free_form.template_name,
        failed_free_form.category,
        failed_free_form.market,
        failed_free_form.country_code,
        calendar.pricing_model,
        calendar.regime,
        failed_free_form.local_date as billing_date,
        calendar.calendar_month as billing_month,
        failed_free_form.sent_at as occurred_at
    from failed_free_form
    left join calendar
        on calendar.calendar_date = failed_free_form.local_date
)

select * from final
