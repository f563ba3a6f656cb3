-- one row per record of Meta's pricing_analytics data points read as JSON text: its fields as VARCHAR, for
-- pricing_analytics.sql to type and check, and why it is no record at all (pre_reason: not JSON,
-- not an object, not UTF-8) or null. waba_id is the response's id, added by the reader
-- (pipeline/readers.py analytics_points), or a column of a flat file.
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
        case when is_object then json_transform(raw, '{
            "start": "VARCHAR", "end": "VARCHAR", "phone_number": "VARCHAR", "country": "VARCHAR",
            "pricing_category": "VARCHAR", "pricing_type": "VARCHAR", "tier": "VARCHAR",
            "volume": "VARCHAR", "cost": "VARCHAR", "waba_id": "VARCHAR"
        }') end as field
    from parsed
)

select * from final
