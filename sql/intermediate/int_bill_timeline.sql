-- one row per delivered outbound message: what its thread's timeline says about it.
-- This is the billing stage's one sort of whole threads (DESIGN "Performance"): a
-- single window pass over each thread's inbound and delivered outbound messages by
-- event time (received, or delivered: R27) answers both questions at once:
-- * is_service_window_open: an inbound message in (t - customer_service_window, t]
--   (DOMAIN R4, R6), t = the delivery;
-- * next_inbound_at: the first inbound message after t when it came within the
--   re-engagement reply window of t (wasted_spend asks no more), else null: so a reply
--   months later changes no row of an old message (incremental builds, pipeline/incremental.py).
-- Messages at the same instant are simultaneous: an inbound message at t counts for
-- a delivery at t, so no order among them is needed and every run gives the same
-- rows. Then the entry point windows (int_bill_entry_points) are placed by a join.
-- config: kind=per-thread, keep=temp
with all_messages as (
    select * from messages
),

outbound as (
    select * from int_bill_outbound
),

entry_points as (
    select * from int_bill_entry_points
),

calendar as (
    select * from int_bill_calendar
),

events as (
    select
        tenant_id,
        phone_number_id,
        contact_key,
        sent_at as event_at,
        true as is_inbound,
        cast(null as varchar) as message_id,
        cast(null as date) as billing_date
    from all_messages
    where direction = 'inbound'
        and sent_at <= getvariable('as_of')
    union all
    select tenant_id, phone_number_id, contact_key, event_at, false as is_inbound, message_id, billing_date
    from outbound
),

windowed as (
    select
        *,
        max(event_at) filter (where is_inbound) over through_instant as last_inbound_at,
        min(event_at) filter (where is_inbound) over after_instant as next_inbound_at
    from events
    window
        thread_time as (partition by phone_number_id, contact_key order by event_at),
        through_instant as (thread_time range between unbounded preceding and current row),
        after_instant as (thread_time range between current row and unbounded following exclude group)
),

final as (
    select
        windowed.message_id,
        windowed.tenant_id,
        windowed.contact_key,
        windowed.billing_date,
        coalesce(windowed.event_at < windowed.last_inbound_at + calendar.customer_service_window, false)
            as is_service_window_open,
        windowed.last_inbound_at,
        case
            when calendar.re_engagement_reply_within is null
                or windowed.next_inbound_at <= windowed.event_at + calendar.re_engagement_reply_within
                then windowed.next_inbound_at
        end as next_inbound_at,
        entry_points.message_id is not null as is_in_entry_point_window,
        entry_points.message_id as entry_point_message_id,
        entry_points.opened_at as entry_point_opened_at
    from windowed
    left join calendar
        on calendar.calendar_date = windowed.billing_date
    left join entry_points
        on entry_points.phone_number_id = windowed.phone_number_id
        and entry_points.contact_key = windowed.contact_key
        and windowed.event_at >= entry_points.opened_at
        and windowed.event_at < entry_points.expires_at
    where not windowed.is_inbound
)

select * from final
