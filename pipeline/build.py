"""Lake -> warehouse: run the SQL models of sql/ into a new DuckDB file.

Models are files: sql/staging/*.sql become temporary views (they only rename and
cast), sql/intermediate/*.sql and sql/marts/*.sql become tables named after the
file. Each file is one select; the order comes from the names a model mentions.
Then sql/macros/*.sql are run as they are (macros stored in the warehouse for
notebooks), and each sql/summaries/*.sql, a select of one text column `line`,
adds its lines to the build's output.
The warehouse is built under a temporary name and renamed into place, so a
reader sees the previous warehouse or the new one, never half of one.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from pipeline import incremental as incremental_builds
from pipeline import business_hours, config, lake, locking, markets, models, paths, policy, pricing, schema
from pipeline.config import Settings
from pipeline.errors import BuildError  # noqa: F401  (importable from here, as before)
from pipeline.models import Model, discover

@dataclass
class BuildSummary:
    warehouse: Path
    as_of: datetime | None
    tables: dict[str, int] = field(default_factory=dict)
    checks: list[str] = field(default_factory=list)   # lines from sql/summaries
    notes: list[str] = field(default_factory=list)
    shards: int = 1


ENGINES = ("duckdb", "spark")


def build(settings: Settings, as_of: datetime | None = None,
          on_model: Callable[[Model], None] | None = None, incremental: bool = False,
          on_step: Callable[[str], None] | None = None, engine: str = "duckdb",
          spark_master: str | None = None) -> BuildSummary:
    """Build the warehouse; one build per warehouse at a time, never beside an ingest (locking.Busy).

    incremental=True starts from the last warehouse and recomputes only the contacts
    that changed (pipeline/incremental.py), or builds in full and says why in the notes.
    on_model is told of each model once; on_step of every step as it starts, in words
    ("per-thread stage, shard 2 of 7: messages"), for progress on the command line.
    engine="spark" runs a full build's per-thread stage as one Spark task per shard
    (pipeline/spark.py, on spark_master, default local[*]); the rest runs here as always.

    The models read the lake all through the build, so the build holds the lake's
    lock: an ingest renaming partitions half-way would give tables of two lake states.
    """
    if engine not in ENGINES:
        raise BuildError(f"unknown engine {engine!r} (one of {', '.join(ENGINES)})")
    if engine == "spark":                       # a missing pyspark or Java is said before any work
        from pipeline import spark
        spark.check_runtime()
    target = settings.warehouse
    target.parent.mkdir(parents=True, exist_ok=True)
    with locking.exclusive(target.with_name(target.name + ".lock"), f"a build of {target}"), lake_lock(settings):
        lake.recover(settings.lake)             # an ingest killed half-way through its commit
        return _build(settings, target, as_of, on_model, incremental, on_step, engine, spark_master)


def lake_lock(settings: Settings) -> AbstractContextManager[None]:
    """The lake's lock, held while a build reads the lake."""
    what = f"a build of {settings.warehouse}"
    return locking.exclusive(settings.lake / lake.LOCK, what, label=what)


