-- the share of delivered messages whose pricing object (Meta's, DOMAIN R26) agrees with
-- the billing engine, then one line per class of disagreement (the largest first)
with reconciled as (
    select * from pricing_reconciliation
    where is_delivered
),

totals as (
    select count(*) as messages, count(*) filter (where agrees) as agreeing
    from reconciled
),

headline as (
    select
        0 as position,
        case
            when messages = 0 then 'pricing: no delivered message carries Meta''s pricing object'
            else format('pricing: Meta''s pricing object agrees on {:,} of {:,} delivered messages ({:.2f}%)',
                agreeing, messages, 100.0 * agreeing / messages)
        end as line
    from totals
),

classes as (
    select
        row_number() over (order by count(*) desc, disagreement, estimated, meta) as position,
        format('  differs in {}: ours {} vs Meta {}: {:,} messages (e.g. {})',
            disagreement, estimated, meta, count(*), min(message_id)) as line
    from (
        select
            message_id,
            disagreement,
            concat_ws('/', estimated_pricing_model, estimated_category, estimated_pricing_type) as estimated,
            concat_ws('/', meta_pricing_model, meta_category, meta_pricing_type) as meta
        from reconciled
        where not agrees
    )
    group by disagreement, estimated, meta
),

final as (
    select position, line from headline
    union all
    select position, line from classes
)

select line from final order by position
