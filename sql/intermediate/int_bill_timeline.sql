-- one row per delivered outbound message, with what its thread's timeline says about
-- it. This is the billing stage's one sort of each thread (DESIGN "Performance"): every
-- answer below comes from a single window pass over the thread's inbound and delivered
-- outbound messages by event time (same partition, same order, different frames):
-- * is_service_window_open: an inbound message in (t - customer_service_window, t]
--   (DOMAIN R4, R6), t = the delivery (R27); next_inbound_at: the first one after t;
-- * for each template category, the CBP conversation reach: the earliest template of
--   that category delivered in (t - cbp_conversation_length, t] outside entry point
--   windows, and the last one at or before t - cbp_conversation_length (R13).
--   When that earliest template had no such template within a conversation length
--   before it, it opened a conversation that is still open at t; otherwise the
--   category's templates are so dense here that only the chain of conversations
--   (int_bill_template_conversations) can say.
-- Messages at the same instant are simultaneous: every answer counts them all, so no
-- order among them is needed and every run gives the same rows. Entry point windows
-- (int_bill_entry_points) are placed on the messages before the sort, by a join.
with events as (
    select * from int_bill_events
),

entry_points as (
    select * from int_bill_entry_points
),

placed as (
    select
        events.*,
        entry_points.message_id as entry_point_message_id,
        entry_points.opened_at as entry_point_opened_at,
        entry_points.message_id is not null as is_in_entry_point_window
    from events
    left join entry_points
        on entry_points.phone_number_id = events.phone_number_id
        and entry_points.contact_key = events.contact_key
        and events.event_at >= entry_points.opened_at
        and events.event_at < entry_points.expires_at
),

flagged as (
    select
        *,
        is_template and category is not null and not is_in_entry_point_window as is_template_candidate
    from placed
),

windowed as (
    select
        *,
        max(event_at) filter (where is_inbound) over through_instant as last_inbound_at,
        min(event_at) filter (where is_inbound) over after_instant as next_inbound_at,
        min({'started_at': event_at, 'message_id': message_id})
            filter (where is_template_candidate and category = 'marketing') over conversation_reach as marketing_earliest,
        max(event_at)
            filter (where is_template_candidate and category = 'marketing') over before_reach as marketing_before,
        min({'started_at': event_at, 'message_id': message_id})
            filter (where is_template_candidate and category = 'utility') over conversation_reach as utility_earliest,
        max(event_at)
            filter (where is_template_candidate and category = 'utility') over before_reach as utility_before,
        min({'started_at': event_at, 'message_id': message_id})
            filter (where is_template_candidate and category = 'authentication') over conversation_reach as authentication_earliest,
        max(event_at)
            filter (where is_template_candidate and category = 'authentication') over before_reach as authentication_before,
        min({'started_at': event_at, 'message_id': message_id})
            filter (where is_template_candidate and category = 'authentication-international') over conversation_reach
            as authentication_international_earliest,
        max(event_at)
            filter (where is_template_candidate and category = 'authentication-international') over before_reach
            as authentication_international_before
    from flagged
    window
        thread_time as (partition by phone_number_id, contact_key order by event_at),
        through_instant as (thread_time range between unbounded preceding and current row),
        after_instant as (thread_time range between current row and unbounded following exclude group),
        -- (t - length, t]: a microsecond is the timestamps' resolution
        conversation_reach as (
            thread_time range between (cbp_conversation_length - interval 1 microsecond) preceding and current row
        ),
        before_reach as (thread_time range between unbounded preceding and cbp_conversation_length preceding)
),

outbound as (
    select *
    from windowed
    where not is_inbound
),

-- Per category: the conversation opened by the earliest template in reach, when it
-- is known to be open now (is_*_open), or whether the chain must decide (is_*_chained).
reaches as (
    select
        *,
        marketing_earliest is not null
            and (marketing_before is null or marketing_earliest.started_at - marketing_before >= cbp_conversation_length)
            as is_marketing_open,
        utility_earliest is not null
            and (utility_before is null or utility_earliest.started_at - utility_before >= cbp_conversation_length)
            as is_utility_open,
        authentication_earliest is not null
            and (authentication_before is null
                or authentication_earliest.started_at - authentication_before >= cbp_conversation_length)
            as is_authentication_open,
        authentication_international_earliest is not null
            and (authentication_international_before is null
                or authentication_international_earliest.started_at - authentication_international_before
                    >= cbp_conversation_length)
            as is_authentication_international_open
    from outbound
),

final as (
    select
        message_id,
        tenant_id,
        phone_number_id,
        contact_key,
        country_code,
        market,
        is_template,
        template_name,
        category,
        event_at,
        billing_date,
        billing_month,
        regime,
        pricing_model,
        cbp_conversation_length,
        re_engagement_reply_within,
        is_in_entry_point_window,
        entry_point_message_id,
        entry_point_opened_at,
        coalesce(event_at - last_inbound_at < customer_service_window, false) as is_service_window_open,
        last_inbound_at,
        next_inbound_at,
        is_template_candidate,
        -- templates: the earliest template of the own category in reach, and whether
        -- it is known to have opened the conversation this one belongs to
        case category
            when 'marketing' then marketing_earliest
            when 'utility' then utility_earliest
            when 'authentication' then authentication_earliest
            when 'authentication-international' then authentication_international_earliest
        end as reach_earliest,
        is_template_candidate and not case category
            when 'marketing' then is_marketing_open
            when 'utility' then is_utility_open
            when 'authentication' then is_authentication_open
            when 'authentication-international' then is_authentication_international_open
        end as is_chained,
        -- other messages: the first-opened template conversation known open now, and
        -- the categories whose chain must decide
        least(
            case when is_marketing_open then {
                'started_at': marketing_earliest.started_at, 'message_id': marketing_earliest.message_id,
                'category': 'marketing'} end,
            case when is_utility_open then {
                'started_at': utility_earliest.started_at, 'message_id': utility_earliest.message_id,
                'category': 'utility'} end,
            case when is_authentication_open then {
                'started_at': authentication_earliest.started_at, 'message_id': authentication_earliest.message_id,
                'category': 'authentication'} end,
            case when is_authentication_international_open then {
                'started_at': authentication_international_earliest.started_at,
                'message_id': authentication_international_earliest.message_id,
                'category': 'authentication-international'} end
        ) as first_open_template_conversation,
        list_filter([
            case when marketing_earliest is not null and not is_marketing_open then 'marketing' end,
            case when utility_earliest is not null and not is_utility_open then 'utility' end,
            case when authentication_earliest is not null and not is_authentication_open then 'authentication' end,
            case when authentication_international_earliest is not null and not is_authentication_international_open
                then 'authentication-international' end
        ], lambda category_name: category_name is not null) as chained_categories
    from reaches
)

select * from final