def _build(settings: Settings, target: Path, as_of: datetime | None,
           on_model: Callable[[Model], None] | None, incremental: bool,
           on_step: Callable[[str], None] | None = None, engine: str = "duckdb",
           spark_master: str | None = None) -> BuildSummary:
    building = target.with_name(target.name + ".building")
    paths.remove_duckdb(building)
    why_full = incremental_builds.copy_previous(target, building) if incremental else None
    if incremental and why_full is None and settings.build.keep_steps:
        why_full = "[build] keep_steps is set (the steps are kept by full builds only)"
        paths.remove_duckdb(building)
    con = duckdb.connect(str(building))
    try:
        effective_as_of = _prepare(con, settings, as_of)
        summary = BuildSummary(warehouse=target, as_of=effective_as_of)
        plan = None
        if incremental and why_full is None:
            started = incremental_builds.start(con, settings, as_of=effective_as_of)
            if isinstance(started, str):
                why_full = started
                con.close()
                paths.remove_duckdb(building)
                con = duckdb.connect(str(building))
                _prepare(con, settings, as_of)
            else:
                plan = started
        if incremental and plan is None:
            summary.notes.append(f"full build: {why_full}")
        found = discover()
        if settings.build.keep_steps:
            found = [replace(model, keep="table") for model in found]
        stages = models.stages(found)
        run = _Runner(con, on_model, on_step)
        run.stage = "cross-thread stage"
        for model in stages.before:
            run(model)
        if plan is not None:
            incremental_builds.select_contacts(con, plan)
            run.stage = "per-thread stage, the contacts that changed"
            _per_thread(con, stages.per_thread, run, [incremental_builds.SELECTED], plan)
            if engine == "spark":
                summary.notes.append("engine spark: an incremental build's changed contacts ran in DuckDB")
        else:
            summary.shards = shard_count(con, settings)
            if engine == "spark":
                from pipeline import spark
                summary.shards = spark.per_thread(con, settings, effective_as_of, stages.per_thread, run,
                                                  building.with_name(building.name + ".spark"), spark_master,
                                                  summary)
            elif summary.shards == 1:
                run.stage = "per-thread stage"
                released = models.releases(stages.per_thread)
                for index, model in enumerate(stages.per_thread):
                    run(model)
                    for step in released.get(index, []):
                        con.execute(f"drop table {models.quoted(step.name)}")
            else:
                selections = [f"hash(tenant_id, contact_key) % {summary.shards} = {shard}"
                              for shard in range(summary.shards)]
                _per_thread(con, stages.per_thread, run, selections, None,
                            split=building.with_name(building.name + ".shards"))
        run.stage = "cross-thread stage" if plan is None else "cross-thread stage (monthly models from the first changed month)"
        for model in stages.after:
            if plan is not None and model.kind == "monthly":
                run(model, lambda: incremental_builds.run_month_model(con, plan, model))
            else:
                run(model)
        for model in (*stages.per_thread, *stages.after):
            if model.layer == "marts":
                summary.tables[model.name] = con.execute(f"select count(*) from {models.quoted(model.name)}").fetchall()[0][0]
        if plan is not None:
            incremental_builds.finish(con)
            summary.notes.append(
                f"incremental build: {plan.affected_threads:,} of {plan.total_threads:,} threads rebuilt "
                f"({plan.changed_partitions} message partition(s) new or changed); billing months "
                + ("unchanged" if plan.first_month is None else f"from {plan.first_month:%Y-%m} recomputed")
            )
        for path in sorted((paths.sql_dir() / "macros").glob("*.sql")):
            con.execute(path.read_text(encoding="utf-8"))
        for path in sorted((paths.sql_dir() / "summaries").glob("*.sql")):
            body = path.read_text(encoding="utf-8").strip().rstrip(";")
            summary.checks.extend(row[0] for row in con.execute(f"select line from ({body})").fetchall())
        unconfigured = con.execute(
            "select count(distinct phone_number_id) from messages where not is_configured_number"
        ).fetchall()[0][0]
        if unconfigured:
            summary.notes.append(
                f"{unconfigured} phone_number_id(s) in the data are not in convo.toml: "
                "their days are cut in UTC until you add them"
            )
        for model in stages.before:              # views of the lake: they end with this build
            if model.kind == "staging":
                con.execute(f"drop view if exists {models.quoted(model.name)}")
        incremental_builds.record(con, settings, "full" if plan is None else "incremental",
                                  None if plan is None else plan.affected_threads, summary.shards)
        con.execute("checkpoint")
    except BaseException:
        con.close()
        paths.remove_duckdb(building)
        raise
    con.close()
    paths.remove_duckdb_spill(building)
    # A stale write-ahead log beside the old file must not be replayed onto the new one.
    Path(str(target) + ".wal").unlink(missing_ok=True)
    locking.crash_point("build.replace")
    os.replace(building, target)
    return summary


class _Runner:
    """Runs one model (or a step standing for it) with the build's progress and errors."""

    def __init__(self, con: duckdb.DuckDBPyConnection, on_model: Callable[[Model], None] | None,
                 on_step: Callable[[str], None] | None = None) -> None:
        self.con = con
        self.on_model = on_model
        self.on_step = on_step
        self.stage = ""

    def __call__(self, model: Model, step: Callable[[], None] | None = None, announce: bool = True) -> None:
        if announce and self.on_model is not None:
            self.on_model(model)
        if self.on_step is not None:
            self.on_step(f"{self.stage}: {model.name}")
        locking.crash_point("build.model")
        try:
            if step is None:
                _run(self.con, model)
            else:
                step()
        except duckdb.OutOfMemoryException as exc:
            first = str(exc).strip().splitlines()[0]
            raise BuildError(f"model {model.name}: DuckDB ran out of memory ({first}); the last "
                             "warehouse is left as it was (a larger [build] memory_limit or more "
                             "[build] shards in convo.toml may help)") from None


SHARD = "shard"     # the in-memory catalog a subset of contacts is computed in


