-- one row per input record of the template catalog: name, language, category
-- at updated_at, and the first problem found or null when accepted.
-- Reads: records(seq, line, raw, pre_reason, pre_detail, field): field holds the export's
-- fields as VARCHAR; made by templates_json.sql from JSON text, or straight from a Parquet
-- file's columns (pipeline/ingest.py).
with typed as (
    select
        seq,
        line,
        raw,
        pre_reason,
        pre_detail,
        blank_to_null(field.name) as name,
        coalesce(blank_to_null(field.language), '') as language,
        lower(blank_to_null(field.category)) as category,
        blank_to_null(field.updated_at) as updated_at_text,
        parse_ts(field.updated_at) as updated_at
    from records
),

checked as (
    select
        *,
        case
            when name is null then ['missing_required_field', 'name']
            when category is null then ['missing_required_field', 'category']
            when updated_at_text is null then ['missing_required_field', 'updated_at']
            when updated_at is null then ['bad_timestamp', 'updated_at']
            when not list_contains(getvariable('template_categories'), category) then ['unknown_enum', 'category']
        end as problem
    from typed
),

final as (
    select
        seq,
        line,
        name,
        language,
        category,
        updated_at,
        coalesce(pre_reason, problem[1]) as reason,
        case when pre_reason is not null then pre_detail else problem[2] end as detail,
        raw
    from checked
)

select * from final
