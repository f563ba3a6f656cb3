"""Helpers for the robustness tests (issue 7): the convo command as a real
process, warehouse snapshots, and the invariants every ingest must keep."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from pipeline import lake

ROOT = Path(__file__).resolve().parent.parent

# Every reason DESIGN.md and the README document for a quarantined record.
REASONS = {
    "malformed_json", "malformed_csv", "invalid_utf8", "missing_required_field", "bad_value",
    "bad_timestamp", "unknown_enum", "unparseable_phone", "unparseable_bsuid",
}


def convo_command(*args: str) -> list[str]:
    """`convo ARGS` as a real process: this interpreter, this checkout's package."""
    return [sys.executable, "-c", "from pipeline.cli import main; main()", *args]


def convo_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **extra}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def run_convo(*args: str, env: dict[str, str] | None = None, timeout: float = 300,
              cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(convo_command(*args), capture_output=True, text=True, timeout=timeout,
                          env=env or convo_env(), cwd=cwd)


BUILD_RECORDS = "('build_info', 'build_lake_files')"


def warehouse_tables(path: Path) -> dict[str, list[tuple]]:
    """Every table of a warehouse file, its rows sorted (a comparable snapshot).

    Not build_info / build_lake_files: they say when and how the build ran (a time,
    full or incremental, file mtimes), not what the data is.
    """
    con = duckdb.connect(str(path), read_only=True)
    try:
        names = [row[0] for row in con.execute(
            f"select table_name from duckdb_tables() where not temporary and table_name not in {BUILD_RECORDS} "
            "order by 1").fetchall()]
        return {name: sorted(con.execute(f'select * from "{name}"').fetchall(), key=repr) for name in names}
    finally:
        con.close()


def lake_rows(lake_dir: Path, dataset: str) -> list[dict]:
    files = lake.files(lake_dir, dataset)
    return [row for path in files for row in pq.read_table(path).to_pylist()]


def lake_snapshot(lake_dir: Path) -> dict[str, list[tuple]]:
    """Every dataset of a lake, rows sorted, without where they came from."""
    result = {}
    for dataset in ("messages", "conversations", "events", "templates", "pricing_analytics", "quarantine"):
        rows = lake_rows(lake_dir, dataset)
        result[dataset] = sorted((tuple((k, v) for k, v in sorted(r.items()) if k != "source_file")
                                  for r in rows), key=repr)
    return result
