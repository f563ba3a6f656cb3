"""`convo build --engine spark` (pipeline/spark.py): the per-thread stage as one Spark task
per shard gives the DuckDB engine's tables.

One simulated tenant, dirty, over 470 days from 2025-06-20: the CBP -> PMP switch of
2025-07-01 (DOMAIN R13-R20), the bsuid cut-over of 2026-03-31 (R2) and regime C from
2026-10-01 (R21) fall inside. It is built once by the DuckDB engine in one shard and by
the Spark engine in local mode with 1 and 3 shards; every table (build_info aside) is
compared row for row (except all, both ways) and column for column. One Spark session
(local[2]) serves the module, as a session already running in a process is used by
the build. The tenant and its one-shard DuckDB build are the session's (conftest.py
`dirty_tenant`, `one_shard`), shared with tests/test_shards.py, which asserts that it
spans the three switches.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from pipeline import models
from pipeline.build import BuildSummary, build
from pipeline.cli import cli
from pipeline.config import Build, Settings
from tests.helpers import rows_differing, warehouse_tables

# pyspark's notice that it does not yet support this pandas (the engine uses no pandas)
pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    python = os.environ.get("PYSPARK_PYTHON")
    os.environ["PYSPARK_PYTHON"] = sys.executable        # the workers import convo and DuckDB
    session = (SparkSession.builder.master("local[2]").appName("convo tests")
               .config("spark.ui.showConsoleProgress", "false").getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
    if python is None:
        os.environ.pop("PYSPARK_PYTHON", None)
    else:
        os.environ["PYSPARK_PYTHON"] = python


@pytest.fixture(scope="module")
def tenant(dirty_tenant: Settings) -> Settings:
    return dirty_tenant


@pytest.fixture(scope="module")
def duckdb_engine(one_shard: Path) -> Path:
    return one_shard


def built_on_spark(settings: Settings, shards: int, steps: list[str]) -> tuple[Path, BuildSummary]:
    target = settings.warehouse.with_name(f"spark-{shards}.duckdb")
    summary = build(replace(settings, warehouse=target, build=Build(shards=shards)), on_step=steps.append,
                    engine="spark")
    return target, summary


def test_convo_build_engine_spark_on_the_command_line(spark, tenant: Settings, duckdb_engine: Path) -> None:
    config = tenant.config_path.with_name("convo-spark-cli.toml")
    config.write_text(tenant.config_path.read_text(encoding="utf-8").replace(
        'warehouse = "warehouse.duckdb"', 'warehouse = "spark-cli.duckdb"') + "\n[build]\nshards = 2\n")
    result = CliRunner().invoke(cli, ["build", "--config", str(config), "--engine", "spark",
                                      "--spark-master", "local[2]"])
    assert result.exit_code == 0, result.output
    notes = [line for line in result.output.splitlines() if line.startswith("note: engine spark")]
    assert len(notes) == 1 and notes[0].startswith("note: engine spark (local[2]): inputs cut in "), result.output
    con = duckdb.connect()
    con.execute(f"attach '{duckdb_engine}' as one (read_only)")
    con.execute(f"attach '{config.with_name('spark-cli.duckdb')}' as cli (read_only)")
    assert con.execute("select shards from cli.build_info").fetchall() == [(2,)]
    # the bill, to the micro-unit and by currency, is the DuckDB engine's (DOMAIN R13-R21)
    bill = "select currency, sum(cost_micros), count(*) from {}.billable_units group by all order by all"
    assert con.execute(bill.format("cli")).fetchall() == con.execute(bill.format("one")).fetchall()


@pytest.mark.parametrize("shards", [1, 3])
def test_spark_gives_the_duckdb_engines_tables(spark, tenant: Settings, duckdb_engine: Path, shards: int) -> None:
    steps: list[str] = []
    target, summary = built_on_spark(tenant, shards, steps)
    assert summary.shards == shards
    # progress: the cut, then shards done as they finish, with the Spark UI's address
    where = re.escape(f"local[2], UI {spark.sparkContext.uiWebUrl}")
    assert spark.sparkContext.uiWebUrl.startswith("http://")
    spark_steps = [step for step in steps if "on Spark" in step]
    assert re.fullmatch(rf"per-thread stage on Spark \({where}\): cutting the inputs into {shards} shards",
                        spark_steps[0])
    assert f"per-thread stage on Spark (local[2], UI {spark.sparkContext.uiWebUrl}): {shards} of {shards} " \
           "shards done, 0 running" in spark_steps
    # then every kept per-thread table appended, in the build's order
    kept = [model.name for model in models.stages(models.discover()).per_thread if not model.is_temp]
    assert [step.rsplit(": appending ", 1)[1] for step in spark_steps if ": appending " in step] == kept
    assert spark_steps[-1].endswith(f": appending {kept[-1]}")
    assert [note for note in summary.notes if re.fullmatch(
        rf"engine spark \(local\[2\]\): inputs cut in [\d.,]+ s, per-thread stage in {shards} tasks [\d.,]+ s "
        rf"\(slowest shard [1-{shards}]: [\d.,]+ s; the tasks' CPU [\d.,]+ s\), appended in [\d.,]+ s; DuckDB memory \d+MiB per task", note)]
    # the scratch folder of inputs and outputs beside the warehouse is gone
    assert sorted(path.name for path in target.parent.glob(f"{target.name}*")) == [target.name, target.name + ".lock"]
    con = duckdb.connect()
    con.execute(f"attach '{duckdb_engine}' as one (read_only)")
    con.execute(f"attach '{target}' as spark (read_only)")
    assert warehouse_tables(con, "one") == warehouse_tables(con, "spark")
    assert {"messages", "int_bill_messages", "conversations", "service_windows", "billable_units"} <= warehouse_tables(con, "one")
    for table in sorted(warehouse_tables(con, "one")):
        columns = [con.execute("select column_name, data_type from duckdb_columns() where database_name = ? "
                               "and table_name = ? order by column_index", [database, table]).fetchall()
                   for database in ("one", "spark")]
        assert columns[0] == columns[1], table
        rows = con.execute(f'select count(*) from one."{table}"').fetchone()[0]
        differing = rows_differing(con, "one", "spark", table)
        assert differing == 0, f"{table}: {differing} of {rows} rows differ on Spark with {shards} shards"
    assert con.execute('select count(*) from spark."messages"').fetchone()[0] > 10_000
    assert con.execute('select sum(cost_micros) from spark."billable_units"').fetchone()[0] > 0


def test_a_missing_pyspark_is_one_line_naming_the_install(tenant: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyspark", None)         # as if not installed: import raises ImportError
    result = CliRunner().invoke(cli, ["build", "--config", str(tenant.config_path), "--engine", "spark"])
    assert result.exit_code == 1
    assert result.output == "Error: --engine spark needs pyspark: pip install 'convo[spark]'\n"


def test_a_missing_java_is_one_line_naming_the_install(tenant: Settings, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))                  # no java on it
    result = CliRunner().invoke(cli, ["build", "--config", str(tenant.config_path), "--engine", "spark"])
    assert result.exit_code == 1
    assert result.output == ("Error: --engine spark needs a Java runtime (17 or newer) for Spark: "
                             "apt-get install default-jre-headless, or set JAVA_HOME\n")


def test_spark_master_goes_with_the_spark_engine(tenant: Settings) -> None:
    result = CliRunner().invoke(cli, ["build", "--config", str(tenant.config_path), "--spark-master", "local[2]"])
    assert result.exit_code == 2
    assert result.output.endswith("Error: --spark-master goes with --engine spark\n")
