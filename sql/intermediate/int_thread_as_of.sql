-- one row: the moment the per-thread models (service_windows, conversations) describe,
-- i.e. the build's as-of (`convo build --as-of`, else the newest message); the
-- default time of `convo window`
-- config: kind=cross-thread
with final as (
    select getvariable('as_of') as as_of
)

select * from final
