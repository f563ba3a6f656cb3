-- one row per input record of the template catalog: name, language, category
-- at updated_at, and the first problem found or null when accepted.
-- Reads: incoming(seq, line, raw, pre_reason).
with objects as (
    select seq, line, raw
    from incoming
    where pre_reason is null and json_valid(raw) and json_type(raw) = 'OBJECT'
),

fields as (
    select
        seq,
        json_transform(raw, '{"name": "VARCHAR", "language": "VARCHAR", "category": "VARCHAR",
            "updated_at": "VARCHAR"}') as field
    from objects
),

typed as (
    select
        seq,
        blank_to_null(field.name) as name,
        coalesce(blank_to_null(field.language), '') as language,
        lower(blank_to_null(field.category)) as category,
        blank_to_null(field.updated_at) as updated_at_text,
        parse_ts(trim(field.updated_at)) as updated_at
    from fields
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
        incoming.seq,
        incoming.line,
        checked.name,
        checked.language,
        checked.category,
        checked.updated_at,
        case
            when incoming.pre_reason is not null then incoming.pre_reason
            when checked.seq is null then 'malformed_json'
            else checked.problem[1]
        end as reason,
        case
            when incoming.pre_reason is not null then null
            when checked.seq is null and json_valid(incoming.raw) then 'not a JSON object'
            when checked.seq is not null then checked.problem[2]
        end as detail,
        incoming.raw
    from incoming
    left join checked using (seq)
)

select * from final
