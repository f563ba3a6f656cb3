-- one row per scenario x billable unit: a CBP conversation or a PMP delivered outbound
-- message, free ones included. Scenario 'actual' is the bill (billable_units); A, B,
-- C ... re-price every unit under one regime (regime_whatif). The cross-thread stage:
-- 1. price each unit by its rule (int_bill_rules_daily): inside a free entry point
--    window; (the bill only) a template inside a CBP conversation of its category still
--    open after the switch (R20); inside an open customer service window; or outside
--    (DOMAIN R13-R21). A CBP conversation is priced by its opening message and date (R17);
-- 2. monthly free allowances (R16 per WABA, R21 per phone number): the first N units
--    of the rule's category in a local month that would be charged are free_tier;
-- 3. volume tiers (R24): charged units are counted per tenant x market x rate category
--    x local month (and currency), in delivery order, and each is priced at the rate of
--    the tier its count falls in (marginal pricing), from the rate card in force that
--    quarter (R23) in the number's currency.
-- Counting needs an order only on the few days where a count crosses an allowance or a
-- tier boundary: units are counted per day, days accumulate in date order, and only the
-- units of a crossing day are ranked (by delivery, then unit_id: the same every run).
with outbound as (
    select * from int_bill_outbound
),

timeline as (
    select * from int_bill_timeline
),

bill_messages as (
    select * from int_bill_messages
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
        conversation_id,
        count(*) as all_messages_count,
        count(*) filter (where unit = 'conversation') as billed_messages_count
    from bill_messages
    group by conversation_id
),

described as (
    select
        outbound.message_id,
        outbound.tenant_id,
        outbound.phone_number_id,
        outbound.market,
        outbound.category,
        outbound.event_at,
        outbound.billing_date,
        outbound.billing_month,
        bill_messages.conversation_id,
        bill_messages.conversation_category,
        bill_messages.unit as bill_unit,
        bill_messages.is_in_open_cbp_conversation,
        timeline.is_in_entry_point_window,
        timeline.is_service_window_open
    from outbound
    join bill_messages using (message_id)
    join timeline using (message_id)
),

conversations as (
    select
        'conversation' as unit,
        openers.message_id as unit_id,
        openers.tenant_id,
        openers.phone_number_id,
        openers.market,
        openers.conversation_category as category,
        openers.event_at as started_at,
        openers.billing_date,
        openers.billing_month,
        'conversation' as bill_unit,
        openers.is_in_entry_point_window,
        false as is_in_open_cbp_conversation,
        openers.is_service_window_open,
        conversation_sizes.all_messages_count,
        conversation_sizes.billed_messages_count
    from described as openers
    join conversation_sizes using (conversation_id)
    where openers.message_id = openers.conversation_id
),

