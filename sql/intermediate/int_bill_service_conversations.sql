-- one row per delivered non-template message outside entry point windows: the CBP
-- conversation it belongs to (DOMAIN R14). A non-template message opens a service
-- conversation only when no conversation of any category is open; otherwise it is
-- absorbed, into the conversation opened first among those open (DOMAIN does not say
-- which one; Meta's pricing objects, as the simulator writes them, name that one).
-- Per thread, as if CBP applied at every date (the regime decides later what counts).
-- Template conversations open at the message come from int_bill_timeline's reach or,
-- for chained categories, from int_bill_template_conversations. The messages no
-- template conversation absorbs (eligible) form the service chain, settled like the
-- template one: a second window pass, over non-template messages only (aggregating the
-- eligible ones), then a recursion over the dense clusters.
with recursive timeline as (
    select * from int_bill_timeline
),

template_conversations as (
    select * from int_bill_template_conversations
),

non_templates as (
    select *
    from timeline
    where not is_template and not is_in_entry_point_window
),

template_openers as (
    select phone_number_id, contact_key, category, conversation_started_at, conversation_id, cbp_conversation_length
    from template_conversations
    where is_conversation_opener
),

chained_template_open as (
    select
        chained.message_id,
        min({
            'started_at': template_openers.conversation_started_at,
            'message_id': template_openers.conversation_id,
            'category': template_openers.category
        }) as conversation
    from (
        select message_id, phone_number_id, contact_key, event_at, unnest(chained_categories) as category
        from non_templates
        where len(chained_categories) > 0
    ) as chained
    join template_openers
        on template_openers.phone_number_id = chained.phone_number_id
        and template_openers.contact_key = chained.contact_key
        and template_openers.category = chained.category
        and template_openers.conversation_started_at <= chained.event_at
        and chained.event_at < template_openers.conversation_started_at + template_openers.cbp_conversation_length
    group by chained.message_id
),

covered as (
    select
        non_templates.message_id,
        non_templates.phone_number_id,
        non_templates.contact_key,
        non_templates.event_at,
        non_templates.cbp_conversation_length,
        least(non_templates.first_open_template_conversation, chained_template_open.conversation)
            as template_conversation
    from non_templates
    left join chained_template_open using (message_id)
),

-- The second sort: non-template messages only; the reach counts the eligible ones.
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
        conversation_reach as (
            thread_time range between (cbp_conversation_length - interval 1 microsecond) preceding and current row
        ),
        before_reach as (thread_time range between unbounded preceding and cbp_conversation_length preceding)
),

settled as (
    select
        *,
        reach_earliest is not null
            and (reach_before is null or reach_earliest.started_at - reach_before >= cbp_conversation_length)
            as is_service_open,
        reach_earliest is not null
            and not (reach_before is null or reach_earliest.started_at - reach_before >= cbp_conversation_length)
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
-- cluster's members are its eligible chained messages.
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

service_conversations as (
    select
        settled.message_id,
        case
            when settled.is_service_open then {
                'started_at': settled.reach_earliest.started_at,
                'message_id': settled.reach_earliest.message_id,
                'category': 'service'}
            when chained_service_open.opener.ends_at > settled.event_at then {
                'started_at': chained_service_open.opener.started_at,
                'message_id': chained_service_open.opener.message_id,
                'category': 'service'}
        end as conversation
    from settled
    left join chained_service_open using (message_id)
),

absorbed as (
    select
        settled.message_id,
        settled.phone_number_id,
        settled.contact_key,
        settled.event_at,
        least(settled.template_conversation, service_conversations.conversation) as conversation
    from settled
    join service_conversations using (message_id)
),

final as (
    select
        message_id,
        phone_number_id,
        contact_key,
        event_at,
        conversation.message_id as conversation_id,
        conversation.started_at as conversation_started_at,
        conversation.category as conversation_category
    from absorbed
)

select * from final
