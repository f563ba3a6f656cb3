-- one row per delivered outbound message outside entry point windows (a template of a
-- known category, or any non-template message): the CBP conversation it belongs to,
-- its opening message and instant, and its category (DOMAIN R13, R14); is_chained: in a
-- chain so dense that its conversations follow each other back to back. Per thread, as
-- if CBP applied at every date (the regime decides later what counts, R20). The
-- chaining is written once (sql/functions/cbp_chain.sql) and applied twice:
-- 1. templates, one chain per category (R13): a template opens a conversation of its
--    category unless one of that category is open;
-- 2. non-template messages (R14) open a service conversation only when no
--    conversation of any category is open: the ones no template conversation covers
--    (eligible) form the service chain; every other one is absorbed into the
--    conversation opened first among those open at its delivery (DOMAIN does not say
--    which; Meta's pricing objects, as the simulator writes them, name that one).
-- An entry point window closes every open conversation (R15); since it outlasts a
-- conversation (the policy loader checks it), no conversation reaches across one.
-- config: kind=per-thread, keep=temp
with outbound as (
    select * from int_bill_outbound
),

entry_points as (
    select * from int_bill_entry_points
),

calendar as (
    select * from int_bill_calendar
),

candidates as (
    select
        outbound.message_id,
        outbound.phone_number_id,
        outbound.contact_key,
        outbound.is_template,
        coalesce(outbound.category, 'service') as chain,
        outbound.event_at,
        calendar.cbp_conversation_length
    from with_entry_point('outbound', 'entry_points') as outbound
    join calendar
        on calendar.calendar_date = outbound.billing_date
    -- outside every entry point window (R15)
    where outbound.entry_point_message_id is null
        and (not outbound.is_template or outbound.category is not null)
),

template_members as (
    select * exclude (is_template) from candidates where is_template
),

template_chains as (
    select * from cbp_chain('template_members')
),

-- a conversation is open at t when it opened in [opened, opened + length)
template_openers as (
    select phone_number_id, contact_key, chain, conversation_started_at, conversation_id, cbp_conversation_length
    from template_chains
    where is_conversation_opener
),

non_templates as (
    select message_id, phone_number_id, contact_key, 'service' as chain, event_at, cbp_conversation_length
    from candidates
    where not is_template
),

open_template_conversations as (
    select
        non_templates.message_id,
        min({
            'started_at': template_openers.conversation_started_at,
            'message_id': template_openers.conversation_id,
            'category': template_openers.chain
        }) as conversation
    from non_templates
    join template_openers
        on template_openers.phone_number_id = non_templates.phone_number_id
        and template_openers.contact_key = non_templates.contact_key
        and template_openers.conversation_started_at <= non_templates.event_at
        and non_templates.event_at < template_openers.conversation_started_at + template_openers.cbp_conversation_length
    group by non_templates.message_id
),

service_members as (
    select non_templates.*
    from non_templates
    anti join open_template_conversations using (message_id)
),

service_chains as (
    select * from cbp_chain('service_members')
),

service_openers as (
    select phone_number_id, contact_key, conversation_started_at, conversation_id, cbp_conversation_length
    from service_chains
    where is_conversation_opener
),

-- a covered message is absorbed by the earliest open conversation: its template one,
-- or a service conversation opened before it and still open
open_service_conversations as (
    select
        open_template_conversations.message_id,
        min({
            'started_at': service_openers.conversation_started_at,
            'message_id': service_openers.conversation_id,
            'category': 'service'
        }) as conversation
    from open_template_conversations
    join non_templates using (message_id)
    join service_openers
        on service_openers.phone_number_id = non_templates.phone_number_id
        and service_openers.contact_key = non_templates.contact_key
        and service_openers.conversation_started_at <= non_templates.event_at
        and non_templates.event_at < service_openers.conversation_started_at + service_openers.cbp_conversation_length
    group by open_template_conversations.message_id
),

absorbed as (
    select
        open_template_conversations.message_id,
        least(open_template_conversations.conversation, open_service_conversations.conversation) as conversation
    from open_template_conversations
    left join open_service_conversations using (message_id)
),

final as (
    select message_id, conversation_id, conversation_started_at, chain as conversation_category, is_chained
    from template_chains
    union all
    select message_id, conversation_id, conversation_started_at, 'service', is_chained
    from service_chains
    union all
    select
        message_id,
        conversation.message_id,
        conversation.started_at,
        conversation.category,
        false
    from absorbed
)

select * from final
