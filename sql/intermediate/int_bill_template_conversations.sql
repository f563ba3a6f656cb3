-- one row per delivered template outside entry point windows: the CBP conversation it
-- belongs to (DOMAIN R13): a template opens a conversation of its category unless one
-- of that category is open; a conversation lasts exactly cbp_conversation_length from
-- its opening and later messages do not extend it. Per thread and category, computed
-- as if CBP applied at every date (the regime decides later what counts, R20).
-- Most templates are settled by their reach (int_bill_timeline): the earliest template
-- of the category in the last conversation length opened the conversation. The rest
-- (is_chained: templates so dense that conversations follow each other back to back)
-- form clusters; in each, the conversations are a chain walked by recursion: the
-- cluster's first template opens, then the first template at or after that
-- conversation's end, and so on. The cluster of a chained template starts at the
-- latest settled opener before it.
with recursive timeline as (
    select * from int_bill_timeline
),

candidates as (
    select
        message_id,
        phone_number_id,
        contact_key,
        category,
        event_at,
        cbp_conversation_length,
        reach_earliest,
        is_chained
    from timeline
    where is_template_candidate
),

chained as (
    select * from candidates where is_chained
),

settled_openers as (
    select * from candidates where not is_chained and reach_earliest.message_id = message_id
),

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
        and settled_openers.category = chained.category
        and settled_openers.event_at <= chained.event_at
    group by chained.message_id
),

members as (
    select
        chained.message_id,
        chained.event_at,
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
        and members.event_at >= chain.opener.ends_at
    group by chain.cluster_id
),

chained_conversations as (
    select
        members.message_id,
        max(chain.opener) as opener
    from members
    join chain
        on chain.cluster_id = members.cluster_id
        and chain.opener.started_at <= members.event_at
    group by members.message_id
),

final as (
    select
        candidates.message_id,
        candidates.phone_number_id,
        candidates.contact_key,
        candidates.category,
        candidates.event_at,
        coalesce(chained_conversations.opener.message_id, candidates.reach_earliest.message_id) as conversation_id,
        coalesce(chained_conversations.opener.started_at, candidates.reach_earliest.started_at) as conversation_started_at,
        coalesce(chained_conversations.opener.message_id, candidates.reach_earliest.message_id)
            = candidates.message_id as is_conversation_opener,
        candidates.cbp_conversation_length
    from candidates
    left join chained_conversations using (message_id)
)

select * from final
