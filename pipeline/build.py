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
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from pipeline import incremental as incremental_builds
from pipeline import config, lake, locking, markets, paths, policy, pricing, schema
from pipeline.config import Settings

LAYERS = ("staging", "intermediate", "marts")


@dataclass(frozen=True)
class Model:
    name: str
    layer: str
    sql: str


@dataclass
class BuildSummary:
    warehouse: Path
    as_of: datetime | None
    tables: dict[str, int] = field(default_factory=dict)
    checks: list[str] = field(default_factory=list)   # lines from sql/summaries
    notes: list[str] = field(default_factory=list)


class BuildError(RuntimeError):
    """The lake cannot be built into a warehouse (a user-fixable condition)."""


def discover(sql_root: Path | None = None) -> list[Model]:
    """Every model, in an order where each comes after the models it reads."""
    root = sql_root or paths.sql_dir()
    models = [
        Model(name=path.stem, layer=layer, sql=path.read_text(encoding="utf-8"))
        for layer in LAYERS
        for path in sorted((root / layer).glob("*.sql"))
    ]
    return _topological(models)


def _topological(models: list[Model]) -> list[Model]:
    names = {model.name for model in models}
    needs = {model.name: (_references(model.sql) & names) - {model.name} for model in models}
    ordered: list[Model] = []
    done: set[str] = set()
    pending = list(models)
    while pending:
        ready = [model for model in pending if needs[model.name] <= done]
        if not ready:
            cycle = ", ".join(model.name for model in pending)
            raise RuntimeError(f"SQL models depend on each other in a cycle: {cycle}")
        for model in ready:
            ordered.append(model)
            done.add(model.name)
        pending = [model for model in pending if model.name not in done]
    return ordered


def _references(sql: str) -> set[str]:
    """Relations a select reads (after from / join), less its own CTE names."""
    code = re.sub(r"--[^\n]*", "", sql)
    read = set(re.findall(r"\b(?:from|join)\s+\"?(\w+)\"?", code, flags=re.IGNORECASE))
    ctes = set(re.findall(r"\b(\w+)\s+as\s*\(", code, flags=re.IGNORECASE))
    return read - ctes


def build(settings: Settings, as_of: datetime | None = None,
          on_model: Callable[[Model], None] | None = None, incremental: bool = False) -> BuildSummary:
    """Build the warehouse; one build per warehouse at a time, never beside an ingest (locking.Busy).

    incremental=True starts from the last warehouse and recomputes only the threads
    that changed (pipeline/incremental.py), or builds in full and says why in the notes.

    The models read the lake all through the build, so the build holds the lake's
    lock: an ingest renaming partitions half-way would give tables of two lake states.
    """
    target = settings.warehouse
    target.parent.mkdir(parents=True, exist_ok=True)
    with locking.exclusive(target.with_name(target.name + ".lock"), f"a build of {target}"), lake_lock(settings):
        lake.recover(settings.lake)             # an ingest killed half-way through its commit
        return _build(settings, target, as_of, on_model, incremental)


def lake_lock(settings: Settings) -> AbstractContextManager[None]:
    """The lake's lock, held while a build reads the lake."""
    what = f"a build of {settings.warehouse}"
    return locking.exclusive(settings.lake / lake.LOCK, what, label=what)


def _build(settings: Settings, target: Path, as_of: datetime | None,
           on_model: Callable[[Model], None] | None, incremental: bool) -> BuildSummary:
    building = target.with_name(target.name + ".building")
    paths.remove_duckdb(building)
    why_full = incremental_builds.copy_previous(target, building) if incremental else None
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
        names = {model.name for model in discover()}
        for model in discover():
            if on_model is not None:
                on_model(model)
            locking.crash_point("build.model")
            try:
                if plan is not None:
                    incremental_builds.before_model(con, plan, model.name)
                if plan is not None and model.name in incremental_builds.THREAD_MODELS:
                    references = (_references(model.sql) & names) - {model.name}
                    incremental_builds.run_model(con, model.name, model.sql.strip().rstrip(";"), references)
                elif plan is not None and model.name in incremental_builds.MONTH_MODELS:
                    references = (_references(model.sql) & names) - {model.name}
                    incremental_builds.run_month_model(con, plan, model.name, model.sql.strip().rstrip(";"),
                                                       references)
                else:
                    _run(con, model)
            except duckdb.OutOfMemoryException as exc:
                first = str(exc).strip().splitlines()[0]
                raise BuildError(f"model {model.name}: DuckDB ran out of memory ({first}); the last "
                                 "warehouse is left as it was (a larger [build] memory_limit in "
                                 "convo.toml may help)") from None
            if model.layer == "marts":
                summary.tables[model.name] = con.execute(f'select count(*) from "{model.name}"').fetchall()[0][0]
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
        incremental_builds.record(con, settings, "full" if plan is None else "incremental",
                                  None if plan is None else plan.affected_threads)
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


def _prepare(con: duckdb.DuckDBPyConnection, settings: Settings, as_of: datetime | None) -> datetime | None:
    """Settings, reference tables, lake views and variables: what every model may read."""
    con.execute("set TimeZone = 'UTC'")
    con.execute("set enable_progress_bar = false")
    # Past the limit DuckDB spills to <warehouse>.building.tmp (removed after the build).
    con.execute("set memory_limit = ?", [settings.build.memory_limit or config.default_memory_limit()])
    _load_settings(con, settings)
    markets.register(con)
    _register_lake(con, settings.lake)
    effective_as_of = as_of or con.execute("select max(sent_at) from lake_messages").fetchall()[0][0]
    con.execute("set variable as_of = ?::timestamptz", [effective_as_of])
    con.execute("set variable inactive_after_minutes = ?", [settings.inactive_after_minutes])
    policy.apply(con, effective_as_of)
    pricing.register(con, settings, effective_as_of)
    return effective_as_of


def _run(con: duckdb.DuckDBPyConnection, model: Model) -> None:
    body = model.sql.strip().rstrip(";")
    if model.layer == "staging":
        con.execute(f'create or replace temp view "{model.name}" as {body}')
    else:
        con.execute(f'create or replace table "{model.name}" as {body}')


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
