-- one row per Meta volume tier update (waba_id x effective_month x pricing_category x region x tier_lower)
-- config: kind=cross-thread
-- Meta's tier changes (account_update webhooks, VOLUME_BASED_PRICING_TIER_UPDATE; the earliest
-- tier_update_time of each change, kept at ingest) beside convo's own tier for the same month,
-- market and category: the highest tier its charged units reached in billable_units (DOMAIN
-- R24: tiers count charged units per business portfolio, market and category each month). The
-- WABA (entry[].id) is a tenant's when a [[phone_numbers]] waba_id in convo.toml names it;
-- Meta's region is matched to convo's market by name. Meta writes the first tier from 0 and
-- the last to MAX, billable_units from 1 and to nothing: both are read as the same bounds.
with updates as (
    select * from lake_meta_tier_updates
),

numbers as (
    select * from phone_numbers
),

units as (
    select * from billable_units
),

waba_tenants as (
    select waba_id, min(tenant_id) as tenant_id
    from numbers
    group by waba_id
),

-- convo's tiers: per tenant x billing month x market x category, the charged units and the
-- highest tier they reached.
convo_tiers as (
    select
        tenant_id,
        billing_month,
        lower(market) as market_name,
        category,
        count(*) as charged_units,
        max(cast(nullif(split_part(tier, ':', 1), '') as bigint)) as tier_lower
    from units
    where pricing_type = 'regular' and tier is not null
    group by tenant_id, billing_month, lower(market), category
),

convo_tier_labels as (
    select
        convo_tiers.*,
        arg_max(units.tier, units.billing_date) as tier
    from convo_tiers
    join units
        on units.tenant_id = convo_tiers.tenant_id
        and units.billing_month = convo_tiers.billing_month
        and lower(units.market) = convo_tiers.market_name
        and units.category = convo_tiers.category
        and units.pricing_type = 'regular'
        and cast(nullif(split_part(units.tier, ':', 1), '') as bigint) = convo_tiers.tier_lower
    group by all
),

matched as (
    select
        updates.waba_id,
        waba_tenants.tenant_id,
        updates.tier_update_time as tier_update_at,
        cast(updates.effective_month || '-01' as date) as effective_month,
        updates.region,
        updates.pricing_category,
        updates.tier_lower,
        updates.tier_upper,
        convo_tier_labels.tier as convo_tier,
        convo_tier_labels.tier_lower as convo_tier_lower,
        cast(nullif(split_part(convo_tier_labels.tier, ':', 2), '') as bigint) as convo_tier_upper,
        coalesce(convo_tier_labels.charged_units, 0) as convo_charged_units
    from updates
    left join waba_tenants
        on waba_tenants.waba_id = updates.waba_id
    left join convo_tier_labels
        on convo_tier_labels.tenant_id = waba_tenants.tenant_id
        and convo_tier_labels.billing_month = cast(updates.effective_month || '-01' as date)
        and convo_tier_labels.market_name = lower(updates.region)
        and convo_tier_labels.category = replace(updates.pricing_category, '_', '-')
),

final as (
    select
        waba_id,
        tenant_id,
        tier_update_at,
        effective_month,
        region,
        pricing_category,
        tier_lower,
        tier_upper,
        convo_tier,
        convo_charged_units,
        case
            when tenant_id is null then 'waba_not_configured'
            when convo_tier is null then 'no_convo_units'
            when greatest(convo_tier_lower, 1) = greatest(tier_lower, 1)
                and convo_tier_upper is not distinct from tier_upper then 'agrees'
            when greatest(convo_tier_lower, 1) < greatest(tier_lower, 1) then 'convo_tier_lower'
            else 'convo_tier_higher'
        end as outcome
    from matched
)

select * from final
