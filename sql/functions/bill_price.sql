-- bill_price(bill_messages, rules, numbers, rates, actual): the bill's units priced
-- (DOMAIN R13-R24), written once for the bill and for the what-if regimes. The
-- relations are named as int_bill_messages, int_bill_rules_daily, phone_numbers and
-- int_bill_rate_quarters give them; actual = true prices the bill (scenario 'actual':
-- one unit per CBP conversation or PMP delivered message, free ones included; a
-- message no rule prices stays, unpriced), false every what-if scenario (A, B, C ...:
-- one regime applied to every date). Returns one row per scenario x unit: its rule's
-- pricing type after allowances, its tier and rate (rate_micros null: unpriced).
-- 1. price each unit by its rule (int_bill_rules_daily): inside a free entry point
--    window; (the bill only) a template inside a CBP conversation of its category still
--    open after the switch (R20); inside an open customer service window; or outside
--    (DOMAIN R13-R21). A CBP conversation is priced by its opening message and date (R17);
-- 2. monthly free allowances (R16 per WABA, R21 per phone number): the first N units
--    of the rule's category in a local month that would be charged are free_tier;
-- 3. volume tiers (R24): charged units are counted per tenant x market x rate category
--    x local month (and currency), in delivery order, and each is priced at the rate of
--    the tier its count falls in (marginal pricing), from the rate card in force that
--    quarter (R23) in the number's currency. A rule with volume_tiers 'untiered'
--    (regime C service, R21: no volume tiers, not in the utility tier counter) has no
--    tier counter (tier_counter null): its units take its rate category's first-tier
--    rate, have no tier, and never move another unit's tier.
-- Meta Business Agent messages (R21a: billed by Meta per token, not priced by convo)
-- are category meta_business_agent (messages), never service: no rule prices them, so
-- their rate and cost are null (unpriced).
-- Counting needs an order only on the few days where a count crosses an allowance or a
-- tier boundary: units are counted per day, days accumulate in date order, and only the
-- units of a crossing day are ranked (by delivery, then unit_id: the same every run),
-- into a small table of key ranges.
create or replace temp macro bill_price(bill_messages_relation, rules_relation, numbers_relation, rates_relation, actual)
as table
with bill_messages as not materialized (
    select * from query_table(bill_messages_relation)
),

rules as (
    select * from query_table(rules_relation)
    where (scenario = 'actual') = actual
),

numbers as (
    select * from query_table(numbers_relation)
),

rates as (
    select * from query_table(rates_relation)
),

rate_keys as (
    select distinct quarter_start, market, category, currency
    from rates
),

list_rates as (
    select quarter_start, market, category, currency, rate_micros
    from rates
    where tier_from = 1
),

conversations as not materialized (
    select
        'conversation' as unit,
        message_id as unit_id,
        tenant_id,
        phone_number_id,
        contact_key,
        country_code,
        template_name,
        market,
        conversation_category as category,
        event_at as started_at,
        billing_date,
        billing_month,
        'conversation' as bill_unit,
        is_in_entry_point_window,
        false as is_in_open_cbp_conversation,
        is_service_window_open,
        conversation_messages as all_messages_count,
        conversation_billed_messages as billed_messages_count
    from bill_messages
    where message_id = conversation_id
),

single_messages as not materialized (
    select
        'message' as unit,
        message_id as unit_id,
        tenant_id,
        phone_number_id,
        contact_key,
        country_code,
        template_name,
        market,
        category,
        event_at as started_at,
        billing_date,
        billing_month,
        unit as bill_unit,
        is_in_entry_point_window,
        is_in_open_cbp_conversation,
        is_service_window_open,
        1 as all_messages_count,
        1 as billed_messages_count
    from bill_messages
),

candidates as not materialized (
    select rules.scenario, rules.regime, rules.pricing_model, conversations.*, rules.in_entry_point_window,
        rules.in_open_cbp_conversation, rules.in_service_window, rules.outside_service_window, rules.rate_category,
        rules.free_allowance, rules.free_allowance_per, rules.volume_tiers
    from conversations
    join rules
        on rules.calendar_date = conversations.billing_date
        and rules.category = conversations.category
        and rules.pricing_model = 'CBP'
    union all
    select rules.scenario, rules.regime, rules.pricing_model, single_messages.*, rules.in_entry_point_window,
        rules.in_open_cbp_conversation, rules.in_service_window, rules.outside_service_window, rules.rate_category,
        rules.free_allowance, rules.free_allowance_per, rules.volume_tiers
    from single_messages
    join rules
        on rules.calendar_date = single_messages.billing_date
        and rules.category = single_messages.category
        and rules.pricing_model = 'PMP'
    where rules.scenario <> 'actual' or single_messages.bill_unit = 'message'
    union all
    -- no rule (the bill only): a template of unknown category, or a date before the first rule
    select 'actual', cast(null as varchar), cast(null as varchar), single_messages.*, cast(null as varchar),
        cast(null as varchar), cast(null as varchar), cast(null as varchar), cast(null as varchar),
        cast(null as bigint), cast(null as varchar), cast(null as varchar)
    from single_messages
    anti join rules
        on rules.calendar_date = single_messages.billing_date
        and rules.category = single_messages.category
        and rules.scenario = 'actual'
    where actual
),

