-- one row per scenario x billable unit: a CBP conversation or a PMP delivered outbound
-- message, free ones included. Scenario 'actual' is the bill (billable_units); A, B,
-- C ... re-price every unit under one regime (regime_whatif). The cross-thread stage:
-- 1. price each unit by its rule (int_bill_rules_daily): inside a free entry point
--    window; (bill only) a template inside a CBP conversation of its category still open
--    after the switch (R20); inside an open customer service window; or outside
--    (DOMAIN R13-R21). A CBP conversation is priced by its opening message and date (R17);
-- 2. monthly free allowances (R16 per WABA, R21 per phone number): the first N units
--    of the rule's category a local month that would be charged are free_tier;
-- 3. volume tiers (R24): the charged units are counted per tenant x market x rate
--    category x local month, in delivery order, and each is priced at the rate of the
--    tier its count falls in (marginal pricing), from the rate card in force that
--    quarter (R23) in the number's currency.
-- Ties in delivery time are ordered by unit_id, the same on every run.
with bill_messages as (
    select * from int_bill_messages
),

message_units as (
    select * from int_bill_message_units
),

rules as (
    select * from int_bill_rules_daily
),

numbers as (
    select * from phone_numbers
),

rates as (
    select * from int_bill_rate_quarters
),

-- messages per conversation: all of them (as if CBP applied at every date), and those
-- the bill counts in it (delivered on CBP dates)
conversation_sizes as (
    select
        bill_messages.conversation_id,
        count(*) as all_messages_count,
        count(*) filter (where message_units.unit = 'conversation') as billed_messages_count
    from bill_messages
    join message_units using (message_id)
    group by bill_messages.conversation_id
),

conversations as (
    select
        'conversation' as unit,
        openers.message_id as unit_id,
        cast(null as varchar) as message_id,
        openers.message_id as conversation_id,
        openers.tenant_id,
        openers.phone_number_id,
        openers.contact_key,
        openers.country_code,
        openers.market,
        openers.conversation_category as category,
        openers.template_name,
        openers.event_at as started_at,
        openers.billing_date,
        openers.billing_month,
        'conversation' as bill_unit,
        openers.is_in_entry_point_window,
        false as is_in_open_cbp_conversation,
        openers.is_service_window_open,
        conversation_sizes.all_messages_count,
        conversation_sizes.billed_messages_count
    from bill_messages as openers
    join conversation_sizes using (conversation_id)
    where openers.message_id = openers.conversation_id
),

single_messages as (
    select
        'message' as unit,
        message_id as unit_id,
        message_id,
        cast(null as varchar) as conversation_id,
        tenant_id,
        phone_number_id,
        contact_key,
        country_code,
        market,
        category,
        template_name,
        event_at as started_at,
        billing_date,
        billing_month,
        message_units.unit as bill_unit,
        is_in_entry_point_window,
        message_units.is_in_open_cbp_conversation,
        is_service_window_open,
        1 as all_messages_count,
        1 as billed_messages_count
    from bill_messages
    join message_units using (message_id)
),

candidates as (
    select rules.scenario, rules.regime, rules.pricing_model, conversations.*, rules.in_entry_point_window,
        rules.in_open_cbp_conversation, rules.in_service_window, rules.outside_service_window, rules.rate_category,
        rules.free_allowance, rules.free_allowance_per
    from conversations
    join rules
        on rules.calendar_date = conversations.billing_date
        and rules.category = conversations.category
        and rules.pricing_model = 'CBP'
    union all
    select rules.scenario, rules.regime, rules.pricing_model, single_messages.*, rules.in_entry_point_window,
        rules.in_open_cbp_conversation, rules.in_service_window, rules.outside_service_window, rules.rate_category,
        rules.free_allowance, rules.free_allowance_per
    from single_messages
    join rules
        on rules.calendar_date = single_messages.billing_date
        and rules.category = single_messages.category
        and rules.pricing_model = 'PMP'
    where rules.scenario <> 'actual' or single_messages.bill_unit = 'message'
    union all
    -- no rule: a template of unknown category, or a date before the first rule
    select 'actual', cast(null as varchar), cast(null as varchar), single_messages.*, cast(null as varchar),
        cast(null as varchar), cast(null as varchar), cast(null as varchar), cast(null as varchar),
        cast(null as bigint), cast(null as varchar)
    from single_messages
    anti join rules
        on rules.calendar_date = single_messages.billing_date
        and rules.category = single_messages.category
        and rules.scenario = 'actual'
),

situated as (
    select
        *,
        case
            when is_in_entry_point_window then 'entry_point_window'
            when scenario = 'actual' and is_in_open_cbp_conversation and in_open_cbp_conversation is not null
                then 'open_cbp_conversation'
            when is_service_window_open then 'service_window'
            else 'outside_service_window'
        end as situation,
        case when scenario = 'actual' then billed_messages_count else all_messages_count end as messages_count
    from candidates
),

typed as (
    select
        candidates.*,
        case candidates.situation
            when 'entry_point_window' then candidates.in_entry_point_window
            when 'open_cbp_conversation' then candidates.in_open_cbp_conversation
            when 'service_window' then candidates.in_service_window
            else candidates.outside_service_window
        end as rule_pricing_type,
        case candidates.free_allowance_per
            when 'waba_month' then coalesce(numbers.waba_id, cast(candidates.phone_number_id as varchar))
            when 'phone_number_month' then cast(candidates.phone_number_id as varchar)
        end as allowance_holder,
        coalesce(numbers.currency, getvariable('billing_default_currency')) as currency
    from situated as candidates
    left join numbers using (phone_number_id)
),

in_allowance as (
    select
        *,
        row_number() over (
            partition by scenario, allowance_holder, billing_month, category
            order by started_at, unit_id
        ) <= free_allowance as is_free_tier
    from typed
    where rule_pricing_type = 'regular' and free_allowance is not null
),

allowed as (
    select
        * exclude (is_free_tier),
        case when is_free_tier then 'free_tier' else rule_pricing_type end as pricing_type
    from in_allowance
    union all
    select *, rule_pricing_type as pricing_type
    from typed
    where rule_pricing_type is distinct from 'regular' or free_allowance is null
),

charged as (
    select
        *,
        row_number() over (
            partition by scenario, tenant_id, market, rate_category, billing_month
            order by started_at, unit_id
        ) as tier_position
    from allowed
    where pricing_type = 'regular'
),

priced as (
    select
        charged.*,
        rates.tier,
        rates.rate_micros
    from charged
    left join rates
        on rates.quarter_start = cast(date_trunc('quarter', charged.billing_date) as date)
        and rates.market = charged.market
        and rates.category = charged.rate_category
        and rates.currency = charged.currency
        and charged.tier_position >= rates.tier_from
        and (rates.tier_to is null or charged.tier_position <= rates.tier_to)
),

final as (
    select
        scenario, unit, unit_id, message_id, conversation_id, regime, pricing_model, tenant_id, phone_number_id,
        contact_key, country_code, market, category, template_name, situation, pricing_type, rate_category,
        started_at, billing_date, billing_month, messages_count, tier_position, tier, rate_micros,
        rate_micros as cost_micros, currency
    from priced
    union all
    select
        scenario, unit, unit_id, message_id, conversation_id, regime, pricing_model, tenant_id, phone_number_id,
        contact_key, country_code, market, category, template_name, situation, pricing_type, rate_category,
        started_at, billing_date, billing_month, messages_count, cast(null as bigint), cast(null as varchar),
        case when pricing_type is not null then 0 end, case when pricing_type is not null then 0 end, currency
    from allowed
    where pricing_type is distinct from 'regular'
)

select * from final