single_messages as (
    select
        'message' as unit,
        message_id as unit_id,
        tenant_id,
        phone_number_id,
        market,
        category,
        event_at as started_at,
        billing_date,
        billing_month,
        bill_unit,
        is_in_entry_point_window,
        is_in_open_cbp_conversation,
        is_service_window_open,
        1 as all_messages_count,
        1 as billed_messages_count
    from described
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

typed as (
    select
        candidates.scenario,
        candidates.regime,
        candidates.pricing_model,
        candidates.unit,
        candidates.unit_id,
        candidates.tenant_id,
        candidates.phone_number_id,
        candidates.market,
        candidates.category,
        candidates.rate_category,
        candidates.started_at,
        candidates.billing_date,
        candidates.billing_month,
        case when candidates.scenario = 'actual' then candidates.billed_messages_count
            else candidates.all_messages_count end as messages_count,
        case
            when candidates.is_in_entry_point_window then candidates.in_entry_point_window
            when candidates.scenario = 'actual' and candidates.is_in_open_cbp_conversation
                and candidates.in_open_cbp_conversation is not null then candidates.in_open_cbp_conversation
            when candidates.is_service_window_open then candidates.in_service_window
            else candidates.outside_service_window
        end as rule_pricing_type,
        candidates.free_allowance,
        case candidates.free_allowance_per
            when 'waba_month' then coalesce(numbers.waba_id, cast(candidates.phone_number_id as varchar))
            when 'phone_number_month' then cast(candidates.phone_number_id as varchar)
        end as allowance_holder,
        coalesce(numbers.currency, getvariable('billing_default_currency')) as currency
    from candidates
    left join numbers using (phone_number_id)
),

-- 2. allowances
allowance_units as (
    select * from typed
    where rule_pricing_type = 'regular' and free_allowance is not null
),

allowance_days as (
    select
        scenario, allowance_holder, billing_month, category, billing_date,
        min(free_allowance) as month_allowance,
        count(*) as day_units
    from allowance_units
    group by scenario, allowance_holder, billing_month, category, billing_date
),

allowance_spans as (
    select
        *,
        sum(day_units) over (
            partition by scenario, allowance_holder, billing_month, category
            order by billing_date rows between unbounded preceding and current row
        ) as through_day
    from allowance_days
),

allowance_placed as (
    select
        allowance_units.*,
        allowance_spans.month_allowance,
        allowance_spans.through_day - allowance_spans.day_units as before_day,
        allowance_spans.through_day
    from allowance_units
    join allowance_spans using (scenario, allowance_holder, billing_month, category, billing_date)
),

allowance_decided as (
    select *, through_day <= month_allowance as is_free_tier
    from allowance_placed
    where through_day <= month_allowance or before_day >= month_allowance
    union all
    select
        *,
        before_day + row_number() over (
            partition by scenario, allowance_holder, billing_month, category, billing_date
            order by started_at, unit_id
        ) <= month_allowance as is_free_tier
    from allowance_placed
    where before_day < month_allowance and through_day > month_allowance
),

allowed as (
    select
        * exclude (month_allowance, before_day, through_day, is_free_tier),
        case when is_free_tier then 'free_tier' else rule_pricing_type end as pricing_type
    from allowance_decided
    union all
    select *, rule_pricing_type as pricing_type
    from typed
    where rule_pricing_type is distinct from 'regular' or free_allowance is null
),

-- 3. volume tiers
charged as (
    select * from allowed
    where pricing_type = 'regular'
),

rate_keys as (
    select distinct quarter_start, market, category, currency
    from rates
),

tier_days as (
    select
        scenario, tenant_id, market, rate_category, currency, billing_month, billing_date,
        count(*) as day_units
    from charged
    group by scenario, tenant_id, market, rate_category, currency, billing_month, billing_date
),

tier_spans as (
    select
        *,
        sum(day_units) over (
            partition by scenario, tenant_id, market, rate_category, currency, billing_month
            order by billing_date rows between unbounded preceding and current row
        ) as through_day
    from tier_days
),

-- the tier of a day whose units all fall in one tier; null on a crossing day
day_tiers as (
    select
        tier_spans.*,
        rate_keys.market is not null as is_rated,
        rates.tier as day_tier,
        rates.rate_micros as day_rate_micros
    from tier_spans
    left join rate_keys
        on rate_keys.quarter_start = cast(date_trunc('quarter', tier_spans.billing_date) as date)
        and rate_keys.market = tier_spans.market
        and rate_keys.category = tier_spans.rate_category
        and rate_keys.currency = tier_spans.currency
    left join rates
        on rates.quarter_start = cast(date_trunc('quarter', tier_spans.billing_date) as date)
        and rates.market = tier_spans.market
        and rates.category = tier_spans.rate_category
        and rates.currency = tier_spans.currency
        and rates.tier_from <= tier_spans.through_day - tier_spans.day_units + 1
        and (rates.tier_to is null or tier_spans.through_day <= rates.tier_to)
),

charged_placed as (
    select
        charged.*,
        day_tiers.is_rated,
        day_tiers.day_tier,
        day_tiers.day_rate_micros,
        day_tiers.through_day - day_tiers.day_units as before_day
    from charged
    join day_tiers using (scenario, tenant_id, market, rate_category, currency, billing_month, billing_date)
),

crossing as (
    select
        *,
        before_day + row_number() over (
            partition by scenario, tenant_id, market, rate_category, currency, billing_date
            order by started_at, unit_id
        ) as tier_position
    from charged_placed
    where is_rated and day_tier is null
),

priced as (
    select * exclude (is_rated, day_tier, day_rate_micros, before_day), day_tier as tier, day_rate_micros as rate_micros
    from charged_placed
    where not is_rated or day_tier is not null
    union all
    select
        crossing.* exclude (is_rated, day_tier, day_rate_micros, before_day, tier_position),
        rates.tier,
        rates.rate_micros
    from crossing
    left join rates
        on rates.quarter_start = cast(date_trunc('quarter', crossing.billing_date) as date)
        and rates.market = crossing.market
        and rates.category = crossing.rate_category
        and rates.currency = crossing.currency
        and crossing.tier_position >= rates.tier_from
        and (rates.tier_to is null or crossing.tier_position <= rates.tier_to)
),

-- the what-if scenarios keep no unit_id: regime_whatif only adds them up
final as (
    select
        scenario, unit, case when scenario = 'actual' then unit_id end as unit_id, regime, pricing_model, tenant_id, phone_number_id, market, category,
        pricing_type, rate_category, billing_date, billing_month, messages_count, tier, rate_micros,
        rate_micros as cost_micros, currency
    from priced
    union all
    select
        scenario, unit, case when scenario = 'actual' then unit_id end, regime, pricing_model, tenant_id,
        phone_number_id, market, category, pricing_type, rate_category, billing_date, billing_month, messages_count,
        cast(null as varchar),
        case when pricing_type is not null then 0 end, case when pricing_type is not null then 0 end, currency
    from allowed
    where pricing_type is distinct from 'regular'
)

select * from final