def _per_thread(con: duckdb.DuckDBPyConnection, per_thread: list[Model], run: _Runner,
                selections: list[str], plan: incremental_builds.Plan | None, split: Path | None = None) -> None:
    """Run the per-thread stage once per subset of contacts (DESIGN "Sort once", shards).

    A selection is a predicate on (tenant_id, contact_key). Each subset's models run in
    an in-memory catalog put first on the search path, where the relations they read
    that hold many threads' rows (shard_by) are views cut to the subset; the kept
    tables' rows then go to the warehouse (an incremental night first deletes the
    subset's old rows, and notes which billing months changed).

    With `split` (a full build's shards), the staged messages are cut into one Parquet
    folder per shard there in one pass first, and each shard reads only its own: the
    lake is read once, not once per shard and reader (3 x 7 times at 100M messages).
    """
    database = con.execute("select current_database()").fetchall()[0][0]
    main = f'"{database}".main'
    inputs = {name for model in per_thread for name in model.reads}
    by_name = {model.name: model for model in discover()}      # the relations the stage reads
    shard_inputs = [by_name[name] for name in sorted(inputs) if by_name[name].shard_by]
    kept = [model for model in per_thread if not model.is_temp]
    released = models.releases(per_thread)
    stage = run.stage
    if split is not None:
        shutil.rmtree(split, ignore_errors=True)
        split.mkdir(parents=True)
        for model in shard_inputs:
            if model.shard_by == "contact_fields":
                run.stage = "per-thread stage, cutting the staged messages into shards"
                locking.crash_point("build.model")
                con.execute(f"copy (select *, hash(tenant_id, contact_key) % {len(selections)} as shard_number "
                            f"from ({_cut(model, main, 'true', keep_key=True)})) to '{split / model.name}' "
                            "(format parquet, partition_by (shard_number))")
    con.execute(f"attach ':memory:' as {SHARD}")
    try:
        for index, selection in enumerate(selections):
            if len(selections) > 1:
                run.stage = f"per-thread stage, shard {index + 1} of {len(selections)}"
            for model in shard_inputs:
                cut = _cut(model, main, selection)
                if split is not None and model.shard_by == "contact_fields":
                    files = split / model.name / f"shard_number={index}"
                    cut = (f"select * exclude (contact_key) from read_parquet('{files}/*.parquet', hive_partitioning = false)"
                           if files.is_dir()
                           else f"select * from ({cut}) where false")
                con.execute(f"create or replace view {SHARD}.main.{models.quoted(model.name)} as {cut}")
            con.execute(f"set search_path = '{SHARD}.main,{main}'")
            try:
                for position, model in enumerate(per_thread):
                    run(model, announce=index == 0)
                    for step in released.get(position, []):
                        con.execute(f"drop table temp.main.{models.quoted(step.name)}")
            finally:
                con.execute("reset search_path")
            for model in kept:
                name = models.quoted(model.name)
                if plan is not None:
                    incremental_builds.replace_rows(con, plan, model, f"{SHARD}.main.{name}")
                elif index == 0:
                    con.execute(f"create or replace table {main}.{name} as select * from {SHARD}.main.{name}")
                else:
                    con.execute(f"insert into {main}.{name} select * from {SHARD}.main.{name}")
            for model in per_thread:
                con.execute(f"drop table if exists {'temp.main' if model.is_temp else SHARD + '.main'}."
                            f"{models.quoted(model.name)}")
    finally:
        run.stage = stage
        con.execute(f"detach {SHARD}")
        if split is not None:
            shutil.rmtree(split, ignore_errors=True)


@dataclass(frozen=True)
class ShardTask:
    """One shard of the per-thread stage, run apart from the build (a Spark task, pipeline/spark.py).

    Everything the task needs travels with it: the settings (reference tables and
    variables are rebuilt from them, never from the lake), the per-thread models as the
    build found them, and where cut_inputs wrote the inputs and the outputs go.
    """
    settings: Settings
    as_of: datetime | None
    models: tuple[Model, ...]                         # the per-thread stage, in order
    inputs: Path                                      # cut_inputs' folder
    columns: dict[str, tuple[tuple[str, str], ...]]   # per input: its (column, DuckDB type)s
    sharded: frozenset[str]                           # the inputs cut by shard (shard_number=i folders)
    shard: int
    out: Path                                         # <out>/<table>/shard=<i>.parquet
    memory_limit: str | None = None
    threads: int | None = None


