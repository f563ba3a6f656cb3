-- Parsing helpers shared by the ingest validators. Each returns null when the
-- value cannot be read, so a validator can tell "missing" from "unreadable".

-- ISO 8601 with an offset (Z or z, +05:30, +0530, +05) or Unix seconds; a timestamp
-- without an offset is ambiguous and rejected. Years outside 2000..2099 are
-- rejected too (milliseconds passed as seconds land there). DuckDB's cast reads
-- only an upper-case Z (RFC 3339 allows both), hence upper().
create or replace temp macro parse_ts_any(value) as
    case
        when regexp_full_match(value, '-?[0-9]{1,11}(\.[0-9]+)?') then to_timestamp(cast(value as double))
        when regexp_full_match(
            value,
            '[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)'
        ) then try_cast(upper(value) as timestamptz)
    end;

-- parse_ts, parse_int and is_present take a field as text (JSON, CSV) or as the type a
-- Parquet column already has (timestamptz, bigint): typeof() is a constant, so DuckDB
-- keeps only the branch for the field's type and a typed column is not printed and re-read.
create or replace temp macro parse_ts(value) as
    case
        when typeof(value) = 'TIMESTAMP WITH TIME ZONE' then
            case when year(value::timestamptz) between 2000 and 2099 then value::timestamptz end
        else
            case when year(parse_ts_any(trim(value::varchar))) between 2000 and 2099
                then parse_ts_any(trim(value::varchar)) end
    end;

-- An integer id or count written as a JSON number or a string of digits (at most 18 of
-- them, typed or not: a 19-digit id is a bad value whichever way a file stores it).
create or replace temp macro parse_int(value) as
    case
        when typeof(value) = 'BIGINT' then
            case when abs(value::bigint) <= 999999999999999999 then value::bigint end
        when regexp_full_match(trim(value::varchar), '-?[0-9]{1,18}') then cast(trim(value::varchar) as bigint)
    end;

-- A field is there: not null, and not blank when it is text.
create or replace temp macro is_present(value) as
    case
        when typeof(value) = 'VARCHAR' then coalesce(trim(value::varchar) <> '', false)
        else value is not null
    end;

-- E.164: a leading + is optional; spaces, dots, dashes and brackets are dropped.
create or replace temp macro phone_digits(value) as regexp_replace(value, '[ .()\-]', '', 'g');

create or replace temp macro parse_phone(value) as
    case
        when regexp_full_match(value, '\+?[1-9][0-9]{6,14}') then '+' || ltrim(value, '+')   -- nothing to clean
        when regexp_full_match(phone_digits(value), '\+?[1-9][0-9]{6,14}')
            then '+' || ltrim(phone_digits(value), '+')
    end;

-- DOMAIN R2: ISO country, a dot, up to 128 alphanumerics.
create or replace temp macro parse_bsuid(value) as
    case when regexp_full_match(value, '[A-Z]{2}\.[A-Za-z0-9]{1,128}') then value end;

create or replace temp macro parse_bool(value) as
    case lower(value) when 'true' then true when 'false' then false end;

create or replace temp macro blank_to_null(value) as nullif(trim(value), '');

-- Meta's pricing object {billable, pricing_model, type, category} as VARCHAR fields, from
-- a JSON value; is_object is false when a value is there but is not an object (a
-- validator's bad_value pricing). A JSON null is no pricing, not a bad one.
create or replace temp macro pricing_object_fields(pricing) as
    struct_pack(
        is_object := coalesce(json_type(pricing) = 'OBJECT', true),
        fields := case when json_type(pricing) = 'OBJECT'
            then json_transform(pricing, '{"billable": "VARCHAR", "pricing_model": "VARCHAR",
                "type": "VARCHAR", "category": "VARCHAR"}') end
    );

-- The same from JSON that may hold the object as JSON text (a CSV cell, a Parquet string
-- column, a double-encoded JSONL field): the text is read as the object it holds.
create or replace temp macro pricing_fields(pricing) as
    pricing_object_fields(
        case
            when json_type(pricing) = 'VARCHAR' and json_valid(pricing ->> '$') then (pricing ->> '$')::json
            else pricing
        end
    );

-- Meta's pricing object (DOMAIN R27; a messages export's `pricing`, a status webhook's
-- `.pricing`), from pricing_fields()/pricing_object_fields(), as the lake's columns and
-- what the quarantine checks (pricing_not_object, billable_text): one definition for
-- every format. `select unnest(pricing_values(pricing))` gives them as columns.
create or replace temp macro pricing_values(pricing) as
    struct_pack(
        pricing_not_object := not pricing.is_object,
        billable_text := pricing.fields.billable,
        pricing_billable := parse_bool(trim(pricing.fields.billable)),
        pricing_model := upper(blank_to_null(pricing.fields.pricing_model)),
        pricing_type := lower(blank_to_null(pricing.fields.type)),
        pricing_category := lower(blank_to_null(pricing.fields.category))
    );

-- The records of a batch read as JSON text (incoming: seq, line, raw, pre_reason), with
-- is_object and why one is no record at all: pre_reason (the reader's, else
-- malformed_json) and pre_detail. Every <dataset>_json.sql starts from it.
-- A table macro is bound when created: an empty incoming stands in until the first batch.
create temp table if not exists incoming (seq bigint, line bigint, raw varchar, pre_reason varchar);
create or replace temp macro json_records() as table
    select
        seq,
        line,
        raw,
        is_object,
        coalesce(pre_reason, case when not is_object then 'malformed_json' end) as pre_reason,
        case when pre_reason is null and not is_object and json_valid(raw) then 'not a JSON object' end
            as pre_detail
    from (
        select
            *,
            case when pre_reason is null and json_valid(raw) then json_type(raw) = 'OBJECT' else false end
                as is_object
        from incoming
    );

-- Meta's analytics data points (pricing_analytics, conversation_analytics): the granularity
-- a request asked for, told by the length of a point's period (a local day lasts 23 to 25
-- hours; a month, or a request's window cut short, longer).
create or replace temp macro analytics_granularity(start_at, end_at) as
    case
        when epoch(end_at) - epoch(start_at) <= 1800 then 'HALF_HOUR'
        when epoch(end_at) - epoch(start_at) <= 90000 then 'DAILY'
        else 'MONTHLY'
    end;