typed as not materialized (
    select
        candidates.scenario,
        candidates.regime,
        candidates.pricing_model,
        candidates.unit,
        candidates.unit_id,
        candidates.tenant_id,
        candidates.phone_number_id,
        candidates.contact_key,
        candidates.country_code,
        candidates.template_name,
        candidates.market,
        candidates.category,
        candidates.rate_category,
        case when candidates.volume_tiers = 'untiered' then null else candidates.rate_category end as tier_counter,
        candidates.volume_tiers,
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

-- 2. allowances: per holder x month x category, the units before each day; on the day
-- that crosses the allowance, the last free unit (by delivery, then unit_id)
allowance_spans as (
    select
        *,
        sum(day_units) over (
            partition by scenario, allowance_holder, billing_month, category
            order by billing_date rows between unbounded preceding and current row
        ) - day_units as before_day
    from (
        select
            scenario, allowance_holder, billing_month, category, billing_date,
            min(free_allowance) as month_allowance,
            count(*) as day_units
        from typed
        where rule_pricing_type = 'regular' and free_allowance is not null
        group by scenario, allowance_holder, billing_month, category, billing_date
    )
),

allowance_boundaries as (
    select
        scenario, allowance_holder, category, billing_date,
        max(unit_key) as last_free_key
    from (
        select
            typed.scenario,
            typed.allowance_holder,
            typed.category,
            typed.billing_date,
            {'started_at': typed.started_at, 'unit_id': typed.unit_id} as unit_key,
            row_number() over (
                partition by typed.scenario, typed.allowance_holder, typed.category, typed.billing_date
                order by typed.started_at, typed.unit_id
            ) as day_position,
            allowance_spans.month_allowance - allowance_spans.before_day as free_that_day
        from typed
        join allowance_spans
            on allowance_spans.scenario = typed.scenario
            and allowance_spans.allowance_holder = typed.allowance_holder
            and allowance_spans.category = typed.category
            and allowance_spans.billing_date = typed.billing_date
            and allowance_spans.before_day < allowance_spans.month_allowance
            and allowance_spans.before_day + allowance_spans.day_units > allowance_spans.month_allowance
        where typed.rule_pricing_type = 'regular' and typed.free_allowance is not null
    )
    where day_position <= free_that_day
    group by scenario, allowance_holder, category, billing_date
),

allowed as not materialized (
    select
        typed.*,
        {'started_at': typed.started_at, 'unit_id': typed.unit_id} as unit_key,
        case
            when typed.rule_pricing_type = 'regular' and typed.free_allowance is not null and (
                allowance_spans.before_day + allowance_spans.day_units <= allowance_spans.month_allowance
                or {'started_at': typed.started_at, 'unit_id': typed.unit_id} <= allowance_boundaries.last_free_key
            ) then 'free_tier'
            else typed.rule_pricing_type
        end as pricing_type
    from typed
    left join allowance_spans
        on allowance_spans.scenario = typed.scenario
        and allowance_spans.allowance_holder = typed.allowance_holder
        and allowance_spans.category = typed.category
        and allowance_spans.billing_date = typed.billing_date
    left join allowance_boundaries
        on allowance_boundaries.scenario = typed.scenario
        and allowance_boundaries.allowance_holder = typed.allowance_holder
        and allowance_boundaries.category = typed.category
        and allowance_boundaries.billing_date = typed.billing_date
),

-- 3. volume tiers: per tenant x market x tier counter (the rate category of a tiered
-- unit) x currency x month, the charged units before each day; the tier of a day whose
-- units all fall in one tier; on a day that crosses tiers, the units of each tier as a
-- range of (delivery, unit_id). Untiered units (no tier counter) take the first tier.
tier_spans as (
    select
        tier_days.*,
        sum(tier_days.day_units) over (
            partition by tier_days.scenario, tier_days.tenant_id, tier_days.market, tier_days.tier_counter,
                tier_days.currency, tier_days.billing_month
            order by tier_days.billing_date rows between unbounded preceding and current row
        ) - tier_days.day_units as before_day
    from (
        select
            scenario, tenant_id, market, tier_counter, currency, billing_month, billing_date,
            count(*) as day_units
        from allowed
        where pricing_type = 'regular' and tier_counter is not null
        group by scenario, tenant_id, market, tier_counter, currency, billing_month, billing_date
    ) as tier_days
),

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
        and rate_keys.category = tier_spans.tier_counter
        and rate_keys.currency = tier_spans.currency
    left join rates
        on rates.quarter_start = cast(date_trunc('quarter', tier_spans.billing_date) as date)
        and rates.market = tier_spans.market
        and rates.category = tier_spans.tier_counter
        and rates.currency = tier_spans.currency
        and rates.tier_from <= tier_spans.before_day + 1
        and (rates.tier_to is null or tier_spans.before_day + tier_spans.day_units <= rates.tier_to)
),

