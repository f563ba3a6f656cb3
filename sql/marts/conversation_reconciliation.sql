-- one row per rebuilt-or-exported conversation: conversations (rebuilt from messages
-- and closes) next to what the platform exported about it (int_conv_platform: its
-- record and webhook events), matched by the platform id most of the rebuilt
-- conversation's messages carry, else by thread and started_at. outcome is matched,
-- differs (differing_fields lists which of started_at, ended_at, ended_reason,
-- messages_count, status), only_rebuilt or only_exported. Platform conversations
-- starting after the build's as-of are out of scope.
--
-- Fair comparison: both sides are judged as of the build's as-of. The platform's
-- record was true at its export time (>= observed_at), so:
-- * its end counts when ended_at <= as-of; a record still open whose timeout
--   (last message + platform_conversation_timeout_hours) falls between observed_at
--   and the as-of is taken as ended by that timeout (the export predates it);
-- * its status as of the as-of follows from those and from its last message
--   (inactive once inactive_after_minutes passed); 'open' when its last message is
--   after the as-of (active or inactive cannot be told) matches active or inactive;
-- * messages_count is compared only when the record saw every rebuilt message
--   (observed_at >= the rebuilt last message) and the rebuilt saw every counted one
--   (the record's last message <= as-of).
--
-- What disagrees on simulated data (convo simulate, 2,000-5,000 contacts, 30-90 days,
-- --dirty or not): nothing, except around the bsuid cut-over (DOMAIN R2, 2026-03-31).
-- Some users' records carry only the phone before it and only the bsuid after it; no
-- record carries both, so R2 keeps two contact keys (two threads) for one user, while
-- the platform keeps one conversation across the cut-over. Each such conversation
-- (33 of 40,411 in a 3,000-contact, 60-day run from 2026-03-01) shows up as: the
-- phone-keyed part `differs` (messages_count, often ended_at / ended_reason: the
-- platform's close, keyed to the phone, ends it early or not at all), the bsuid-keyed
-- part `only_rebuilt`, and sometimes the platform's next conversation `only_exported`
-- (our bsuid part ran on into it). Linking a phone to the bsuid seen in the same
-- platform conversation (int_contact_keys) would remove this class.
-- config: kind=cross-thread
with rebuilt as (
    select * from conversations
),

platform_conversations as (
    select * from int_conv_platform
    where started_at <= getvariable('as_of')
),

id_pairs as (
    select
        rebuilt.id as rebuilt_id,
        platform_conversations.platform_conversation_id
    from rebuilt
    join platform_conversations
        on platform_conversations.platform_conversation_id = rebuilt.platform_conversation_id
    qualify row_number() over (
        partition by platform_conversations.platform_conversation_id
        order by rebuilt.started_at = platform_conversations.started_at desc, rebuilt.started_at, rebuilt.id
    ) = 1
),

thread_pairs as (
    select
        rebuilt.id as rebuilt_id,
        platform_conversations.platform_conversation_id
    from rebuilt
    join platform_conversations
        on platform_conversations.phone_number_id = rebuilt.phone_number_id
        and platform_conversations.contact_key = rebuilt.contact_key
        and platform_conversations.started_at = rebuilt.started_at
    where rebuilt.id not in (select rebuilt_id from id_pairs)
        and platform_conversations.platform_conversation_id not in (
            select platform_conversation_id from id_pairs
        )
    qualify row_number() over (
        partition by platform_conversations.platform_conversation_id order by rebuilt.id
    ) = 1
),

pairs as (
    select * from id_pairs
    union all
    select * from thread_pairs
),

platform_as_of as (
    select
        *,
        case
            when ended_at <= getvariable('as_of') then ended_at
            when ended_at is null
                and last_message_at + to_hours(getvariable('platform_conversation_timeout_hours')) <= getvariable('as_of')
                and observed_at < last_message_at + to_hours(getvariable('platform_conversation_timeout_hours'))
                then last_message_at + to_hours(getvariable('platform_conversation_timeout_hours'))
        end as end_at_as_of
    from platform_conversations
),

platform_judged as (
    select
        *,
        case
            when ended_at <= getvariable('as_of') then ended_reason
            when end_at_as_of is not null then 'timeout'
        end as ended_reason_as_of,
        case
            when end_at_as_of is not null then 'ended'
            when last_message_at is null or last_message_at > getvariable('as_of') then 'open'
            when last_message_at + to_minutes(getvariable('inactive_after_minutes')) <= getvariable('as_of')
                then 'inactive'
            else 'active'
        end as status_as_of
    from platform_as_of
),

joined as (
    select
        rebuilt.id as rebuilt_id,
        coalesce(rebuilt.tenant_id, platform_judged.tenant_id) as tenant_id,
        coalesce(rebuilt.phone_number_id, platform_judged.phone_number_id) as phone_number_id,
        coalesce(rebuilt.contact_key, platform_judged.contact_key) as contact_key,
        platform_judged.platform_conversation_id,
        platform_judged.source as exported_source,
        rebuilt.started_at as rebuilt_started_at,
        platform_judged.started_at as exported_started_at,
        rebuilt.ended_at as rebuilt_ended_at,
        platform_judged.end_at_as_of as exported_ended_at,
        rebuilt.ended_reason as rebuilt_ended_reason,
        platform_judged.ended_reason_as_of as exported_ended_reason,
        rebuilt.messages_count as rebuilt_messages_count,
        platform_judged.messages_count as exported_messages_count,
        rebuilt.status as rebuilt_status,
        platform_judged.status_as_of as exported_status,
        platform_judged.exported_status as exported_status_at_export,
        platform_judged.observed_at as exported_observed_at,
        rebuilt.last_message_at as rebuilt_last_message_at,
        platform_judged.last_message_at as exported_last_message_at,
        platform_judged.messages_count is not null
            and platform_judged.last_message_at <= getvariable('as_of')
            and platform_judged.observed_at >= rebuilt.last_message_at
            as is_messages_count_comparable
    from rebuilt
    left join pairs
        on pairs.rebuilt_id = rebuilt.id
    full join platform_judged
        on platform_judged.platform_conversation_id = pairs.platform_conversation_id
),

compared as (
    select
        *,
        list_filter([
            case when rebuilt_started_at is distinct from exported_started_at then 'started_at' end,
            case when rebuilt_ended_at is distinct from exported_ended_at then 'ended_at' end,
            case when rebuilt_ended_reason is distinct from exported_ended_reason then 'ended_reason' end,
            case
                when is_messages_count_comparable and rebuilt_messages_count is distinct from exported_messages_count
                    then 'messages_count'
            end,
            case
                when not (
                    rebuilt_status = exported_status
                    or (exported_status = 'open' and rebuilt_status in ('active', 'inactive'))
                ) then 'status'
            end
        ], lambda field: field is not null) as differing_fields
    from joined
),

final as (
    select
        rebuilt_id,
        platform_conversation_id,
        tenant_id,
        phone_number_id,
        contact_key,
        case
            when platform_conversation_id is null then 'only_rebuilt'
            when rebuilt_id is null then 'only_exported'
            when len(differing_fields) = 0 then 'matched'
            else 'differs'
        end as outcome,
        case when rebuilt_id is not null and platform_conversation_id is not null then differing_fields end
            as differing_fields,
        exported_source,
        rebuilt_started_at,
        exported_started_at,
        rebuilt_ended_at,
        exported_ended_at,
        rebuilt_ended_reason,
        exported_ended_reason,
        rebuilt_messages_count,
        exported_messages_count,
        rebuilt_status,
        exported_status,
        exported_status_at_export,
        rebuilt_last_message_at,
        exported_last_message_at,
        exported_observed_at
    from compared
)

select * from final
