-- one row per rebuilt conversation: phone_number_id x contact_key x run_number (x
-- started_at), with what its messages say (DOMAIN R7-R9), before any as-of judgement
-- (conversations adds status, ended_at and the R10 fields). A lifecycle run of
-- int_thread_messages holds at most one conversation: from the run's first opener
-- candidate (an inbound message or a template, R7) to the run's last message, i.e. the
-- run's messages flagged is_in_conversation. The run ends by a close when one comes
-- after its last message and before the timeout would end it, else by timeout (last
-- message + platform_conversation_timeout_hours, R8).
-- Its messages by role (int_thread_messages.message_role, for conversation_outcomes):
-- inbound, human replies, automated replies, templates; they add up to messages_count.
-- platform_conversation_id is the platform id carried by most of its messages (ties:
-- the smallest). id is ours, deterministic (a hash of thread and started_at), defined
-- here once.
-- config: kind=per-thread, keep=temp
with conversation_messages as (
    select * from int_thread_messages
    where is_in_conversation
),

runs as (
    select
        phone_number_id,
        contact_key,
        run_number,
        any_value(tenant_id) as tenant_id,
        min(sent_at) as started_at,
        arg_min(message_id, thread_position) as opening_message_id,
        arg_min(is_inbound, thread_position) as is_opened_by_inbound,
        count(*) as messages_count,
        count(*) filter (where message_role = 'inbound') as inbound_count,
        count(*) filter (where message_role = 'human_reply') as human_reply_count,
        count(*) filter (where message_role = 'automated_reply') as automated_reply_count,
        count(*) filter (where message_role = 'template') as template_count,
        max(sent_at) as last_message_at,
        max(sent_at) filter (where is_inbound) as last_inbound_at,
        max(sent_at) filter (where not is_inbound) as last_outbound_at,
        max(next_close_at) filter (where is_segment_end) as closed_at,
        max(next_close_reason) filter (where is_segment_end) as close_reason
    from conversation_messages
    group by phone_number_id, contact_key, run_number
),

platform_counts as (
    select
        phone_number_id,
        contact_key,
        run_number,
        platform_conversation_id,
        count(*) as messages
    from conversation_messages
    where platform_conversation_id is not null
    group by phone_number_id, contact_key, run_number, platform_conversation_id
),

platform_ids as (
    select
        phone_number_id,
        contact_key,
        run_number,
        first(platform_conversation_id order by messages desc, platform_conversation_id) as platform_conversation_id
    from platform_counts
    group by phone_number_id, contact_key, run_number
),

final as (
    select
        md5(concat_ws('|', runs.phone_number_id, runs.contact_key, epoch_us(runs.started_at))) as id,
        runs.tenant_id,
        runs.phone_number_id,
        runs.contact_key,
        runs.run_number,
        runs.started_at,
        runs.opening_message_id,
        runs.is_opened_by_inbound,
        runs.messages_count,
        runs.inbound_count,
        runs.human_reply_count,
        runs.automated_reply_count,
        runs.template_count,
        runs.last_message_at,
        runs.last_inbound_at,
        runs.last_outbound_at,
        case
            when runs.closed_at < runs.last_message_at + to_hours(getvariable('platform_conversation_timeout_hours'))
                then runs.closed_at
            else runs.last_message_at + to_hours(getvariable('platform_conversation_timeout_hours'))
        end as end_at,
        case
            when runs.closed_at < runs.last_message_at + to_hours(getvariable('platform_conversation_timeout_hours'))
                then runs.close_reason
            else 'timeout'
        end as end_reason,
        platform_ids.platform_conversation_id
    from runs
    left join platform_ids
        on platform_ids.phone_number_id = runs.phone_number_id
        and platform_ids.contact_key = runs.contact_key
        and platform_ids.run_number = runs.run_number
)

select * from final