tier_ranges as (
    select
        ranked.scenario, ranked.tenant_id, ranked.market, ranked.tier_counter, ranked.currency,
        ranked.billing_date, rates.tier, rates.rate_micros,
        min(ranked.unit_key) as first_key,
        max(ranked.unit_key) as last_key
    from (
        select
            allowed.scenario, allowed.tenant_id, allowed.market, allowed.tier_counter, allowed.currency,
            allowed.billing_date, allowed.unit_key,
            day_tiers.before_day + row_number() over (
                partition by allowed.scenario, allowed.tenant_id, allowed.market, allowed.tier_counter,
                    allowed.currency, allowed.billing_date
                order by allowed.started_at, allowed.unit_id
            ) as tier_position
        from allowed
        join day_tiers using (scenario, tenant_id, market, tier_counter, currency, billing_date)
        where allowed.pricing_type = 'regular'
            and day_tiers.is_rated
            and day_tiers.day_tier is null
    ) as ranked
    join rates
        on rates.quarter_start = cast(date_trunc('quarter', ranked.billing_date) as date)
        and rates.market = ranked.market
        and rates.category = ranked.tier_counter
        and rates.currency = ranked.currency
        and ranked.tier_position >= rates.tier_from
        and (rates.tier_to is null or ranked.tier_position <= rates.tier_to)
    group by ranked.scenario, ranked.tenant_id, ranked.market, ranked.tier_counter, ranked.currency,
        ranked.billing_date, rates.tier, rates.rate_micros
),

-- A crossing day's ranges ride on its day row as a short list, so pricing a unit is one
-- join (to its day) and no range join: DuckDB, misjudging the sizes, built the range
-- join's hash table on every unit (5.5 s for 12M what-if units with no crossing day).
day_prices as (
    select
        day_tiers.*,
        day_ranges.ranges
    from day_tiers
    left join (
        select
            scenario, tenant_id, market, tier_counter, currency, billing_date,
            list({'first_key': first_key, 'last_key': last_key, 'tier': tier, 'rate_micros': rate_micros})
                as ranges
        from tier_ranges
        group by scenario, tenant_id, market, tier_counter, currency, billing_date
    ) as day_ranges using (scenario, tenant_id, market, tier_counter, currency, billing_date)
),

priced as (
    select
        located.* exclude (unit_range, tier_counter_was_null, day_tier, day_rate_micros, list_rate_micros),
        case when located.pricing_type = 'regular' then coalesce(located.day_tier, located.unit_range.tier) end as tier,
        case
            when located.pricing_type = 'regular' and located.tier_counter_was_null then located.list_rate_micros
            when located.pricing_type = 'regular' then coalesce(located.day_rate_micros, located.unit_range.rate_micros)
            when located.pricing_type is not null then 0
        end as rate_micros
    from (
        select
            allowed.* exclude (rule_pricing_type, free_allowance, allowance_holder, unit_key, tier_counter,
                volume_tiers),
            allowed.tier_counter is null as tier_counter_was_null,
            day_prices.day_tier,
            day_prices.day_rate_micros,
            list_filter(day_prices.ranges, lambda unit_range: allowed.unit_key between unit_range.first_key
                and unit_range.last_key)[1] as unit_range,
            list_rates.rate_micros as list_rate_micros
        from allowed
        left join day_prices
            on allowed.pricing_type = 'regular'
            and day_prices.scenario = allowed.scenario
            and day_prices.tenant_id = allowed.tenant_id
            and day_prices.market = allowed.market
            and day_prices.tier_counter = allowed.tier_counter
            and day_prices.currency = allowed.currency
            and day_prices.billing_date = allowed.billing_date
        left join list_rates
            on allowed.pricing_type = 'regular'
            and allowed.tier_counter is null
            and list_rates.quarter_start = cast(date_trunc('quarter', allowed.billing_date) as date)
            and list_rates.market = allowed.market
            and list_rates.category = allowed.rate_category
            and list_rates.currency = allowed.currency
    ) as located
)

select * from priced