def cut_inputs(con: duckdb.DuckDBPyConnection, per_thread: list[Model], count: int,
               folder: Path) -> tuple[dict[str, tuple[tuple[str, str], ...]], frozenset[str]]:
    """Write what the per-thread stage reads from the warehouse as Parquet under folder.

    The relations holding many threads' rows (shard_by) are cut by thread hash into
    folder/<name>/shard_number=<i>/ in one pass each, as the DuckDB engine's split does;
    the others (calendars, contact keys, templates) are written whole. Returns each
    input's columns and types and the names of the cut ones.
    """
    database = con.execute("select current_database()").fetchall()[0][0]
    main = f'"{database}".main'
    own = {model.name for model in per_thread}
    by_name = {model.name: model for model in discover()}
    names = sorted({name for model in per_thread for name in model.reads} - own)
    columns: dict[str, tuple[tuple[str, str], ...]] = {}
    sharded = set()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name in names:
        model = by_name[name]
        columns[name] = tuple((row[0], row[1]) for row in con.execute(
            f"describe select * from {main}.{models.quoted(name)}").fetchall())
        if model.shard_by:
            sharded.add(name)
            selected = _cut(model, main, "true", keep_key=True)
            con.execute(f"copy (select *, hash(tenant_id, contact_key) % {count} as shard_number from ({selected})) "
                        f"to '{folder / name}' (format parquet, partition_by (shard_number))")
        else:
            con.execute(f"copy (select * from {main}.{models.quoted(name)}) to '{folder / name}.parquet' "
                        "(format parquet)")
    return columns, frozenset(sharded)


def run_shard(task: ShardTask) -> dict[str, tuple[int, tuple[tuple[str, str], ...]]]:
    """Run the per-thread models for one shard's Parquet input into Parquet outputs.

    In a fresh in-memory DuckDB (spilling to a local temporary folder): the reference
    tables and variables from the settings, a typed view per input (this shard's rows
    of the cut ones), then every per-thread model in order, each step dropped after its
    last reader as in the build. Each kept table goes to
    <out>/<table>/shard=<shard>.parquet. Returns per kept table its rows and columns.
    """
    import tempfile

    scratch = Path(tempfile.mkdtemp(prefix=f"convo-shard-{task.shard}-"))
    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        con.execute("set enable_progress_bar = false")
        con.execute(f"set temp_directory = '{scratch}'")
        con.execute("set memory_limit = ?", [task.memory_limit or task.settings.build.memory_limit
                                             or config.default_memory_limit()])
        if task.threads:
            con.execute(f"set threads = {int(task.threads)}")
        _references(con, task.settings, task.as_of)
        for name, columns in task.columns.items():
            files = task.inputs / name / f"shard_number={task.shard}" if name in task.sharded else None
            if files is not None and not files.is_dir():      # no thread of this shard
                typed = ", ".join(f"cast(null as {kind}) as {_column(column)}" for column, kind in columns)
                con.execute(f"create view {models.quoted(name)} as select {typed} where false")
                continue
            typed = ", ".join(f"cast({_column(column)} as {kind}) as {_column(column)}" for column, kind in columns)
            source = (f"read_parquet('{task.inputs / name}.parquet')" if files is None
                      else f"read_parquet('{files}/*.parquet', hive_partitioning = false)")
            con.execute(f"create view {models.quoted(name)} as select {typed} from {source}")
        run = _Runner(con, None, None)
        released = models.releases(list(task.models))
        for position, model in enumerate(task.models):
            run(model)
            for step in released.get(position, []):
                con.execute(f"drop table temp.main.{models.quoted(step.name)}")
        found: dict[str, tuple[int, tuple[tuple[str, str], ...]]] = {}
        for model in task.models:
            if model.is_temp:
                continue
            name = models.quoted(model.name)
            target = task.out / model.name / f"shard={task.shard}.parquet"
            target.parent.mkdir(parents=True, exist_ok=True)
            con.execute(f"copy {name} to '{target}' (format parquet)")
            rows = con.execute(f"select count(*) from {name}").fetchall()[0][0]
            found[model.name] = (rows, tuple((row[0], row[1]) for row in con.execute(f"describe {name}").fetchall()))
        return found
    finally:
        con.close()
        shutil.rmtree(scratch, ignore_errors=True)


