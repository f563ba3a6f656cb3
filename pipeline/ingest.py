"""Exports -> the Parquet lake: typed, partitioned by day, deduplicated, with every
rejected record quarantined with its reason (DESIGN.md "Flow").

Idempotent: a record already in the lake is a duplicate and changes nothing;
a partition is rewritten only when its rows change. For messages the latest
status wins (schema.STATUS_RANK); ties keep the row already stored.
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

from pipeline import lake, locking, paths, schema
from pipeline.readers import (READ_ERRORS, InputError, Position, SourceFile, detect, expand, iter_records,
                              one_line)

SEQ_STRIDE = 10_000_000_000  # seq = file index * stride + line: one ordering over all inputs
# DuckDB's share of memory while ingesting; past it, the work database spills to disk beside
# the lake. Without a limit DuckDB keeps up to 80% of RAM: 9.7 GB for a 2 GB file of
# malformed lines, 1.3 GB with this one (README "Reliability").
WORK_MEMORY_LIMIT = "1GB"

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
        return sorted({f.dataset for f in self.files})


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
    _remove_work(work_path)                   # left by a killed ingest
    con = duckdb.connect(str(work_path))
    try:
        _prepare(con)
        summary = IngestSummary()
        for index, source in enumerate(sources):
            counts = _read_file(con, index, source, progress)
            summary.files.append(counts)
        _count_duplicates(con, lake_dir, sources, summary)
        locking.crash_point("ingest.merge")
        renames: list[tuple[Path, Path]] = []
        for dataset_name in summary.datasets:
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
        _remove_work(work_path)


def _remove_work(work_path: Path) -> None:
    work_path.unlink(missing_ok=True)
    Path(str(work_path) + ".wal").unlink(missing_ok=True)
    shutil.rmtree(str(work_path) + ".tmp", ignore_errors=True)     # DuckDB's spill files


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
    }
    for name, values in variables.items():
        con.execute(f"set variable {name} = ?::varchar[]", [list(values)])
    con.execute("""
        create table staged_quarantine (
            source_file varchar, source_sha256 varchar, line bigint, dataset varchar,
            reason varchar, detail varchar, raw varchar
        )
    """)
    con.execute("create table staged_files (file_index integer, source_file varchar, dataset varchar)")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_file(con: duckdb.DuckDBPyConnection, index: int, source: SourceFile,
               progress: Progress | None) -> FileCounts:
    dataset = schema.DATASETS[source.dataset]
    counts = FileCounts(path=source.path, dataset=source.dataset, format=source.format)
    validator = (paths.sql_dir() / "ingest" / f"{source.dataset}.sql").read_text()
    sha = _sha256(source.path)
    source_name = str(source.path)
    con.execute("insert into staged_files values (?, ?, ?)", [index, source_name, source.dataset])
    staged = f"staged_{source.dataset}"
    lake_columns = [f.name for f in dataset.schema if f.name not in ("source_file", "source_line")]
    select_columns = ", ".join(lake_columns)
    position, reported = Position(), 0
    try:
        for batch in iter_records(source, position=position):
            con.register("incoming_batch", batch)
            con.execute(
                "create or replace temp table incoming as "
                "select ? + line as seq, line, raw, pre_reason from incoming_batch",
                [index * SEQ_STRIDE],
            )
            con.unregister("incoming_batch")
            con.execute(f"create or replace temp table validated as {validator}")
            if not _table_exists(con, staged):
                con.execute(
                    f"create table {staged} as select seq, {select_columns}, "
                    f"?::varchar as source_file, line as source_line from validated limit 0",
                    [source_name],
                )
            con.execute(
                f"insert into {staged} select seq, {select_columns}, ?, line "
                f"from validated where reason is null",
                [source_name],
            )
            con.execute(
                "insert into staged_quarantine select ?, ?, line, ?, reason, detail, raw "
                "from validated where reason is not null",
                [source_name, sha, source.dataset],
            )
            read, quarantined = con.execute(
                "select count(*), count(*) filter (where reason is not null) from validated"
            ).fetchall()[0]
            counts.read += read
            counts.quarantined += quarantined
            if progress is not None:            # in bytes of the file as stored, like the total
                progress(position.bytes - reported)
                reported = position.bytes
    except InputError:
        raise
    except READ_ERRORS as exc:
        raise InputError(f"{source.path}: cannot read: {one_line(exc)}") from None
    if progress is not None and source.size > reported:
        progress(source.size - reported)
    return counts


def _table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(con.execute(
        "select count(*) from duckdb_tables() where table_name = ?", [name]
    ).fetchall()[0][0])


def _key_sql(dataset: schema.Dataset, alias: str) -> str:
    return ", ".join(f"{alias}.{column}" for column in dataset.key)


def _count_duplicates(con: duckdb.DuckDBPyConnection, lake_dir: Path,
                      sources: list[SourceFile], summary: IngestSummary) -> None:
    """accepted = first sighting of a key not yet in the lake; the rest are duplicates."""
    for dataset_name in summary.datasets:
        dataset = schema.DATASETS[dataset_name]
        staged = f"staged_{dataset_name}"
        if not _table_exists(con, staged):
            continue
        keys = ", ".join(dataset.key)
        existing = lake.files(lake_dir, dataset_name)
        con.execute(f"create or replace temp table lake_keys ({', '.join(f'{k} {_key_type(dataset, k)}' for k in dataset.key)})")
        if existing:
            con.execute(
                f"insert into lake_keys select distinct {keys} from read_parquet({lake.sql_list(existing)}) "
                f"where ({keys}) in (select ({keys}) from {staged})"
            )
        rows = con.execute(f"""
            with firsts as (
                select seq // {SEQ_STRIDE} as file_index,
                    row_number() over (partition by {keys} order by seq) = 1 as is_first,
                    exists (select 1 from lake_keys where {' and '.join(f'lake_keys.{k} = s.{k}' for k in dataset.key)}) as in_lake
                from {staged} as s
            )
            select file_index, count(*) filter (where is_first and not in_lake), count(*) filter (where not is_first or in_lake)
            from firsts group by 1
        """).fetchall()
        by_index = {row[0]: row for row in rows}
        for index, counts in enumerate(summary.files):
            if counts.dataset == dataset_name and index in by_index:
                counts.accepted = by_index[index][1]
                counts.duplicates = by_index[index][2]


def _key_type(dataset: schema.Dataset, column: str) -> str:
    arrow_type = dataset.schema.field(column).type
    if arrow_type == schema.UTC_TS:
        return "timestamptz"
    return "bigint" if str(arrow_type) == "int64" else "varchar"


def _merge(con: duckdb.DuckDBPyConnection, lake_dir: Path,
           dataset: schema.Dataset) -> list[tuple[Path, Path]]:
    """Merge staged rows with the lake; stage a new file for each partition whose rows change.

    Returns (staged file, lake file) pairs for lake.commit.
    """
    staged = f"staged_{dataset.name}"
    if not _table_exists(con, staged) or not con.execute(f"select count(*) from {staged}").fetchall()[0][0]:
        return []
    columns = [f.name for f in dataset.schema]
    column_list = ", ".join(columns)
    keys = ", ".join(dataset.key)
    partition_expr = (
        f"strftime(cast({dataset.partition_by} as date), '%Y-%m-%d')" if dataset.partition_by else "'all'"
    )
    existing = lake.files(lake_dir, dataset.name)
    con.execute(f"create or replace temp table old_rows as select -1::bigint as seq, {column_list}, "
                f"''::varchar as partition from {staged} limit 0")
    if existing:
        files_sql = lake.sql_list(existing)
        # Partitions to revisit: those of the new rows, and those holding older versions of their keys.
        con.execute(f"""
            create or replace temp table touched_files as
            select distinct filename from read_parquet({files_sql}, filename = true)
            where ({keys}) in (select ({keys}) from {staged})
        """)
        new_partitions = [row[0] for row in con.execute(f"select distinct {partition_expr} from {staged}").fetchall()]
        touched = {Path(row[0]) for row in con.execute("select filename from touched_files").fetchall()}
        touched |= {p for p in (lake.partition_path(lake_dir, dataset, part) for part in new_partitions) if p.is_file()}
        if touched:
            con.execute(f"""
                insert into old_rows
                select -1, {column_list}, {partition_expr}
                from read_parquet({lake.sql_list(sorted(touched))})
            """)
    rank = _rank_expr(dataset)
    merged_columns = ",\n".join(_merged_column(dataset, column) for column in columns)
    key_match = " and ".join(f"merged.{k} is not distinct from old.{k}" for k in dataset.key)
    con.execute(f"""
        create or replace temp table candidates as
        select seq, {column_list}, {rank} as version_rank from old_rows
        union all by name
        select seq, {column_list}, {rank} as version_rank from {staged}
    """)
    # Only keys seen more than once need a winner; the rest pass straight through.
    con.execute(f"create or replace temp table contested as "
                f"select {keys} from candidates group by {keys} having count(*) > 1")
    con.execute(f"""
        create or replace temp table merged as
        select {column_list}, {partition_expr} as partition, seq >= 0 as is_changed
        from candidates anti join contested using ({keys})
        union all by name
        select {merged_columns}, {partition_expr} as partition, null::boolean as is_changed
        from candidates semi join contested using ({keys})
        window latest as (partition by {keys} order by version_rank desc, seq
                          rows between unbounded preceding and unbounded following)
        qualify row_number() over (partition by {keys} order by version_rank desc, seq) = 1
    """)
    # A contested key changes the lake when its merged row differs from the stored one.
    columns_struct = ", ".join(f"{{alias}}.{c}" for c in columns)
    con.execute(f"""
        create or replace temp table changed_partitions as
        with contested_rows as (
            select
                merged.partition as new_partition,
                old.partition as old_partition,
                old.seq is null
                    or row({columns_struct.format(alias="merged")}) is distinct from
                       row({columns_struct.format(alias="old")}) as is_changed
            from merged
            left join old_rows as old on {key_match}
            where merged.is_changed is null
        )
        select partition from merged where is_changed
        union
        select new_partition from contested_rows where is_changed
        union
        select old_partition from contested_rows where is_changed and old_partition is not null
    """)
    changed = [row[0] for row in con.execute("select partition from changed_partitions order by 1").fetchall()]
    if not changed:
        return []
    staging_dir = lake.dataset_dir(lake_dir, dataset.name) / lake.STAGING
    shutil.rmtree(staging_dir, ignore_errors=True)
    staging_dir.parent.mkdir(parents=True, exist_ok=True)
    con.execute(f"""
        copy (
            select {column_list}, partition from merged
            where partition in (select partition from changed_partitions)
            order by partition, {keys}
        ) to '{_sql_path(staging_dir)}'
        (format parquet, compression zstd, partition_by (partition), write_partition_columns false)
    """)
    renames = []
    for part in changed:
        written = sorted((staging_dir / f"partition={part}").glob("*.parquet"))
        if len(written) != 1:
            raise RuntimeError(f"expected one Parquet file for partition {part}, DuckDB wrote {len(written)}")
        renames.append((written[0], lake.partition_path(lake_dir, dataset, None if part == "all" else part)))
    return renames


def _rank_expr(dataset: schema.Dataset) -> str:
    if dataset.name == "messages":
        ranks = " ".join(f"when '{status}' then {rank}" for status, rank in schema.STATUS_RANK.items())
        return f"case status {ranks} else -1 end"
    if dataset.name == "conversations":
        # A later state of the same conversation: ended beats inactive beats active; more messages is later.
        return ("(case status when 'active' then 0 when 'inactive' then 1 when 'ended' then 2 else -1 end) * 1e12"
                " + coalesce(messages_count, 0)")
    return "0"


def _merged_column(dataset: schema.Dataset, column: str) -> str:
    if dataset.name == "messages" and column == "delivered_at":
        return "max(delivered_at) over latest as delivered_at"  # a delivery seen is a fact
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
