-- how our bill compares with Meta's pricing_analytics (analytics_reconciliation): rows
-- compared and rows beyond tolerance, with both totals
with compared as (
    select * from analytics_reconciliation
),

money as (
    select 1000000 as micros_per_unit
),

totals as (
    select
        count(*) as compared_rows,
        count(*) filter (where is_beyond_tolerance) as differing_rows,
        count(*) filter (where status = 'unknown_phone_number') as unknown_number_rows,
        coalesce(sum(units), 0) as units,
        coalesce(sum(meta_volume), 0) as meta_volume,
        coalesce(sum(cost_micros), 0) as cost_micros,
        coalesce(sum(meta_cost_micros), 0) as meta_cost_micros
    from compared
),

final as (
    select
        case
            when compared_rows = 0 then 'pricing analytics: no pricing_analytics data to compare with'
            else format('pricing analytics: {:,} of {:,} day x number x country x category x type rows beyond '
                'tolerance; volume ours {:,} vs Meta {:,}, cost ours {:,.2f} vs Meta {:,.2f}{}',
                differing_rows, compared_rows, units, meta_volume, cost_micros / money.micros_per_unit,
                meta_cost_micros / money.micros_per_unit,
                case when unknown_number_rows > 0
                    then format(' ({:,} rows name a phone number without display_phone_number in convo.toml)',
                        unknown_number_rows)
                    else '' end)
        end as line
    from totals
    cross join money
)

select * from final
