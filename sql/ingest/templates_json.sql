-- one row per record of the template catalog read as JSON text: its fields as VARCHAR, for
-- templates.sql to type and check, and why it is no record at all (pre_reason: not JSON,
-- not an object, not UTF-8) or null.
-- Reads: incoming(seq, line, raw, pre_reason) through json_records() (_macros.sql).
with parsed as (
    select * from json_records()
),

final as (
    select
        seq,
        line,
        raw,
        pre_reason,
        pre_detail,
        case when is_object then json_transform(raw, '{"name": "VARCHAR", "language": "VARCHAR", "category": "VARCHAR",
            "updated_at": "VARCHAR"}') end as field
    from parsed
)

select * from final
