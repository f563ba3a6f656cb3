-- one row per customer service window: phone_number_id x contact_key x window_number
-- (DOMAIN R3-R4). A window is a maximal run of a thread's inbound messages (calls
-- included) with gaps of at most customer_service_window_hours (exactly that long
-- continues it); it opens at its first inbound message and expires that long after
-- its last one. Free-form messages may be sent at t iff some window has
-- opened_at <= t < expires_at (R6; the stored macro in_service_window asks this).
-- Built from the messages sent up to the build's as-of.
-- config: kind=per-thread
with inbound_messages as (
    select * from int_thread_messages
    where is_inbound
),

windows as (
    select
        phone_number_id,
        contact_key,
        window_number,
        any_value(tenant_id) as tenant_id,
        min(sent_at) as opened_at,
        max(sent_at) as last_inbound_at,
        count(*) as inbound_count
    from inbound_messages
    group by phone_number_id, contact_key, window_number
),

final as (
    select
        tenant_id,
        phone_number_id,
        contact_key,
        window_number,
        opened_at,
        last_inbound_at,
        last_inbound_at + to_hours(getvariable('customer_service_window_hours')) as expires_at,
        inbound_count
    from windows
)

select * from final
