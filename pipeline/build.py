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
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import duckdb

from pipeline import incremental as incremental_builds
from pipeline import config, lake, locking, models, paths, refdata, schema
from pipeline.config import Settings
from pipeline.errors import BuildError  # noqa: F401  (importable from here, as before)
from pipeline.models import Model, discover
# (importable from here, as before: the CLI, the bench scripts and the tests use them)
from pipeline.stage import (  # noqa: F401
    PER_THREAD_BYTES_PER_MESSAGE, BuildSummary, ShardTask, _cut, _load_settings, _references, _run,
    _Runner, cut_inputs, run_shard, shards_for,
)

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
            if plan is not None and model.recompute_by == "contact_phone":
                run(model, lambda: incremental_builds.run_by_phone(con, plan, model))
            else:
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


SHARD = "shard"     # the in-memory catalog a subset of contacts is computed in


def _per_thread(con: duckdb.DuckDBPyConnection, per_thread: list[Model], run: _Runner,
                selections: list[str], plan: incremental_builds.Plan | None, split: Path | None = None) -> None:
    """Run the per-thread stage once per subset of contacts (DESIGN "Sort once", shards).

    A selection is a predicate on (tenant_id, contact_key). Each subset's models run in
    an in-memory catalog put first on the search path, where the relations they read
    that hold many threads' rows (shard_by) are views cut to the subset; the kept
    tables' rows then go to the warehouse (an incremental night first deletes the
    subset's old rows, and notes which billing months changed).

    On an incremental night (`plan`, one subset) the cut relations are tables, made once.
    With `split` (a full build's shards), the staged messages are cut into one Parquet
    folder per shard there in one pass first, and each shard reads only its own: the
    lake is read once, not once per shard and reader (3 x 7 times at 100M messages).
    """
    database = con.execute("select current_database()").fetchall()[0][0]
    main = f'"{database}".main'
    inputs = {name for model in per_thread for name in model.reads}
    by_name = {model.name: model for model in discover()}      # the relations the stage reads
    shard_inputs = [by_name[name] for name in sorted(inputs) if by_name[name].shard_by]
    # A kept table goes to the warehouse as soon as the shard's last reader of it has run,
    # and leaves the shard's memory then, as the steps do (issue 13: shards that fit in memory).
    released = models.releases(per_thread, kept=True)
    stage = run.stage
    if split is not None:
        shutil.rmtree(split, ignore_errors=True)
        split.mkdir(parents=True)
        for model in shard_inputs:
            if model.shard_by == "contact_fields":
                run.stage = "per-thread stage, cutting the staged messages into shards"
                locking.crash_point("build.model")
                # Each thread buffers up to this many rows per shard folder before writing: at
                # DuckDB's 524,288 the 100M lake's cut into 13 shards spilled 0.23 GB and took
                # 102 s; at 65,536 nothing and 83 s (bench/README, Build profile, fifth session).
                con.execute("set partitioned_write_flush_threshold = 65536")
                con.execute(f"copy (select *, hash(tenant_id, contact_key) % {len(selections)} as shard_number "
                            f"from ({_cut(model, main, 'true', keep_key=True)})) to '{split / model.name}' "
                            "(format parquet, partition_by (shard_number))")
                con.execute("reset partitioned_write_flush_threshold")
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
                # An incremental night's one subset is read by several models: cut it from
                # the lake once (a view would be read again by each of them).
                relation = "table" if plan is not None else "view"
                con.execute(f"create or replace {relation} {SHARD}.main.{models.quoted(model.name)} as {cut}")
            con.execute(f"set search_path = '{SHARD}.main,{main}'")
            try:
                for position, model in enumerate(per_thread):
                    run(model, announce=index == 0)
                    for done in released.get(position, []):
                        name = models.quoted(done.name)
                        if done.is_temp:
                            con.execute(f"drop table temp.main.{name}")
                            continue
                        if plan is not None:       # its names of the warehouse's tables are unqualified
                            con.execute("reset search_path")
                            incremental_builds.replace_rows(con, plan, done, f"{SHARD}.main.{name}")
                            con.execute(f"set search_path = '{SHARD}.main,{main}'")
                        elif index == 0:
                            con.execute(f"create or replace table {main}.{name} as select * from {SHARD}.main.{name}")
                        else:
                            con.execute(f"insert into {main}.{name} select * from {SHARD}.main.{name}")
                        con.execute(f"drop table {SHARD}.main.{name}")
            finally:
                con.execute("reset search_path")
            for model in per_thread:
                con.execute(f"drop table if exists {'temp.main' if model.is_temp else SHARD + '.main'}."
                            f"{models.quoted(model.name)}")
    finally:
        run.stage = stage
        con.execute(f"detach {SHARD}")
        if split is not None:
            shutil.rmtree(split, ignore_errors=True)


def shard_count(con: duckdb.DuckDBPyConnection, settings: Settings) -> int:
    """[build] shards, else as many as keep each shard's messages within the memory limit."""
    if settings.build.shards:
        return settings.build.shards
    messages = con.execute("select count(*) from lake_messages").fetchall()[0][0]
    return shards_for(messages, config.memory_bytes(settings.build.memory_limit or config.default_memory_limit()))


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


def _register_lake(con: duckdb.DuckDBPyConnection, lake_dir: Path) -> None:
    """Temp views lake_<dataset> over the lake's files (typed empty tables when none)."""
    datasets = {**schema.DATASETS, "quarantine": schema.QUARANTINE}
    for name, dataset in datasets.items():
        files = lake.files(lake_dir, name)
        if files:
            con.execute(f"create or replace temp view lake_{name} as "
                        f"select * from read_parquet({lake.sql_list(files)})")
        else:
            refdata.replace_table(con, f"lake_{name}", dataset.schema.empty_table(), temporary=True)
