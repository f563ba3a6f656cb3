"""`convo build --engine spark`: the per-thread stage as one Spark task per shard.

DESIGN "Sort once": threads are independent, so the per-thread stage runs per thread-hash
shard. With this engine the build (pipeline/build.py) runs as always up to that stage;
then here:

1. what the per-thread stage reads from the warehouse is written as Parquet beside the
   warehouse (<warehouse>.building.spark/inputs): the staged messages and the other
   relations of many threads cut by thread hash in one pass (shard_number=i folders),
   the small ones (calendars, contact keys, templates) whole (build.cut_inputs);
2. one Spark task per shard runs convo's own per-thread SQL in an in-memory DuckDB over
   its shard's rows (build.run_shard) and writes each kept table as
   <warehouse>.building.spark/out/<table>/shard=<i>.parquet;
3. the build appends those files to the warehouse's tables and goes on with the
   cross-thread stage and the publishing, as with the DuckDB engine.

The rows are cut once, by DuckDB's hash as the DuckDB engine cuts them, and each task
reads only its own folder: no Spark shuffle moves the messages through the JVM. Spark
schedules, places, retries and reports the tasks. A cluster needs the same convo wheel
on every executor and the lake, the project folder and the warehouse's folder on a file
system every executor mounts at the same path (README "The Spark engine").

pyspark is an optional extra (`pip install 'convo[spark]'`) and needs a Java runtime;
either missing is a one-line BuildError naming what to install.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
import threading
import time
import uuid
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from pipeline import stage as shard_stage
from pipeline import config, models
from pipeline.config import Settings
from pipeline.errors import BuildError
from pipeline.models import Model

DEFAULT_MASTER = "local[*]"
LOG_CONFIG = Path(__file__).with_name("spark_log4j2.properties")     # Spark's driver: warnings and errors

# pyspark's notice that it does not yet support this pandas (convo's Spark engine uses no pandas)
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
INSTALL_PYSPARK = "--engine spark needs pyspark: pip install 'convo[spark]'"
INSTALL_JAVA = ("--engine spark needs a Java runtime (17 or newer) for Spark: "
                "apt-get install default-jre-headless, or set JAVA_HOME")


@dataclass(frozen=True)
class TaskResult:
    shard: int
    seconds: float
    cpu_seconds: float                                            # the task's process (DuckDB's threads too)
    tables: dict[str, tuple[int, tuple[tuple[str, str], ...]]]    # per kept table: rows, columns


def check_runtime() -> None:
    """pyspark importable and a Java runtime found, else a one-line BuildError naming the install."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise BuildError(INSTALL_PYSPARK) from None
    java_home = os.environ.get("JAVA_HOME")
    if not (java_home and Path(java_home, "bin", "java").is_file()) and shutil.which("java") is None:
        raise BuildError(INSTALL_JAVA)


def session(master: str | None) -> tuple[Any, bool]:
    """The Spark session to run on, and whether this build started it.

    A session already running in this process (a notebook, a pyspark job, the tests)
    is used as it is and left running; otherwise one is started on master (default
    local[*]) and the build stops it when done.
    """
    check_runtime()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active, False
    chosen = master or DEFAULT_MASTER
    if chosen.startswith("local"):
        # local workers run this interpreter (the one convo is installed in), not python3 on PATH
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (SparkSession.builder.master(chosen).appName("convo build")
               .config("spark.ui.showConsoleProgress", "false"))
    # the driver's JVM starts with convo's logging settings (a conf set here comes too late)
    submit = os.environ.get("PYSPARK_SUBMIT_ARGS")
    if submit is None:
        option = shlex.quote(f"-Dlog4j2.configurationFile={LOG_CONFIG}")
        os.environ["PYSPARK_SUBMIT_ARGS"] = f"--driver-java-options {option} pyspark-shell"
    try:
        spark = builder.getOrCreate()
    except Exception as exc:                  # the JVM did not start or the master is unreachable
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BuildError(f"Spark did not start on {chosen}: {first}") from None
    finally:
        if submit is None:
            os.environ.pop("PYSPARK_SUBMIT_ARGS", None)
    spark.sparkContext.setLogLevel("ERROR")
    return spark, True


def per_thread(con: duckdb.DuckDBPyConnection, settings: Settings, as_of: datetime | None,
               per_thread_models: list[Model], run: Any, folder: Path, master: str | None,
               summary: shard_stage.BuildSummary) -> int:
    """Run a full build's per-thread stage on Spark into the warehouse's tables; returns the shard count.

    run is the build's model runner (its on_model / on_step get the progress), folder
    the scratch folder beside the warehouse (removed when done).
    """
    spark, started = session(master)
    try:
        context = spark.sparkContext
        local = context.master.startswith("local")
        memory_limit = task_memory(context, settings, local)
        shards = settings.build.shards or max(_by_memory(con, memory_limit), context.defaultParallelism)
        where = context.master + (f", UI {context.uiWebUrl}" if context.uiWebUrl else "")
        stage = run.stage
        say = run.on_step or (lambda text: None)
        for model in per_thread_models:
            if run.on_model is not None:
                run.on_model(model)
        say(f"per-thread stage on Spark ({where}): cutting the inputs into {shards} shards")
        cut_at = time.perf_counter()
        columns, sharded = shard_stage.cut_inputs(con, per_thread_models, shards, folder / "inputs")
        tasks = [shard_stage.ShardTask(settings=settings, as_of=as_of, models=tuple(per_thread_models),
                                  inputs=folder / "inputs", columns=columns, sharded=sharded, shard=shard,
                                  out=folder / "out", memory_limit=memory_limit,
                                  threads=int(context.getConf().get("spark.task.cpus", "1")))
                 for shard in range(shards)]
        started_at = time.perf_counter()
        results = _run_tasks(context, tasks, lambda done, running: say(
            f"per-thread stage on Spark ({where}): {done} of {shards} shards done, {running} running"))
        seconds = time.perf_counter() - started_at
        _append(con, per_thread_models, results, folder / "out", run, where)
        slowest = max(results, key=lambda result: result.seconds)
        summary.notes.append(
            f"engine spark ({context.master}): inputs cut in {started_at - cut_at:,.1f} s, per-thread stage in "
            f"{shards} tasks {seconds:,.1f} s (slowest shard {slowest.shard + 1}: {slowest.seconds:,.1f} s; "
            f"the tasks' CPU {sum(result.cpu_seconds for result in results):,.1f} s), "
            f"appended in {time.perf_counter() - started_at - seconds:,.1f} s; DuckDB memory {memory_limit} per task")
        run.stage = stage
        return shards
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if started:
            spark.stop()


