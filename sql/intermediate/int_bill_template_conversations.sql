-- one row per delivered template outside entry point windows: the CBP conversation it
-- belongs to (DOMAIN R13): a template opens a conversation of its category unless one
-- of that category is open; a conversation lasts exactly cbp_conversation_length from
-- its opening and later messages do not extend it. Per thread and category, computed
-- as if CBP applied at every date (the regime decides later what counts, R20).
-- One window pass per thread and category (templates only) gives each template its
-- reach: the earliest template of the category in (t - length, t], and the last one at
-- or before t - length. When that earliest template had no template of the category
-- within a length before it, it opened the conversation this one belongs to (settled).
-- Otherwise the templates are so dense that conversations follow each other back to
-- back (is_chained): they form clusters, starting at the latest settled opener before
-- them, whose conversations are a chain walked by recursion: the cluster's first
-- template opens, then the first template at or after that conversation's end, and so
-- on. Templates at the same instant are simultaneous: the smallest message_id opens.
-- An entry point window closes every open conversation (R15); since it outlasts a
-- conversation (the policy loader checks it), no conversation reaches across one.
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

candidates as (
    select
        outbound.message_id,
        outbound.phone_number_id,
        outbound.contact_key,
        outbound.category,
        outbound.event_at,
        calendar.cbp_conversation_length
    from outbound
    join timeline using (message_id)
    join calendar
        on calendar.calendar_date = outbound.billing_date
    where outbound.is_template
        and outbound.category is not null
        and not timeline.is_in_entry_point_window
),

reached as (
    select
        *,
        min({'started_at': event_at, 'message_id': message_id}) over conversation_reach as reach_earliest,
        max(event_at) over before_reach as reach_before
    from candidates
    window
        chain_time as (partition by phone_number_id, contact_key, category order by event_at),
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
        settled.message_id,
        settled.phone_number_id,
        settled.contact_key,
        settled.category,
        settled.is_chained,
        coalesce(chained_conversations.opener.message_id, settled.reach_earliest.message_id) as conversation_id,
        coalesce(chained_conversations.opener.started_at, settled.reach_earliest.started_at)
            as conversation_started_at,
        coalesce(chained_conversations.opener.message_id, settled.reach_earliest.message_id)
            = settled.message_id as is_conversation_opener,
        settled.cbp_conversation_length
    from settled
    left join chained_conversations using (message_id)
)

select * from final
