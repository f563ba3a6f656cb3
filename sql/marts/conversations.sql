-- one row per rebuilt conversation (phone_number_id x contact_key x started_at): the
-- platform's conversation lifecycle (DOMAIN R7-R10) rebuilt from messages and operator
-- closes, as of the build's as-of (conversations starting after it do not exist yet,
-- later messages and closes are ignored).
-- * opens on an inbound message or an outbound template when none of the thread is
--   open (R7). A free-form outbound message sent while none is open (after a timeout
--   or a close) opens nothing and belongs to no conversation; a failed outbound
--   message counts in nothing (see int_thread_messages).
-- * status (R8): ended once ended_at <= as-of (a timeout at last message + 24 h, or an
--   operator's close); inactive once inactive_after_minutes passed since its last
--   message; else active. ended_at and ended_reason stay null while it is open.
-- * inactive_at: when its LAST silence (after its last message up to as-of) reached
--   inactive_after_minutes, if that came before it ended; earlier silences that a
--   later message broke are not kept (status inactive <=> inactive_at set and
--   ended_at null).
-- * is_reopen (R9): opened by an inbound message while the previous conversation of
--   the thread would still be open but for an operator's close (the message comes
--   after a manual_close / agent_close and before that conversation's timeout).
-- * id: a deterministic id of ours (a hash of thread and started_at), not the
--   platform's; platform_conversation_id is the platform id most of its messages carry.
-- * contact_phone / contact_bsuid / contact_name: those of the thread's latest message
--   up to the as-of. customer_id is not in the messages exports: null.
-- config: kind=per-thread
with lifecycle as (
    select * from int_conv_lifecycle
),

timeline as (
    select * from int_thread_messages
),

thread_messages as (
    select * from messages
),

-- The thread's latest message up to the as-of (failed outbound ones aside): the one with no
-- next message in the thread's timeline.
thread_contacts as (
    select
        timeline.phone_number_id,
        timeline.contact_key,
        thread_messages.contact_phone,
        thread_messages.contact_bsuid,
        thread_messages.contact_name
    from timeline
    join thread_messages
        on thread_messages.message_id = timeline.message_id
    where timeline.next_message_at is null
),

judged as (
    select
        *,
        end_at <= getvariable('as_of') as is_ended,
        last_message_at + to_minutes(getvariable('inactive_after_minutes')) as silent_at
    from lifecycle
),

sequenced as (
    select
        *,
        lag(end_reason) over thread_order as previous_end_reason,
        lag(last_message_at) over thread_order as previous_last_message_at
    from judged
    window thread_order as (partition by phone_number_id, contact_key order by started_at)
),

final as (
    select
        sequenced.id,
        sequenced.tenant_id,
        cast(null as varchar) as customer_id,
        sequenced.phone_number_id,
        sequenced.contact_key,
        thread_contacts.contact_phone,
        thread_contacts.contact_bsuid,
        thread_contacts.contact_name,
        case
            when sequenced.is_ended then 'ended'
            when sequenced.silent_at <= getvariable('as_of') then 'inactive'
            else 'active'
        end as status,
        case when sequenced.is_ended then sequenced.end_reason end as ended_reason,
        sequenced.messages_count,
        sequenced.last_inbound_at,
        sequenced.last_outbound_at,
        sequenced.started_at,
        case when sequenced.is_ended then sequenced.end_at end as ended_at,
        case
            when sequenced.silent_at <= least(sequenced.end_at, getvariable('as_of')) then sequenced.silent_at
        end as inactive_at,
        coalesce(
            sequenced.is_opened_by_inbound
            and sequenced.previous_end_reason in ('manual_close', 'agent_close')
            and sequenced.started_at < sequenced.previous_last_message_at
                + to_hours(getvariable('platform_conversation_timeout_hours')),
            false
        ) as is_reopen,
        sequenced.last_message_at,
        sequenced.opening_message_id,
        sequenced.is_opened_by_inbound,
        sequenced.platform_conversation_id
    from sequenced
    left join thread_contacts
        on thread_contacts.phone_number_id = sequenced.phone_number_id
        and thread_contacts.contact_key = sequenced.contact_key
)

select * from final