def task_memory(context: Any, settings: Settings, local: bool) -> str:
    """DuckDB's memory limit in each task.

    Local mode: the build's limit ([build] memory_limit or the default) shared by the
    tasks running at once (one per core). A cluster: spark.executor.pyspark.memory
    shared by the executor's cores (spark.executor.cores), else the build's limit.
    """
    limit = config.memory_bytes(settings.build.memory_limit or config.default_memory_limit())
    conf = context.getConf()
    if local:
        share = limit // max(1, context.defaultParallelism)
    elif conf.get("spark.executor.pyspark.memory"):
        cores = int(conf.get("spark.executor.cores", "1"))
        share = _jvm_bytes(conf.get("spark.executor.pyspark.memory")) // max(1, cores)
    else:
        share = limit
    return f"{max(share // 2**20, 256)}MiB"


def _jvm_bytes(text: str) -> int:
    """Spark's memory strings: 4g, 512m, 1024k, a number of MiB."""
    text = text.strip().lower().removesuffix("b")
    scale = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
    if text and text[-1] in scale:
        return int(float(text[:-1]) * scale[text[-1]])
    return int(float(text) * 2**20)


def _by_memory(con: duckdb.DuckDBPyConnection, memory_limit: str) -> int:
    """Shards that keep each task's messages within its memory (600 bytes a message, as one
    shard of build.shard_count; the in-memory size of several local shards is not measured on Spark)."""
    messages = con.execute("select count(*) from lake_messages").fetchall()[0][0]
    per_task = config.memory_bytes(memory_limit)
    return max(1, -(-messages * shard_stage.PER_THREAD_BYTES_PER_MESSAGE // per_task))


def _task(task: shard_stage.ShardTask) -> TaskResult:
    """One Spark task: one shard's per-thread stage (runs on an executor)."""
    started, cpu = time.perf_counter(), time.process_time()
    tables = shard_stage.run_shard(task)
    return TaskResult(shard=task.shard, seconds=time.perf_counter() - started,
                      cpu_seconds=time.process_time() - cpu, tables=tables)


def _run_tasks(context: Any, tasks: list[shard_stage.ShardTask], progress: Any) -> list[TaskResult]:
    """Run the tasks, one Spark task each, telling progress(done, running) as they finish."""
    group = f"convo-build-{uuid.uuid4().hex[:12]}"
    outcome: dict[str, Any] = {}

    def job() -> None:
        try:
            context.setJobGroup(group, "convo build: per-thread stage", interruptOnCancel=True)
            outcome["results"] = context.parallelize(tasks, len(tasks)).map(_task).collect()
        except BaseException as exc:          # handed to the build's thread below
            outcome["error"] = exc

    thread = threading.Thread(target=job, name="convo-spark-job", daemon=True)
    thread.start()
    tracker = context.statusTracker()
    told = None
    try:
        while thread.is_alive():
            thread.join(0.5)
            done = running = 0
            for job_id in tracker.getJobIdsForGroup(group):
                info = tracker.getJobInfo(job_id)
                for stage_id in (info.stageIds if info else []):
                    stage = tracker.getStageInfo(stage_id)
                    if stage is not None:
                        done += stage.numCompletedTasks
                        running += stage.numActiveTasks
            if (done, running) != told:
                told = (done, running)
                progress(done, running)
    except BaseException:
        context.cancelJobGroup(group)
        thread.join(30)
        raise
    if "error" in outcome:
        raise BuildError(f"the per-thread stage failed on Spark: {_last_line(outcome['error'])}") from None
    results = sorted(outcome["results"], key=lambda result: result.shard)
    progress(len(results), 0)
    return results


def _last_line(exc: BaseException) -> str:
    """The Python error a task raised (its traceback's last line), else the exception's first line."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    raised = [line for line in lines if re.match(r"[\w.]*(Error|Exception): ", line)
              and not line.startswith(("org.apache.", "py4j.", "java."))]
    if raised:
        return raised[-1]
    return lines[0] if lines else type(exc).__name__


def _append(con: duckdb.DuckDBPyConnection, per_thread_models: list[Model], results: list[TaskResult],
            out: Path, run: Any, where: str) -> None:
    """The kept tables in the warehouse: typed as the tasks made them, rows from every shard's file."""
    say = run.on_step or (lambda text: None)
    for model in per_thread_models:
        if model.is_temp:
            continue
        name = models.quoted(model.name)
        columns = results[0].tables[model.name][1]
        say(f"per-thread stage on Spark ({where}): appending {model.name}")
        con.execute(f"create or replace table {name} ("
                    + ", ".join(f"{shard_stage._column(column)} {kind}" for column, kind in columns) + ")")
        files = [str(out / model.name / f"shard={result.shard}.parquet") for result in results]
        con.execute(f"insert into {name} select * from read_parquet(?)", [files])
