-- cbp_chain(members): the CBP conversations of chains of messages (DOMAIN R13, R14),
-- written once for every category. `members` names a relation of one row per message
-- that can open a conversation: message_id, phone_number_id, contact_key, chain (the
-- conversation category the chain is for), event_at, cbp_conversation_length (of the
-- message's billing date). In each thread x chain a message opens a conversation unless
-- one is open, and a conversation lasts exactly cbp_conversation_length from its
-- opening (later messages do not extend it). Returns one row per member: its
-- conversation's opening message and instant, whether it opened it, whether it lies in
-- a back-to-back cluster (is_chained), and its length.
--
-- One window pass per thread x chain gives each member its reach: the earliest member
-- in (t - length, t], and the last one at or before t - length. When that earliest
-- member had no member within a length before it, it opened the conversation this one
-- belongs to (settled). Otherwise the members are so dense that conversations follow
-- each other back to back (chained): they form clusters, starting at the latest settled
-- opener before them, whose conversations are a chain walked by recursion: the
-- cluster's first member opens, then the first member at or after that conversation's
-- end, and so on. Members at the same instant are simultaneous: the smallest message_id
-- opens.
create or replace temp macro cbp_chain(members) as table
with recursive reached as (
    select
        *,
        min({'started_at': event_at, 'message_id': message_id}) over conversation_reach as reach_earliest,
        max(event_at) over before_reach as reach_before
    from query_table(members)
    window
        chain_time as (partition by phone_number_id, contact_key, chain order by event_at),
        -- (t - length, t]: a microsecond is the timestamps' resolution
        conversation_reach as (
            chain_time range between (cbp_conversation_length - interval 1 microsecond) preceding and current row
        ),
        before_reach as (chain_time range between unbounded preceding and cbp_conversation_length preceding)
),

settled as (
    select
        *,
        not (reach_before is null or reach_earliest.started_at >= reach_before + cbp_conversation_length)
            as is_chained
    from reached
),

chained as (
    select * from settled where is_chained
),

settled_openers as (
    select * from settled where not is_chained and reach_earliest.message_id = message_id
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
        and settled_openers.chain = chained.chain
        and settled_openers.event_at <= chained.event_at
    group by chained.message_id
),

cluster_members as (
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

walk as (
    select distinct cluster_start.message_id as cluster_id, cluster_start as opener
    from cluster_starts
    union all
    select walk.cluster_id, min(cluster_members.as_opener) as opener
    from walk
    join cluster_members
        on cluster_members.cluster_id = walk.cluster_id
        and cluster_members.event_at >= walk.opener.ends_at
    group by walk.cluster_id
),

chained_conversations as (
    select
        cluster_members.message_id,
        max(walk.opener) as opener
    from cluster_members
    join walk
        on walk.cluster_id = cluster_members.cluster_id
        and walk.opener.started_at <= cluster_members.event_at
    group by cluster_members.message_id
)

select
    settled.message_id,
    settled.phone_number_id,
    settled.contact_key,
    settled.chain,
    settled.event_at,
    coalesce(chained_conversations.opener.message_id, settled.reach_earliest.message_id) as conversation_id,
    coalesce(chained_conversations.opener.started_at, settled.reach_earliest.started_at) as conversation_started_at,
    coalesce(chained_conversations.opener.message_id, settled.reach_earliest.message_id)
        = settled.message_id as is_conversation_opener,
    settled.is_chained,
    settled.cbp_conversation_length
from settled
left join chained_conversations using (message_id)
