"""Exports -> the Parquet lake: typed, partitioned by day, deduplicated, with every
rejected record quarantined with its reason (DESIGN.md "Flow").

Idempotent: a record already in the lake is a duplicate and changes nothing;
a partition is rewritten only when its rows change. For messages the latest
status wins (schema.STATUS_RANK); ties keep the row already stored.

Each file is validated into a staged table in the work database (JSON text through
sql/ingest/<dataset>_json.sql, Parquet columns straight from DuckDB's reader; both then
through sql/ingest/<dataset>.sql); consecutive files of one dataset read as JSON text are
validated together, up to STAGE_ROWS records, each row keeping its file and line. Only keys
seen more than once or already in the lake are ranked; every other row goes to its
partition as read (bench/README.md "Ingest").

A Meta webhook log (input dataset meta_webhooks) is read by sql/ingest/meta_webhooks.sql into
two lake datasets at once, messages and meta_tier_updates (schema.INPUT_DATASETS); its counts
are per record: each inbound message, each status, each tier change, each quarantined body,
change or element.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import lake, locking, paths, refdata, schema
from pipeline.readers import (READ_ERRORS, InputError, Position, SourceFile, detect, expand, iter_records,
                              one_line)

SEQ_STRIDE = 10_000_000_000  # seq = file index * stride + line: one ordering over all inputs
# DuckDB's share of memory while ingesting; past it, the work database spills to disk beside
# the lake. Without a limit DuckDB keeps up to 80% of RAM: 9.7 GB for a 2 GB file of
# malformed lines, 1.3 GB with this one (README "Reliability").
WORK_MEMORY_LIMIT = "1GB"
CONTESTED_BUCKET_ROWS = 5_000_000       # staged rows per pass when looking for contested keys

Progress = Callable[[int], None]


@dataclass
class FileCounts:
    path: Path
    dataset: str
    format: str
    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    quarantined: int = 0


@dataclass
class IngestSummary:
    files: list[FileCounts] = field(default_factory=list)
    partitions_written: int = 0
    skipped: int = 0                      # files already ingested unchanged (skip_known)
    quarantine_reasons: dict[str, int] = field(default_factory=dict)

    def total(self, attr: str, dataset: str | None = None) -> int:
        return sum(getattr(f, attr) for f in self.files if dataset is None or f.dataset == dataset)

    @property
    def datasets(self) -> list[str]:
        """The input datasets read (a webhook log is meta_webhooks)."""
        return sorted({f.dataset for f in self.files})

    @property
    def lake_datasets(self) -> list[str]:
        """The lake datasets the inputs are written to."""
        return sorted({name for f in self.files for name in schema.lake_datasets(f.dataset)})


def plan(inputs: list[Path]) -> list[SourceFile]:
    """Every file to read, its format and dataset; InputError before any work."""
    files = expand(inputs)
    if not files:
        raise InputError("no input files found in " + ", ".join(str(p) for p in inputs))
    return [detect(path) for path in files]


def ingest(lake_dir: Path, inputs: list[Path], progress: Progress | None = None,
           skip_known: bool = False) -> IngestSummary:
    """Read every input into the lake; one ingest per lake at a time (locking.Busy).

    With skip_known, files already ingested unchanged (same path, size and
    modification time in the lake's manifest) are not read again: re-reading
    them would change nothing, and a nightly run stays proportional to new files.
    """
    files = expand(inputs)
    if not files:
        raise InputError("no input files found in " + ", ".join(str(p) for p in inputs))
    what = f"an ingest into {lake_dir}"
    with locking.exclusive(lake_dir / lake.LOCK, what, label=what):
        lake.recover(lake_dir)                  # an ingest killed half-way through its commit
        manifest = _read_manifest(lake_dir)
        fresh = [f for f in files if not skip_known or manifest.get(str(f.resolve())) != _fingerprint(f)]
        sources = [detect(path) for path in fresh]
        summary = _ingest(lake_dir, sources, progress) if sources else IngestSummary()
        summary.skipped = len(files) - len(fresh)
        manifest.update({str(source.path.resolve()): _fingerprint(source.path) for source in sources})
        locking.crash_point("ingest.manifest")
        _write_manifest(lake_dir, manifest)
        return summary


MANIFEST = "_ingested.json"


def _fingerprint(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def _read_manifest(lake_dir: Path) -> dict[str, list[int]]:
    path = lake_dir / MANIFEST
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}   # a damaged manifest only costs a re-read: ingest is idempotent
    return value if isinstance(value, dict) else {}


def _write_manifest(lake_dir: Path, manifest: dict[str, list[int]]) -> None:
    lake_dir.mkdir(parents=True, exist_ok=True)
    tmp = lake_dir / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, sort_keys=True, indent=0), encoding="utf-8")
    os.replace(tmp, lake_dir / MANIFEST)


def _ingest(lake_dir: Path, sources: list[SourceFile], progress: Progress | None) -> IngestSummary:
    lake_dir.mkdir(parents=True, exist_ok=True)
    work_path = lake_dir / ".ingest-work.duckdb"
    paths.remove_duckdb(work_path)                   # left by a killed ingest
    con = duckdb.connect(str(work_path))
    try:
        _prepare(con)
        summary = IngestSummary()
        stager = _Stager(con, progress)
        for index, source in enumerate(sources):
            summary.files.append(stager.read(index, source))
        stager.finish()
        _set_aside_rejected(con, summary)
        _count_duplicates(con, lake_dir, sources, summary)
        locking.crash_point("ingest.merge")
        renames: list[tuple[Path, Path]] = []
        for dataset_name in summary.lake_datasets:
            renames += _merge(con, lake_dir, schema.DATASETS[dataset_name])
        renames += _write_quarantine(con, lake_dir)
        lake.commit(lake_dir, renames)                  # every changed lake file, as one change
        summary.partitions_written = len(renames)
        summary.quarantine_reasons = dict(
            con.execute("select reason, count(*) from staged_quarantine group by 1 order by 1").fetchall()
        )
        return summary
    finally:
        con.close()
        paths.remove_duckdb(work_path)


def _prepare(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("set TimeZone = 'UTC'")
    con.execute("set enable_progress_bar = false")
    con.execute("set preserve_insertion_order = true")
    con.execute("set memory_limit = ?", [WORK_MEMORY_LIMIT])
    con.execute((paths.sql_dir() / "ingest" / "_macros.sql").read_text())
    variables = {
        "directions": schema.DIRECTIONS,
        "statuses": schema.STATUSES,
        "template_categories": schema.TEMPLATE_CATEGORIES,
        "referral_sources": schema.REFERRAL_SOURCES,
        "pricing_models": schema.PRICING_MODELS,
        "pricing_types": schema.PRICING_TYPES,
        "pricing_categories": schema.PRICING_CATEGORIES,
        "conversation_statuses": schema.CONVERSATION_STATUSES,
        "ended_reasons": schema.ENDED_REASONS,
        "event_types": schema.EVENT_TYPES,
        "analytics_pricing_types": schema.ANALYTICS_PRICING_TYPES,
        "analytics_pricing_categories": schema.ANALYTICS_PRICING_CATEGORIES,
        "analytics_conversation_types": schema.ANALYTICS_CONVERSATION_TYPES,
        "analytics_conversation_directions": schema.ANALYTICS_CONVERSATION_DIRECTIONS,
    }
    for name, values in variables.items():
        con.execute(f"set variable {name} = ?::varchar[]", [list(values)])
    con.execute("""
        create table staged_quarantine (
            source_file varchar, source_sha256 varchar, line bigint, dataset varchar,
            reason varchar, detail varchar, raw varchar
        )
    """)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# Small files of one dataset are staged together: one validator statement costs ~25 ms
# whatever its rows (a simulated tenant has a file a day), so the records of consecutive
# files of one dataset read as JSON text are held, up to these limits, and staged at once.
# A batch that reaches them (a big file's: readers.BATCH_LINES) is staged as it comes, as before.
STAGE_ROWS = 100_000
STAGE_BYTES = 16 * 1024 * 1024      # of Arrow data held


@dataclass
class _Held:
    """Records of consecutive files of one dataset, read as JSON text and not yet staged:
    files[i] has file index first + i; seq gives each record's file (seq // SEQ_STRIDE)."""
    dataset: str
    first: int
    files: list[str]
    batches: list[pa.RecordBatch] = field(default_factory=list)
    rows: int = 0
    bytes: int = 0
    progress: int = 0               # stored bytes read into it, reported once staged


INCOMING_SCHEMA = pa.schema([("seq", pa.int64()), ("line", pa.int64()), ("raw", pa.string()),
                             ("pre_reason", pa.string())])


class _Stager:
    """Reads each file's records into staged_<dataset>: typed rows, and rejected ones with
    their reason, detail and raw text (set aside into the quarantine after all files).

    A file's rows are staged in its order, after the rows of every file before it, however
    many files one statement takes."""

    def __init__(self, con: duckdb.DuckDBPyConnection, progress: Progress | None) -> None:
        self.con = con
        self.progress = progress
        self.held: _Held | None = None
        self.created: set[str] = set()
        self.files: list[tuple[int, str, str, str]] = []      # staged_files' rows, inserted by finish

    def read(self, index: int, source: SourceFile) -> FileCounts:
        con = self.con
        counts = FileCounts(path=source.path, dataset=source.dataset, format=source.format)
        self.files.append((index, str(source.path), source.dataset, _sha256(source.path)))
        for dataset_name in schema.lake_datasets(source.dataset):
            if dataset_name not in self.created:
                _create_staged(con, schema.DATASETS[dataset_name])
                self.created.add(dataset_name)
        if source.format == "parquet" and source.dataset in schema.INPUT_DATASETS:
            raise InputError(f"{source.path}: a {source.dataset} input is read from JSON, not Parquet")
        held_here = source.dataset != "meta_webhooks"
        if self.held is not None and (not held_here or self.held.dataset != source.dataset):
            self.flush()
        if source.format == "parquet":
            self.flush()
            if _stage_parquet(con, index, source):
                self._report(source.size)
                return counts
        position, reported = Position(), 0
        if held_here:
            self._hold(index, source, None)
        try:
            for batch in iter_records(source, position=position):
                if held_here:
                    self._hold(index, source, batch)
                else:
                    refdata.replace_table(con, "incoming", batch, "? + line as seq, line, raw, pre_reason",
                                          [index * SEQ_STRIDE], temporary=True)
                    _stage_webhooks(con, source)
                self._report(position.bytes - reported)      # in bytes of the file as stored, like the total
                reported = position.bytes
        except InputError:
            raise
        except READ_ERRORS as exc:
            raise InputError(f"{source.path}: cannot read: {one_line(exc)}") from None
        self._report(max(0, source.size - reported))
        return counts

    def _hold(self, index: int, source: SourceFile, batch: pa.RecordBatch | None) -> None:
        """Hold a batch of the file (None: the file starts), staging what is held first when
        the batch would take it past STAGE_ROWS or STAGE_BYTES."""
        held = self.held
        if batch is not None and held is not None and held.rows and (
                held.rows + batch.num_rows > STAGE_ROWS or held.bytes + batch.nbytes > STAGE_BYTES):
            self.flush()
            held = None
        if held is None:
            held = self.held = _Held(dataset=source.dataset, first=index, files=[str(source.path)])
        elif batch is None:
            held.files.append(str(source.path))
        if batch is not None:
            seq = pc.add(batch.column("line"), pa.scalar(index * SEQ_STRIDE, pa.int64()))
            held.batches.append(pa.RecordBatch.from_arrays(
                [seq, batch.column("line"), batch.column("raw"), batch.column("pre_reason")],
                schema=INCOMING_SCHEMA))
            held.rows += batch.num_rows
            held.bytes += batch.nbytes
            if held.rows >= STAGE_ROWS or held.bytes >= STAGE_BYTES:
                self.flush()

    def _report(self, stored_bytes: int) -> None:
        if self.progress is None:
            return
        if self.held is not None:
            self.held.progress += stored_bytes          # reported once its records are staged
        else:
            self.progress(stored_bytes)

    def finish(self) -> None:
        """Stage what is held; make staged_files, every file read (file_index, source_file, dataset,
        source_sha256)."""
        self.flush()
        columns = list(zip(*self.files)) or [(), (), (), ()]
        files = pa.table([pa.array(columns[0], pa.int32()), *(pa.array(c, pa.string()) for c in columns[1:])],
                         names=["file_index", "source_file", "dataset", "source_sha256"])
        refdata.replace_table(self.con, "staged_files", files)

    def flush(self) -> None:
        """Stage the records held (one statement for all their files)."""
        held, self.held = self.held, None
        if held is None:
            return
        if held.batches:
            refdata.replace_table(self.con, "incoming", pa.Table.from_batches(held.batches, INCOMING_SCHEMA),
                                  temporary=True)
            _stage(self.con, held.dataset, _sql_text(f"{held.dataset}_json.sql"), "raw", held.first, held.files)
        if self.progress is not None and held.progress:
            self.progress(held.progress)


def _sql_text(name: str) -> str:
    return (paths.sql_dir() / "ingest" / name).read_text()


def _column_type(field: object) -> str:
    arrow_type = field.type  # type: ignore[attr-defined]
    if arrow_type == schema.UTC_TS:
        return "timestamptz"
    return {"int64": "bigint", "bool": "boolean"}.get(str(arrow_type), "varchar")


def _create_staged(con: duckdb.DuckDBPyConnection, dataset: schema.Dataset) -> None:
    # A table of the work database, not a temporary one: past WORK_MEMORY_LIMIT its rows go
    # to the file compressed, where a temporary table's would spill uncompressed (100M messages:
    # 288 -> 233 s, bench/README.md "Ingest"). The work database is removed after each ingest.
    columns = ", ".join(f"{field.name} {_column_type(field)}" for field in dataset.schema)
    con.execute(f"create table if not exists staged_{dataset.name} (seq bigint, {columns}, "
                "reason varchar, detail varchar, raw varchar, is_contested boolean)")


def _stage(con: duckdb.DuckDBPyConnection, dataset_name: str, records_sql: str, raw: str,
           first: int, files: list[str]) -> None:
    """Insert the validator's rows for `records` (records_sql) into staged_<dataset>.

    `raw` is the SQL that gives a rejected record's text from the records' raw column;
    it runs for rejected records only. The records are of files first, first + 1, ...
    (their paths in `files`), each record's file its seq // SEQ_STRIDE.
    """
    dataset = schema.DATASETS[dataset_name]
    lake_columns = ", ".join(f.name for f in dataset.schema if f.name not in ("source_file", "source_line"))
    validator = _sql_text(f"{dataset_name}.sql")
    con.execute(
        f"""
        insert into staged_{dataset.name} by name
        with records as ({records_sql}),
        validated as ({validator})
        select seq, {lake_columns}, (?::varchar[])[seq // {SEQ_STRIDE} - {first} + 1] as source_file,
            line as source_line, reason, detail,
            case when reason is not null then {raw} end as raw
        from validated
        """,
        [files],
    )


# A webhook log's record seq is (file index) * SEQ_STRIDE + line * WEBHOOK_PLACES + the record's
# place in its body (at most WEBHOOK_PLACES - 1: later ones share it): below the next file's seq
# for files of up to SEQ_STRIDE / WEBHOOK_PLACES lines.
WEBHOOK_PLACES = 100
MAX_WEBHOOK_LINES = SEQ_STRIDE // WEBHOOK_PLACES - 1


def _stage_webhooks(con: duckdb.DuckDBPyConnection, source: SourceFile) -> None:
    """Insert a batch of webhook bodies' records (sql/ingest/meta_webhooks.sql) into
    staged_messages and staged_meta_tier_updates; a rejected body, change or element goes
    with its reason into staged_messages, set aside into the quarantine like any reject."""
    if con.execute("select coalesce(max(line), 0) from incoming").fetchall()[0][0] > MAX_WEBHOOK_LINES:
        raise InputError(f"{source.path}: a webhook log of more than {MAX_WEBHOOK_LINES:,} lines; split it")
    con.execute(f"create or replace temp table webhook_records as {_sql_text('meta_webhooks.sql')}")
    for dataset_name in schema.lake_datasets(source.dataset):
        dataset = schema.DATASETS[dataset_name]
        columns = [f.name for f in dataset.schema if f.name not in ("source_file", "source_line")]
        renamed = {"pricing_category": "tier_pricing_category"} if dataset_name == "meta_tier_updates" else {}
        selected = ", ".join(f"{renamed.get(name, name)} as {name}" for name in columns)
        kept = ("target_dataset = 'messages' or reason is not null" if dataset_name == "messages"
                else f"target_dataset = '{dataset_name}' and reason is null")
        con.execute(f"""
            insert into staged_{dataset_name} by name
            select seq, {selected}, ?::varchar as source_file, line as source_line, reason, detail, raw
            from webhook_records
            where {kept}
        """, [str(source.path)])
    con.execute("drop table webhook_records")


# Parquet: DuckDB reads the file itself. A column already typed as the lake types it
# (integers for ids, timestamps) reaches the validator typed; any other column as the text
# JSON would give it (what messages_json.sql's json_transform makes of the record's JSON).
INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"}
NAIVE_TIMESTAMP_TYPES = {"TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S"}   # UTC by convention
UTC_TIMESTAMP_TYPE = "TIMESTAMP WITH TIME ZONE"
TEXT_LIKE_JSON = INTEGER_TYPES | {"UBIGINT", "BOOLEAN", "DATE", UTC_TIMESTAMP_TYPE}  # cast to varchar = JSON's text
PRICING_FIELDS = ("billable", "pricing_model", "type", "category")


def _stage_parquet(con: duckdb.DuckDBPyConnection, index: int, source: SourceFile) -> bool:
    """Validate a Parquet file straight from DuckDB's reader; False when this file is one the
    columnar path does not take (odd column names, a reader error): the caller then reads it
    record by record, which also gives a damaged file's error in the words it always had."""
    import pyarrow.parquet as pq

    path = "'" + _sql_path(source.path) + "'"
    try:
        described = con.execute(f"describe select * from read_parquet({path})").fetchall()
        arrow_schema = pq.read_schema(source.path)
    except (duckdb.Error, *READ_ERRORS):
        return False
    names = [row[0] for row in described]
    lowered = {name.lower() for name in names}
    if not names or names != arrow_schema.names or len(lowered) != len(names) or "file_row_number" in lowered:
        return False
    types = {row[0]: row[1] for row in described}
    raw = ", ".join(f"{_quote(name)} := {_raw_value(name, types[name])}" for name in names)
    read = (f"select {index * SEQ_STRIDE} + file_row_number + 1 as seq, file_row_number + 1 as line, "
            f"struct_pack({raw}) as raw, null::varchar as pre_reason, null::varchar as pre_detail")
    source_sql = f"from read_parquet({path}, file_row_number = true)"
    if source.dataset == "messages":
        fields = ", ".join(f"{_quote(name)} := {_field_value(name, kind, types.get(name))}"
                           for name, kind in schema.MESSAGE_FIELDS.items())
        pricing = _pricing_value(types.get("pricing"), arrow_schema)
        records = f"{read}, struct_pack({fields}) as field, {pricing} as pricing {source_sql}"
        raw_text = "to_json(raw)::varchar"                 # printed for rejected rows only
    else:
        # The other exports are small: their record text goes through the JSON validator.
        incoming = f"select seq, line, to_json(raw)::varchar as raw, pre_reason from ({read} {source_sql})"
        records = f"with incoming as ({incoming}) select * from ({_sql_text(source.dataset + '_json.sql')})"
        raw_text = "raw"
    try:
        _stage(con, source.dataset, records, raw_text, index, [str(source.path)])
    except duckdb.Error:
        return False              # nothing of the file was staged: the statement is undone whole
    return True


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _raw_value(name: str, duck_type: str) -> str:
    column = _quote(name)
    return f"{column}::timestamptz" if duck_type in NAIVE_TIMESTAMP_TYPES else column


def _text_value(column: str, duck_type: str) -> str:
    if duck_type == "VARCHAR":
        return column
    if duck_type in TEXT_LIKE_JSON:
        return f"{column}::varchar"
    if duck_type in NAIVE_TIMESTAMP_TYPES:
        return f"{column}::timestamptz::varchar"
    if duck_type == '"NULL"':
        return "null::varchar"
    return f"json_transform(to_json({column}), '\"VARCHAR\"')"


def _field_value(name: str, kind: str, duck_type: str | None) -> str:
    if duck_type is None:
        return "null::varchar"                    # a column the file does not have: a missing field
    column = _quote(name)
    if kind == "int" and duck_type in INTEGER_TYPES:
        return f"{column}::bigint"
    if kind == "timestamp" and duck_type == UTC_TIMESTAMP_TYPE:
        return column
    if kind == "timestamp" and duck_type in NAIVE_TIMESTAMP_TYPES:
        return f"{column}::timestamptz"
    return _text_value(column, duck_type)


def _pricing_value(duck_type: str | None, arrow_schema: object) -> str:
    import pyarrow as pa

    if duck_type is None:
        return "pricing_fields(null::json)"
    column = _quote("pricing")
    arrow_type = arrow_schema.field("pricing").type  # type: ignore[attr-defined]
    if pa.types.is_struct(arrow_type):
        children = {arrow_type.field(i).name: arrow_type.field(i).type for i in range(arrow_type.num_fields)}
        if set(children) <= set(PRICING_FIELDS) and all(
                pa.types.is_string(t) or pa.types.is_boolean(t) or pa.types.is_integer(t) for t in children.values()):
            values = ", ".join(
                f"{name} := " + ("null::varchar" if name not in children else
                                 f"{column}.{_quote(name)}" if pa.types.is_string(children[name]) else
                                 f"{column}.{_quote(name)}::varchar")
                for name in PRICING_FIELDS)
            return (f"struct_pack(is_object := true, fields := case when {column} is not null "
                    f"then struct_pack({values}) end)")
    return f"pricing_fields(to_json({column}))"


def _set_aside_rejected(con: duckdb.DuckDBPyConnection, summary: IngestSummary) -> None:
    """Count each file's records and rejects; move the rejects into staged_quarantine."""
    for dataset_name in summary.lake_datasets:
        staged = f"staged_{dataset_name}"
        by_index = {row[0]: row[1:] for row in con.execute(
            f"select seq // {SEQ_STRIDE}, count(*), count(reason) from {staged} group by 1").fetchall()}
        for index, counts in enumerate(summary.files):
            if dataset_name in schema.lake_datasets(counts.dataset) and index in by_index:
                counts.read += by_index[index][0]
                counts.quarantined += by_index[index][1]
        con.execute(f"""
            insert into staged_quarantine
            select files.source_file, files.source_sha256, rejected.source_line, files.dataset,
                rejected.reason, rejected.detail, rejected.raw
            from {staged} as rejected
            join staged_files as files on rejected.seq // {SEQ_STRIDE} = files.file_index
            where rejected.reason is not null
        """)
        con.execute(f"delete from {staged} where reason is not null")


def _table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(con.execute(
        "select count(*) from duckdb_tables() where table_name = ?", [name]
    ).fetchall()[0][0])


def _count_duplicates(con: duckdb.DuckDBPyConnection, lake_dir: Path,
                      sources: list[SourceFile], summary: IngestSummary) -> None:
    """accepted = first sighting of a key not yet in the lake; the rest are duplicates.

    Only contested keys (seen twice, or already in the lake) are ranked: every other
    staged row is the first and only version of its key.
    """
    for dataset_name in summary.lake_datasets:
        dataset = schema.DATASETS[dataset_name]
        _find_contested(con, lake_dir, dataset)
        keys = ", ".join(dataset.key)
        duplicates = dict(con.execute(f"""
            with versions as (
                select
                    seq,
                    row_number() over (partition by {keys} order by seq) = 1 as is_first,
                    lake_keys.is_in_lake
                from staged_{dataset_name}
                semi join contested_{dataset.name} using ({keys})
                left join (select distinct {keys}, true as is_in_lake from lake_versions_{dataset.name}) as lake_keys using ({keys})
            )
            select seq // {SEQ_STRIDE}, count(*) filter (where not is_first or is_in_lake) from versions group by 1
        """).fetchall())
        for index, counts in enumerate(summary.files):
            if dataset_name in schema.lake_datasets(counts.dataset):
                counts.duplicates += duplicates.get(index, 0)
    for counts in summary.files:
        counts.accepted = counts.read - counts.quarantined - counts.duplicates


def _find_contested(con: duckdb.DuckDBPyConnection, lake_dir: Path, dataset: schema.Dataset) -> None:
    """contested_<dataset>: the keys with more than one version (staged twice, or staged and in
    the lake); lake_versions_<dataset>: the files of the lake that hold a staged key. Staged
    rows of contested keys are flagged (is_contested).

    The keys are taken a hash bucket at a time (CONTESTED_BUCKET_ROWS staged rows per
    bucket): a group by or a semi join over 100 million keys at once needs more than
    WORK_MEMORY_LIMIT and DuckDB 2.0 gives up rather than spill it.
    """
    staged = f"staged_{dataset.name}"
    keys = ", ".join(dataset.key)
    key_columns = ", ".join(f"{k} {_key_type(dataset, k)}" for k in dataset.key)
    rows = con.execute(f"select count(*) from {staged}").fetchall()[0][0]
    buckets = max(1, -(-rows // CONTESTED_BUCKET_ROWS))
    def in_bucket(bucket: int) -> str:
        return "true" if buckets == 1 else f"hash({keys}) % {buckets} = {bucket}"
    con.execute(f"create or replace temp table lake_versions_{dataset.name} ({key_columns}, filename varchar)")
    con.execute(f"create or replace temp table contested_{dataset.name} ({key_columns})")
    existing = lake.files(lake_dir, dataset.name)
    for bucket in range(buckets):
        if existing:                # an empty lake has nothing to compare against
            con.execute(f"""
                insert into lake_versions_{dataset.name}
                select {keys}, filename from read_parquet({lake.sql_list(existing)}, filename = true)
                where {in_bucket(bucket)}
                    and ({keys}) in (select ({keys}) from {staged} where {in_bucket(bucket)})
            """)
        con.execute(f"""
            insert into contested_{dataset.name}
            select {keys} from {staged} where {in_bucket(bucket)} group by {keys} having count(*) > 1
        """)
    con.execute(f"""
        insert into contested_{dataset.name}
        select distinct {keys} from lake_versions_{dataset.name}
        except
        select {keys} from contested_{dataset.name}
    """)
    if con.execute(f"select count(*) from contested_{dataset.name}").fetchall()[0][0]:
        con.execute(f"update {staged} set is_contested = true from contested_{dataset.name} "
                    f"where {' and '.join(f'{staged}.{k} = contested_{dataset.name}.{k}' for k in dataset.key)}")


def _key_type(dataset: schema.Dataset, column: str) -> str:
    return _column_type(dataset.schema.field(column))


def _merge(con: duckdb.DuckDBPyConnection, lake_dir: Path,
           dataset: schema.Dataset) -> list[tuple[Path, Path]]:
    """Merge staged rows with the lake; stage a new file for each partition whose rows change.

    Uncontested staged rows (a key seen once, not in the lake) go to their partition as
    they are; a contested key gets one winner from all its versions, old and new. A
    partition is rewritten when it gets a new row, or a winner that differs from the row
    it stores; its file is its old rows less the contested keys, then the new rows, then
    the winners. Returns (staged file, lake file) pairs for lake.commit.
    """
    staged = f"staged_{dataset.name}"
    columns = [f.name for f in dataset.schema]
    column_list = ", ".join(columns)
    keys = ", ".join(dataset.key)
    partition_expr = f"cast({dataset.partition_by} as date)" if dataset.partition_by else "null::date"
    # Versions of contested keys: old ones ordered before every new one (ties keep the stored row).
    old_files = [Path(row[0]) for row in con.execute(
        f"select distinct filename from lake_versions_{dataset.name} order by 1").fetchall()]
    old_versions = (
        f"select {OLD_SEQ} + file_row_number as seq, {column_list} "
        f"from read_parquet({lake.sql_list(old_files)}, file_row_number = true) semi join contested_{dataset.name} using ({keys})"
        if old_files else f"select seq, {column_list} from {staged} limit 0"
    )
    rank = _rank_expr(dataset)
    merged_columns = ",\n".join(_merged_column(dataset, column) for column in columns)
    con.execute(f"""
        create or replace temp table winners_{dataset.name} as
        with versions as (
            select *, {rank} as version_rank from ({old_versions})
            union all by name
            select seq, {column_list}, {rank} as version_rank from {staged} where is_contested
        )
        select seq, {merged_columns}
        from versions
        window latest as (partition by {keys} order by version_rank desc, seq
                          rows between unbounded preceding and unbounded following)
        qualify row_number() over (partition by {keys} order by version_rank desc, seq) = 1
    """)
    old_rows = (f"select {column_list} from ({old_versions})" if old_files
                else f"select {column_list} from winners_{dataset.name} limit 0")
    changed = _changed_partitions(con, dataset, staged, columns, partition_expr, old_rows)
    if not changed:
        return []
    staging_dir = lake.dataset_dir(lake_dir, dataset.name) / lake.STAGING
    shutil.rmtree(staging_dir, ignore_errors=True)
    staging_dir.mkdir(parents=True, exist_ok=True)
    renames = []
    with_winners = {row[0] for row in con.execute(
        f"select distinct {partition_expr} from winners_{dataset.name}").fetchall()}
    for part in changed:
        final = lake.partition_path(lake_dir, dataset, None if part is None else part.isoformat())
        tmp = staging_dir / f"{part or 'all'}.parquet"
        _write_partition(con, dataset, staged, column_list, keys, part, part in with_winners, final, tmp)
        renames.append((tmp, final))
    return renames


OLD_SEQ = -(1 << 62)      # seq of a stored row: before every staged one, in its file's order


def _changed_partitions(con: duckdb.DuckDBPyConnection, dataset: schema.Dataset, staged: str,
                        columns: list[str], partition_expr: str, old_rows: str) -> list:
    """Partitions that get a new row, or a winner that differs from the stored row (on both
    sides when a winner moves to another day)."""
    def at(alias: str) -> str:
        return partition_expr.replace(f"cast({dataset.partition_by} ", f"cast({alias}.{dataset.partition_by} ") \
            if dataset.partition_by else partition_expr

    key_match = " and ".join(f"winner.{k} = old.{k}" for k in dataset.key)
    rows = con.execute(f"""
        with changed_winners as (
            select {at('winner')} as new_partition, {at('old')} as old_partition, old.{dataset.key[0]} is null as is_new
            from winners_{dataset.name} as winner
            left join ({old_rows}) as old on {key_match}
            where old.{dataset.key[0]} is null
                or row({', '.join('winner.' + c for c in columns)}) is distinct from
                   row({', '.join('old.' + c for c in columns)})
        )
        select distinct {partition_expr} from {staged} where is_contested is null
        union
        select new_partition from changed_winners
        union
        select old_partition from changed_winners where not is_new
        order by 1
    """).fetchall()
    return [row[0] for row in rows]


def _write_partition(con: duckdb.DuckDBPyConnection, dataset: schema.Dataset, staged: str, column_list: str,
                     keys: str, part: object, has_winners: bool, final: Path, tmp: Path) -> None:
    """One partition's file: its stored rows less the contested keys, the new rows, the winners.

    A partition made of new rows only is written in staged (input) order without a sort.
    """
    if dataset.partition_by is None:
        in_part = "true"
    else:
        in_part = (f"{dataset.partition_by} >= '{part}'::date::timestamptz "
                   f"and {dataset.partition_by} < ('{part}'::date + 1)::timestamptz")
    new_rows = f"select seq, {column_list} from {staged} where is_contested is null and {in_part}"
    winners = f"select seq, {column_list} from winners_{dataset.name} where {in_part}"
    if not final.is_file() and not has_winners:
        query = f"select {column_list} from {staged} where is_contested is null and {in_part}"
    else:
        parts = [new_rows, winners]
        if final.is_file():
            parts.insert(0, f"select {OLD_SEQ} + file_row_number as seq, {column_list} "
                            f"from read_parquet('{_sql_path(final)}', file_row_number = true) "
                            f"anti join contested_{dataset.name} using ({keys})")
        query = f"select {column_list} from ({' union all '.join(parts)}) order by seq"
    con.execute(f"copy ({query}) to '{_sql_path(tmp)}' (format parquet, compression zstd)")


def _rank_expr(dataset: schema.Dataset) -> str:
    if dataset.name == "messages":
        ranks = " ".join(f"when '{status}' then {rank}" for status, rank in schema.STATUS_RANK.items())
        return f"case status {ranks} else -1 end"
    if dataset.name == "conversations":
        # A later state of the same conversation: ended beats inactive beats active; more messages is later.
        return ("(case status when 'active' then 0 when 'inactive' then 1 when 'ended' then 2 else -1 end) * 1e12"
                " + coalesce(messages_count, 0)")
    if dataset.name == "meta_tier_updates":
        # META_FACTS 2.3: of several webhooks for one tier change, the earliest tier_update_time.
        return "-epoch_us(tier_update_time)"
    return "0"


# The messages rows of a Meta webhook log carry no tenant_id (Meta sends none; an export always
# does: messages.sql requires it), and a status row knows only its own time: a version with a
# null tenant_id is a webhook's. Columns a status does not carry (the platform's
# conversation_id, template_name, a read status's type) come from the best-ranked version that
# has them.
WEBHOOK_VERSION = "tenant_id is null"
FIRST_KNOWN = ("tenant_id", "contact_bsuid", "contact_phone", "contact_name", "template_name",
               "template_category", "referral_source", "conversation_id")


def _merged_column(dataset: schema.Dataset, column: str) -> str:
    if dataset.name == "messages" and column == "sent_at":
        # An export's send time is the best-ranked export version's; statuses alone: the
        # earliest status time (the sent status's, when it came).
        return (f"coalesce(first_value(case when not ({WEBHOOK_VERSION}) then sent_at end ignore nulls) over latest, "
                f"min(sent_at) over latest) as sent_at")
    if dataset.name == "messages" and column == "delivered_at":
        # A delivery seen is a fact: an export's latest; statuses alone: the earliest delivered
        # or read status (a read status comes after the delivery, or with it when Meta sends no
        # delivered status, META_FACTS 3.1).
        return (f"coalesce(max(delivered_at) filter (where not ({WEBHOOK_VERSION})) over latest, "
                f"min(delivered_at) over latest) as delivered_at")
    if dataset.name == "messages" and column == "type":
        # A webhook status without pricing says only 'unknown': a type another version knows wins.
        return ("coalesce(first_value(nullif(type, 'unknown') ignore nulls) over latest, "
                "first_value(type ignore nulls) over latest) as type")
    if dataset.name == "messages" and column in FIRST_KNOWN:
        return f"first_value({column} ignore nulls) over latest as {column}"
    if dataset.name == "messages" and column.startswith("pricing_"):
        return f"first_value({column} ignore nulls) over latest as {column}"
    return column


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def _write_quarantine(con: duckdb.DuckDBPyConnection, lake_dir: Path) -> list[tuple[Path, Path]]:
    renames = []
    shas = [row[0] for row in con.execute(
        "select distinct source_sha256 from staged_quarantine order by 1").fetchall()]
    for sha in shas:
        final = lake.quarantine_path(lake_dir, sha)
        tmp = final.with_name(final.name + ".tmp")
        final.parent.mkdir(parents=True, exist_ok=True)
        con.execute(
            "copy (select distinct * from staged_quarantine where source_sha256 = ? "
            "order by line, reason) "
            f"to '{_sql_path(tmp)}' (format parquet, compression zstd)",
            [sha],
        )
        renames.append((tmp, final))
    return renames
