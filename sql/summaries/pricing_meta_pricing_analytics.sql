-- how our bill compares with Meta's analytics files (analytics_reconciliation): per API and
-- grain of Meta's files (granularity x WABA or number x the dimensions requested), rows compared
-- and rows beyond tolerance, with both totals, and the rows of categories convo does not price
with compared as (
    select * from analytics_reconciliation
),

money as (
    select 1000000 as micros_per_unit
),

grains as (
    select
        api,
        granularity,
        dimensions,
        string_split(dimensions, ',') as dimension_list,
        count(*) as compared_rows,
        count(*) filter (where is_beyond_tolerance) as differing_rows,
        count(*) filter (where status = 'unknown_phone_number') as unknown_number_rows,
        count(*) filter (where status = 'unknown_waba') as unknown_waba_rows,
        count(*) filter (where not is_priced_by_convo) as unpriced_rows,
        coalesce(sum(units), 0) as units,
        coalesce(sum(meta_volume), 0) as meta_volume,
        coalesce(sum(cost_micros), 0) as cost_micros,
        sum(meta_cost_micros) as meta_cost_micros
    from compared
    group by api, granularity, dimensions
),

described as (
    select
        *,
        concat_ws(' x ',
            case granularity when 'HALF_HOUR' then 'half hour' when 'DAILY' then 'day' else 'month' end,
            case when list_contains(dimension_list, 'PHONE') then 'number' else 'WABA' end,
            case when list_contains(dimension_list, 'COUNTRY') then 'country' end,
            case when list_contains(dimension_list, 'PRICING_CATEGORY')
                or list_contains(dimension_list, 'CONVERSATION_CATEGORY') then 'category' end,
            case when list_contains(dimension_list, 'PRICING_TYPE')
                or list_contains(dimension_list, 'CONVERSATION_TYPE') then 'type' end
        ) as grain
    from grains
),

lines as (
    select
        api,
        grain,
        format('{}: {:,} of {:,} {} rows beyond tolerance; volume ours {:,} vs Meta {:,}, '
            'cost ours {:,.2f} vs Meta {}{}{}{}',
            replace(api, '_', ' '), differing_rows, compared_rows, grain, units, meta_volume,
            cost_micros / money.micros_per_unit,
            case when meta_cost_micros is null then 'not given (volume only)'
                else format('{:,.2f}', meta_cost_micros / money.micros_per_unit) end,
            case when unknown_number_rows > 0
                then format(' ({:,} rows name a phone number without display_phone_number in convo.toml)',
                    unknown_number_rows)
                else '' end,
            case when unknown_waba_rows > 0
                then format(' ({:,} rows name a WABA id not in convo.toml)', unknown_waba_rows)
                else '' end,
            case when unpriced_rows > 0
                then format(' ({:,} rows of categories convo does not price)', unpriced_rows)
                else '' end
        ) as line
    from described
    cross join money
),

empty as (
    select 'pricing analytics: no pricing_analytics data to compare with' as line
    where not exists (select 1 from compared)
),

final as (
    select line from lines
    union all
    select line from empty
)

select * from final
order by line
