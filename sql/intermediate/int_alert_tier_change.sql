-- one row per tier_change alert: a market x category of a tenant crossing into a higher
-- monthly volume tier (DOMAIN R24), as convo counts it and as Meta reported it.
-- * measure convo_tier: the first local day of the billing month with a charged unit
--   (billable_units, pricing_type regular) in a tier above the first; observed_value
--   is the tier's lower bound, expected_value the bound of the tier before it.
-- * measure meta_tier: Meta's VOLUME_BASED_PRICING_TIER_UPDATE (meta_tier_updates) to a
--   tier above the first, on the local day of its tier_update_at (the timezone of the
--   WABA's first configured number, else UTC).
-- config: kind=cross-thread
with units as (
    select * from billable_units
),

meta_updates as (
    select * from meta_tier_updates
),

numbers as (
    select * from phone_numbers
),

thresholds as (
    select * from int_alert_policy
),

policy as (
    select * from ref_policy
),

tiers as (
    select
        tenant_id,
        billing_month,
        market,
        category,
        tier,
        cast(split_part(tier, ':', 1) as bigint) as tier_lower,
        min(billing_date) as local_date,
        any_value(currency) as currency
    from units
    where pricing_type = 'regular' and tier is not null and split_part(tier, ':', 1) <> ''
    group by all
),

convo_crossings as (
    select
        tiers.*,
        lag(tier_lower) over (partition by tenant_id, billing_month, market, category order by tier_lower)
            as previous_tier_lower,
        lag(tier) over (partition by tenant_id, billing_month, market, category order by tier_lower)
            as previous_tier
    from tiers
),

waba_zones as (
    select waba_id, arg_min(timezone, phone_number_id) as timezone
    from numbers
    group by waba_id
),

meta_crossings as (
    select
        meta_updates.*,
        cast(timezone(coalesce(waba_zones.timezone, 'UTC'), meta_updates.tier_update_at) as date) as local_date
    from meta_updates
    left join waba_zones
        using (waba_id)
    where meta_updates.tier_lower > 1
),

final as (
    select
        'tier_change' as kind,
        cast(thresholds.tier_change_severity as integer) as severity_level,
        convo_crossings.local_date,
        convo_crossings.tenant_id,
        cast(null as bigint) as phone_number_id,
        convo_crossings.market,
        cast(null as varchar) as country_code,
        convo_crossings.category,
        cast(null as varchar) as template_name,
        'convo_tier' as measure,
        cast(convo_crossings.tier_lower as double) as observed_value,
        cast(coalesce(convo_crossings.previous_tier_lower, 1) as double) as expected_value,
        convo_crossings.currency,
        format('convo''s count of charged {} messages in {} this month entered tier {} on this day{}',
            convo_crossings.category, convo_crossings.market, convo_crossings.tier,
            coalesce(format(' (from tier {})', convo_crossings.previous_tier), '')) as rule
    from convo_crossings
    join thresholds
        on thresholds.calendar_date = convo_crossings.local_date
    where convo_crossings.tier_lower > 1
    union all
    select
        'tier_change' as kind,
        cast(policy.value as integer) as severity_level,
        meta_crossings.local_date,
        meta_crossings.tenant_id,
        cast(null as bigint) as phone_number_id,
        meta_crossings.region as market,
        cast(null as varchar) as country_code,
        replace(lower(meta_crossings.pricing_category), '_', '-') as category,
        cast(null as varchar) as template_name,
        'meta_tier' as measure,
        cast(meta_crossings.tier_lower as double) as observed_value,
        cast(null as double) as expected_value,
        cast(null as varchar) as currency,
        format('Meta reported a volume tier update for {} in {} (WABA {}): tier from {} for {}',
            meta_crossings.pricing_category, meta_crossings.region, meta_crossings.waba_id,
            meta_crossings.tier_lower, strftime(meta_crossings.effective_month, '%Y-%m')) as rule
    from meta_crossings
    join policy
        on policy.key = 'tier_change_severity'
        and policy.effective_from <= meta_crossings.local_date
        and (policy.effective_to is null or meta_crossings.local_date < policy.effective_to)
)

select * from final
