-- one row per rejected input record: where it came from, why, and its raw text
-- config: kind=cross-thread
with source as (
    select * from lake_quarantine
),

final as (
    select
        source_file,
        source_sha256,
        line,
        dataset,
        reason,
        detail,
        raw
    from source
)

select * from final
