-- one row per reconciliation_drift alert: a local day on which convo's estimate of one
-- phone number's bill agreed with Meta's own numbers (DOMAIN R26) less than it should.
-- * measure pricing_objects: of the number's messages that day carrying Meta's pricing
--   object (pricing_reconciliation, by billing_date), the share whose model, category,
--   type and billable flag all agree; judged from reconciliation_min_compared messages.
-- * measure pricing_analytics: of the day's rows of analytics_reconciliation (country x
--   category x pricing type), the share not beyond its tolerance; judged from a quarter
--   of reconciliation_min_compared rows.
-- fires when the share is below reconciliation_min_agreement.
-- config: kind=cross-thread
with pricing_objects as (
    select * from pricing_reconciliation
),

analytics as (
    select * from analytics_reconciliation
),

numbers as (
    select * from phone_numbers
),

thresholds as (
    select * from int_alert_policy
),

daily as (
    select billing_date as local_date, phone_number_id, 'pricing_objects' as measure,
        count(*) as compared, count(*) filter (where agrees) as agreeing,
        -- ties broken by the text itself: the same row every build
        arg_max(disagreement, {'count': disagreement_count, 'text': disagreement}) filter (where not agrees)
            as top_disagreement
    from (
        select *, count(*) over (partition by billing_date, phone_number_id, disagreement) as disagreement_count
        from pricing_objects
        where billing_date is not null
    )
    group by billing_date, phone_number_id
    union all
    select billing_date as local_date, phone_number_id, 'pricing_analytics' as measure,
        count(*) as compared, count(*) filter (where not is_beyond_tolerance) as agreeing,
        arg_max(format('{} {} {}', country_code, category, pricing_type),
            {'difference': abs(volume_difference), 'text': format('{} {} {}', country_code, category, pricing_type)})
            filter (where is_beyond_tolerance) as top_disagreement
    from analytics
    where phone_number_id is not null and billing_date is not null
    group by billing_date, phone_number_id
),

fired as (
    select daily.*, daily.agreeing / daily.compared as agreement, thresholds.*, numbers.tenant_id
    from daily
    join thresholds
        on thresholds.calendar_date = daily.local_date
    left join numbers
        using (phone_number_id)
    where daily.compared >= case daily.measure
            when 'pricing_objects' then thresholds.reconciliation_min_compared
            else thresholds.reconciliation_min_compared / 4
        end
        and daily.agreeing / daily.compared < thresholds.reconciliation_min_agreement
),

final as (
    select
        'reconciliation_drift' as kind,
        cast(reconciliation_drift_severity as integer) as severity_level,
        local_date,
        tenant_id,
        phone_number_id,
        cast(null as varchar) as market,
        cast(null as varchar) as country_code,
        cast(null as varchar) as category,
        cast(null as varchar) as template_name,
        measure,
        agreement as observed_value,
        reconciliation_min_agreement as expected_value,
        cast(null as varchar) as currency,
        format('{} of {} {} agree with convo''s estimate ({:.1f}%, below {:.0f}%){}',
            agreeing, compared,
            case measure when 'pricing_objects' then 'messages carrying Meta''s pricing object'
                else 'pricing_analytics rows' end,
            100 * agreement, 100 * reconciliation_min_agreement,
            coalesce(format('; most often: {}', top_disagreement), '')) as rule
    from fired
)

select * from final
