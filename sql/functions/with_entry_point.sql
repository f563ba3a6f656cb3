-- with_entry_point(deliveries, entry_points): every row of `deliveries` (a relation with
-- phone_number_id, contact_key and event_at, a delivery) with the free entry point
-- window it falls in (DOMAIN R15, R19: [opened_at, expires_at) of int_bill_entry_points,
-- on its thread, R3): entry_point_message_id (the window's opening message) and
-- entry_point_opened_at, null outside every window. A thread's windows never overlap
-- (int_bill_entry_points), so a delivery falls in one at most. The one placement of a
-- delivery: int_bill_cbp_conversations gives the deliveries inside a window their
-- window's conversation and chains the others.
create or replace temp macro with_entry_point(deliveries_relation, entry_points_relation) as table
select
    placed.*,
    entry_points.message_id as entry_point_message_id,
    entry_points.opened_at as entry_point_opened_at
from query_table(deliveries_relation) as placed
left join query_table(entry_points_relation) as entry_points
    on entry_points.phone_number_id = placed.phone_number_id
    and entry_points.contact_key = placed.contact_key
    and placed.event_at >= entry_points.opened_at
    and placed.event_at < entry_points.expires_at