def _column(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _cut(model: Model, main: str, selection: str, keep_key: bool = False) -> str:
    """A select of the model's rows whose contact is in the selection."""
    name = models.quoted(model.name)
    if model.shard_by == "contact_key":
        return f"select * from {main}.{name} where {selection}"
    # contact_fields: the contact key of DOMAIN R2 (the bsuid, else the one paired with the phone, else the phone)
    return (f"select * {'' if keep_key else 'exclude (contact_key) '}from (select rows.*, coalesce(rows.contact_bsuid, "
            f"keys.contact_bsuid, rows.contact_phone) as contact_key from {main}.{name} as rows left join "
            f"{main}.int_contact_keys as keys on keys.tenant_id = rows.tenant_id and keys.contact_phone = "
            f"rows.contact_phone) where {selection}")


# Working memory a message takes in the per-thread stage (sorts, windows, joins), measured
# at 10M messages; a shard is sized so its messages fit the build's memory limit.
PER_THREAD_BYTES_PER_MESSAGE = 450


def shard_count(con: duckdb.DuckDBPyConnection, settings: Settings) -> int:
    """[build] shards, else as many as keep each shard's messages within the memory limit."""
    if settings.build.shards:
        return settings.build.shards
    messages = con.execute("select count(*) from lake_messages").fetchall()[0][0]
    limit = con.execute("select current_setting('memory_limit')").fetchall()[0][0]
    limit_bytes = _bytes(limit)
    return max(1, -(-messages * PER_THREAD_BYTES_PER_MESSAGE // limit_bytes))


def _bytes(size: str) -> int:
    number, unit = size.split()
    scale = {"bytes": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40,
             "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}[unit]
    return int(float(number) * scale)


def _prepare(con: duckdb.DuckDBPyConnection, settings: Settings, as_of: datetime | None) -> datetime | None:
    """Settings, reference tables, lake views and variables: what every model may read."""
    con.execute("set TimeZone = 'UTC'")
    con.execute("set enable_progress_bar = false")
    # Past the limit DuckDB spills to <warehouse>.building.tmp (removed after the build).
    con.execute("set memory_limit = ?", [settings.build.memory_limit or config.default_memory_limit()])
    _register_lake(con, settings.lake)
    effective_as_of = as_of or con.execute("select max(sent_at) from lake_messages").fetchall()[0][0]
    _references(con, settings, effective_as_of)
    return effective_as_of


def _references(con: duckdb.DuckDBPyConnection, settings: Settings, as_of: datetime | None) -> None:
    """The settings, reference tables, variables and table macros the models use besides the lake."""
    _load_settings(con, settings)
    business_hours.register(con, settings)
    markets.register(con)
    con.execute("set variable as_of = ?::timestamptz", [as_of])
    con.execute("set variable inactive_after_minutes = ?", [settings.inactive_after_minutes])
    policy.apply(con, as_of)
    pricing.register(con, settings, as_of)
    models.define_functions(con)


def _run(con: duckdb.DuckDBPyConnection, model: Model) -> None:
    """Create the model's relation from its select, as its kind says."""
    name = models.quoted(model.name)
    if model.kind == "staging":
        con.execute(f"create or replace view {name} as {model.body}")
    elif model.is_temp:
        con.execute(f"create or replace temp table {name} as {model.body}")
    else:
        con.execute(f"create or replace table {name} as {model.body}")


def _load_settings(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    numbers = pa.table({
        "phone_number_id": pa.array([p.phone_number_id for p in settings.phone_numbers], pa.int64()),
        "tenant_id": pa.array([p.tenant_id for p in settings.phone_numbers], pa.int64()),
        "waba_id": pa.array([p.waba_id for p in settings.phone_numbers], pa.string()),
        "timezone": pa.array([p.timezone for p in settings.phone_numbers], pa.string()),
        "currency": pa.array([p.currency for p in settings.phone_numbers], pa.string()),
        "display_phone_number": pa.array([p.display_phone_number for p in settings.phone_numbers], pa.string()),
    })
    con.register("phone_numbers_arrow", numbers)
    con.execute("create or replace table phone_numbers as select * from phone_numbers_arrow")
    con.unregister("phone_numbers_arrow")


def _register_lake(con: duckdb.DuckDBPyConnection, lake_dir: Path) -> None:
    """Temp views lake_<dataset> over the lake's files (typed empty tables when none)."""
    datasets = {**schema.DATASETS, "quarantine": schema.QUARANTINE}
    for name, dataset in datasets.items():
        files = lake.files(lake_dir, name)
        if files:
            con.execute(f"create or replace temp view lake_{name} as "
                        f"select * from read_parquet({lake.sql_list(files)})")
        else:
            con.register(f"lake_{name}_empty", dataset.schema.empty_table())
            con.execute(f"create or replace temp table lake_{name} as select * from lake_{name}_empty")
            con.unregister(f"lake_{name}_empty")
