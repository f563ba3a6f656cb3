-- one row: the line `convo build` prints on how rebuilt conversations agree with the
-- platform's exported records and webhook events (conversation_reconciliation)
with reconciliation as (
    select * from conversation_reconciliation
),

totals as (
    select
        count(*) filter (where rebuilt_id is not null) as rebuilt,
        count(*) filter (where platform_conversation_id is not null) as exported,
        count(*) filter (where outcome = 'matched') as matched,
        count(*) filter (where outcome = 'differs') as differing,
        count(*) filter (where outcome = 'only_rebuilt') as only_rebuilt,
        count(*) filter (where outcome = 'only_exported') as only_exported
    from reconciliation
),

field_counts as (
    select
        field,
        count(*) as conversations
    from (select unnest(differing_fields) as field from reconciliation where outcome = 'differs')
    group by field
),

fields as (
    select
        string_agg(format('{} {:,}', field, conversations), ', ' order by conversations desc, field) as breakdown
    from field_counts
),

final as (
    select
        case
            when totals.exported = 0 then format(
                'conversations: {:,} rebuilt; nothing exported to compare with (no conversation records, '
                    || 'no webhook events naming a conversation)',
                totals.rebuilt
            )
            else format(
                'conversations: {:,} rebuilt, {:,} matched exported records ({:.1f}%), {:,} differ{}{}',
                totals.rebuilt,
                totals.matched,
                100.0 * totals.matched / greatest(totals.rebuilt, 1),
                totals.differing,
                case when totals.differing > 0 then ': ' || fields.breakdown else '' end,
                case
                    when totals.only_rebuilt + totals.only_exported > 0 then format(
                        '; {:,} only rebuilt, {:,} only exported', totals.only_rebuilt, totals.only_exported
                    )
                    else ''
                end
            )
        end as line
    from totals
    cross join fields
)

select * from final
