-- one row per delivered non-template message outside entry point windows: the CBP
-- conversation it belongs to (DOMAIN R14). A non-template message opens a service
-- conversation only when no conversation of any category is open; otherwise it is
-- absorbed, into the conversation opened first among those open (DOMAIN does not say
-- which; Meta's pricing objects, as the simulator writes them, name that one).
-- Per thread, as if CBP applied at every date (the regime decides later what counts).
-- A template conversation is open at t when it opened in (t - length, t]
-- (int_bill_template_conversations); found by a join on the thread. The messages no
-- template conversation absorbs (eligible) form the service chain, settled like the
-- template one: a window pass over the thread's non-template messages (its reach
-- counts the eligible ones), then a recursion over the dense clusters.
-- config: kind=per-thread, keep=temp
with recursive outbound as (
    select * from int_bill_outbound
),

timeline as (
    select * from int_bill_timeline
),

calendar as (
    select * from int_bill_calendar
),

template_conversations as (
    select * from int_bill_template_conversations
),

non_templates as (
    select
        outbound.message_id,
        outbound.phone_number_id,
        outbound.contact_key,
        outbound.event_at,
        calendar.cbp_conversation_length
    from outbound
    join timeline using (message_id)
    join calendar
        on calendar.calendar_date = outbound.billing_date
    where not outbound.is_template
        and not timeline.is_in_entry_point_window
),

template_openers as (
    select phone_number_id, contact_key, category, conversation_started_at, conversation_id, cbp_conversation_length
    from template_conversations
    where is_conversation_opener
),

open_template_conversations as (
    select
        non_templates.message_id,
        min({
            'started_at': template_openers.conversation_started_at,
            'message_id': template_openers.conversation_id,
            'category': template_openers.category
        }) as conversation
    from non_templates
    join template_openers
        on template_openers.phone_number_id = non_templates.phone_number_id
        and template_openers.contact_key = non_templates.contact_key
        and template_openers.conversation_started_at <= non_templates.event_at
        and non_templates.event_at < template_openers.conversation_started_at + template_openers.cbp_conversation_length
    group by non_templates.message_id
),

covered as (
    select
        non_templates.*,
        open_template_conversations.conversation as template_conversation
    from non_templates
    left join open_template_conversations using (message_id)
),

reached as (
    select
        *,
        template_conversation is null as is_eligible,
        min({'started_at': event_at, 'message_id': message_id})
            filter (where template_conversation is null) over conversation_reach as reach_earliest,
        max(event_at)
            filter (where template_conversation is null) over before_reach as reach_before
    from covered
    window
        thread_time as (partition by phone_number_id, contact_key order by event_at),
        -- (t - length, t]: a microsecond is the timestamps' resolution
        conversation_reach as (
            thread_time range between (cbp_conversation_length - interval 1 microsecond) preceding and current row
        ),
        before_reach as (thread_time range between unbounded preceding and cbp_conversation_length preceding)
),

settled as (
    select
        *,
        reach_earliest is not null
            and (reach_before is null or reach_earliest.started_at >= reach_before + cbp_conversation_length)
            as is_service_open,
        reach_earliest is not null
            and not (reach_before is null or reach_earliest.started_at >= reach_before + cbp_conversation_length)
            as is_chained
    from reached
),

chained as (
    select * from settled where is_chained
),

settled_openers as (
    select * from settled where is_eligible and is_service_open and reach_earliest.message_id = message_id
),

-- A chained message's cluster starts at the latest settled opener before it; the
-- chain steps through the cluster's eligible messages only.
cluster_starts as (
    select
        chained.message_id,
        max({
            'started_at': settled_openers.event_at,
            'message_id': settled_openers.message_id,
            'ends_at': settled_openers.event_at + settled_openers.cbp_conversation_length
        }) as cluster_start
    from chained
    join settled_openers
        on settled_openers.phone_number_id = chained.phone_number_id
        and settled_openers.contact_key = chained.contact_key
        and settled_openers.event_at <= chained.event_at
    group by chained.message_id
),

members as (
    select
        chained.message_id,
        chained.event_at,
        chained.is_eligible,
        cluster_starts.cluster_start.message_id as cluster_id,
        {
            'started_at': chained.event_at,
            'message_id': chained.message_id,
            'ends_at': chained.event_at + chained.cbp_conversation_length
        } as as_opener
    from chained
    join cluster_starts using (message_id)
),

chain as (
    select distinct cluster_start.message_id as cluster_id, cluster_start as opener
    from cluster_starts
    union all
    select chain.cluster_id, min(members.as_opener) as opener
    from chain
    join members
        on members.cluster_id = chain.cluster_id
        and members.is_eligible
        and members.event_at >= chain.opener.ends_at
    group by chain.cluster_id
),

chained_service_open as (
    select
        members.message_id,
        max(chain.opener) as opener
    from members
    join chain
        on chain.cluster_id = members.cluster_id
        and chain.opener.started_at <= members.event_at
    group by members.message_id
),

absorbed as (
    select
        settled.message_id,
        least(
            settled.template_conversation,
            case
                when settled.is_service_open then {
                    'started_at': settled.reach_earliest.started_at,
                    'message_id': settled.reach_earliest.message_id,
                    'category': 'service'}
                when chained_service_open.opener.ends_at > settled.event_at then {
                    'started_at': chained_service_open.opener.started_at,
                    'message_id': chained_service_open.opener.message_id,
                    'category': 'service'}
            end
        ) as conversation
    from settled
    left join chained_service_open using (message_id)
),

final as (
    select
        message_id,
        conversation.message_id as conversation_id,
        conversation.started_at as conversation_started_at,
        conversation.category as conversation_category
    from absorbed
)

select * from final
