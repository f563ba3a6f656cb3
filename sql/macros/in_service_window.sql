-- DOMAIN R6 for notebooks: may the business send a free-form message on phone number
-- `phone_number` (a phone_number_id) to contact `contact` (a contact_key) at `send_at`?
-- True iff an inbound message from the contact lies in (send_at - 24 h, send_at], i.e. iff a
-- service window has opened_at <= send_at < expires_at. Answers from the warehouse's
-- service_windows, so only messages up to the build's as-of count.
--     select in_service_window(104711550000101, 'BR.8Jf2...', now())
create or replace macro in_service_window(phone_number, contact, send_at) as (
    exists (
        select 1
        from service_windows as windows
        where windows.phone_number_id = phone_number
            and windows.contact_key = contact
            and windows.opened_at <= send_at
            and send_at < windows.expires_at
    )
);
