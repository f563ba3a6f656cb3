-- one row per template name x language x updated_at: the catalog's category history
-- config: kind=staging
with source as (
    select * from lake_templates
),

final as (
    select
        name as template_name,
        language,
        category as template_category,
        updated_at
    from source
)

select * from final
