"""The per-thread stage of one shard, runnable apart from the build (pipeline/build.py).

What a model needs besides the lake (the settings' tables, reference tables,
variables and table macros: ``_references``), how a model is run (``_run``,
``_Runner``), how a relation is cut to a subset of contacts (``_cut``), and a shard
as a task of its own (``ShardTask``, ``cut_inputs``, ``run_shard``) for another
engine to schedule (pipeline/spark.py). The build imports this module; so does the
Spark engine, which the build calls: neither imports the other's caller.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from pipeline import business_hours, config, locking, markets, models, policy, pricing, refdata
from pipeline.config import Settings
from pipeline.errors import BuildError
from pipeline.models import Model, discover


@dataclass
class BuildSummary:
    warehouse: Path
    as_of: datetime | None
    tables: dict[str, int] = field(default_factory=dict)
    checks: list[str] = field(default_factory=list)   # lines from sql/summaries
    notes: list[str] = field(default_factory=list)
    shards: int = 1


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
    # contact_fields: the contact key of DOMAIN R2 (sql/functions/with_contact_key.sql)
    rows, keys = (f"{main}.{relation}".replace("'", "''") for relation in (name, models.quoted("int_contact_keys")))
    keyed = f"with_contact_key('{rows}', '{keys}')"
    return f"select * {'' if keep_key else 'exclude (contact_key) '}from {keyed} where {selection}"


# Working memory a message takes in the per-thread stage (sorts, windows, joins); a shard
# is sized so its messages fit the build's memory limit. Measured: under the default
# 6.5 GB a 10M-message shard built without spilling (2026-12-07) and a 14M-message one
# of the 100M run spilled (2026-12-06): 600 bytes keeps a shard under 10.8M messages.
# A shard too many costs more than it saves: the 10M lake in two shards took 96 s
# (182 CPU-s) against 81 s (155 CPU-s) in one, back to back (2026-12-07).
PER_THREAD_BYTES_PER_MESSAGE = 600
# One shard runs in the warehouse file, whose blocks DuckDB can evict; several run in an
# in-memory catalog, whose tables it can only spill. So when one shard is not enough,
# they are sized at more memory a message: the 100M lake's shards spilled ~1.1 GB each in
# 10 shards, nothing in 13 (the whole build 1,001 -> 1,041 s, spill 1.1 -> 0.2 GB, left in
# the cut; bench/README, Build profile, fifth session).
IN_MEMORY_SHARD_BYTES_PER_MESSAGE = 800


def shards_for(messages: int, limit_bytes: int) -> int:
    """How many thread-hash shards keep each one's messages within the memory limit."""
    if messages * PER_THREAD_BYTES_PER_MESSAGE <= limit_bytes:
        return 1
    return max(2, -(-messages * IN_MEMORY_SHARD_BYTES_PER_MESSAGE // limit_bytes))


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
    if model.kernel is not None:
        from pipeline import kernels      # numba's start-up only where a kernel runs

        kernels.run(con, model.name, model.kernel, model.body, "temp table" if model.is_temp else "table")
    elif model.kind == "staging":
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
    refdata.replace_table(con, "phone_numbers", numbers)
