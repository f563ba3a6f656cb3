-- one row per delivered outbound message: its thread facts (int_bill_timeline) and the
-- CBP conversation it belongs to as if CBP applied at every date: the free entry point
-- conversation when inside an entry point window (DOMAIN R15; category
-- referral_conversion, R27), else its template conversation (R13) or the conversation
-- absorbing it or opened by it (R14). conversation_id is the opening message's id.
-- The last per-thread step: everything after it counts across threads.
with timeline as (
    select * from int_bill_timeline
),

template_conversations as (
    select * from int_bill_template_conversations
),

service_conversations as (
    select * from int_bill_service_conversations
),

final as (
    select
        timeline.*,
        case
            when timeline.is_in_entry_point_window then timeline.entry_point_message_id
            when timeline.is_template then template_conversations.conversation_id
            else service_conversations.conversation_id
        end as conversation_id,
        case
            when timeline.is_in_entry_point_window then timeline.entry_point_opened_at
            when timeline.is_template then template_conversations.conversation_started_at
            else service_conversations.conversation_started_at
        end as conversation_started_at,
        case
            when timeline.is_in_entry_point_window then 'referral_conversion'
            when timeline.is_template then template_conversations.category
            else service_conversations.conversation_category
        end as conversation_category
    from timeline
    left join template_conversations using (message_id)
    left join service_conversations using (message_id)
)

select * from final
