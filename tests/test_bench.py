"""bench/run.py --smoke: the benchmark harness end to end on 1 million messages.

The message counts are checked against bench/generate.py's model computed here on
its own (sessions only), not against what ingest or build report. No timings are
asserted: only that they were measured. The run takes about 120 CPU-seconds (3 min 17 s
of wall on the 2-core machine at load 3-4; 9.5 min at load 8): three ingests and three
builds of 1M messages and the three baselines.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import generate  # noqa: E402  (bench/generate.py)
import run  # noqa: E402  (bench/run.py)

SMOKE_ROWS = {
    ("scale", "1M", "generate"), ("scale", "1M", "ingest"), ("scale", "1M", "build"), ("scale", "1M", "bare DuckDB pass"),
    ("incremental", "1M", "generate"), ("incremental", "1M", "ingest"), ("incremental", "1M", "full build"),
    ("incremental", "1M", "next day"), ("incremental", "1M", "nightly"),
    ("baselines", "1M", "pandas"), ("baselines", "1M", "polars"), ("baselines", "1M", "convo"),
}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, Path]:
    folder = tmp_path_factory.mktemp("bench")
    readme = folder / "README.md"
    shutil.copyfile(ROOT / "bench" / "README.md", readme)
    work = folder / "work"
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--keep", "--work", str(work),
         "--readme", str(readme)],
        capture_output=True, text=True, cwd=ROOT)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    (results_file,) = work.glob("*.json")
    return work, json.loads(results_file.read_text()), readme


def _rows(results: dict) -> dict[tuple[str, str, str], dict]:
    return {(row["group"], row["size"], row["step"]): row for row in results["rows"]}


def test_every_smoke_row_is_measured(smoke: tuple[Path, dict, Path]) -> None:
    _, results, _ = smoke
    rows = _rows(results)
    assert set(rows) == SMOKE_ROWS
    for key, row in rows.items():
        assert row["status"] in {"met", "missed", "measured"}, (key, row["status"], row["error"])
        for measure in ("wall_s", "cpu_s", "peak_rss_mb"):
            assert isinstance(row[measure], (int, float)) and row[measure] > 0, (key, measure, row[measure])
    for key in (("scale", "1M", "ingest"), ("scale", "1M", "build"), ("scale", "1M", "bare DuckDB pass"),
                ("incremental", "1M", "nightly")):
        assert rows[key]["target"] and rows[key]["verdict"].startswith(("met", "missed")), key
    assert results["machine"]["cores"] > 0 and results["versions"]["duckdb"] == duckdb.__version__


def test_ingest_and_build_keep_every_generated_message(smoke: tuple[Path, dict, Path]) -> None:
    work, results, _ = smoke
    rows = _rows(results)
    expected = generate.count(1_000_000, days=30, start=date(2025, 6, 16))
    exports = work / "scale-1M" / "exports"
    assert len(list(exports.glob("messages-*.parquet"))) == 30
    assert duckdb.sql(f"select count(*) from read_parquet('{exports}/*.parquet')").fetchall()[0][0] == expected
    ingested = rows[("scale", "1M", "ingest")]
    assert ingested["messages"] == expected
    assert {key: ingested["details"][key] for key in ("read", "accepted", "duplicates", "quarantined")} == {
        "read": expected, "accepted": expected, "duplicates": 0, "quarantined": 0}
    with duckdb.connect(str(work / "scale-1M" / "warehouse.duckdb"), read_only=True) as con:
        assert con.sql("select count(*) from messages").fetchall()[0][0] == expected
    assert rows[("scale", "1M", "build")]["details"]["warehouse_messages"] == expected


def test_nightly_adds_exactly_the_new_day(smoke: tuple[Path, dict, Path]) -> None:
    work, results, _ = smoke
    nightly = _rows(results)[("incremental", "1M", "nightly")]
    period = generate.count(1_000_000, days=365, start=date(2025, 6, 16))
    new_day = generate.count(1_000_000, days=365, start=date(2025, 6, 16), next_day=365)
    assert new_day > 0
    assert (nightly["details"]["new_day_messages"], nightly["details"]["accepted"]) == (new_day, new_day)
    assert (work / "incremental-1M-365d" / "exports" / "messages-2026-06-16.parquet").is_file()
    with duckdb.connect(str(work / "incremental-1M-365d" / "warehouse.duckdb"), read_only=True) as con:
        assert con.sql("select count(*) from messages").fetchall()[0][0] == period + new_day
    assert nightly["details"]["ratio"] == pytest.approx(nightly["wall_s"] / nightly["details"]["full_build_s"])


def test_the_table_shows_every_row(smoke: tuple[Path, dict, Path]) -> None:
    work, results, readme = smoke
    text = readme.read_text()
    table = text.split(run.START_MARKER, 1)[1].split(run.END_MARKER, 1)[0]
    assert text.count(run.START_MARKER) == 1 and "## Billing" in text   # the rest of the file is kept
    lines = table.splitlines()
    labels = {"generate": "generate exports", "ingest": "`convo ingest`", "build": "`convo build`"}
    for row in results["rows"]:
        step = labels.get(row["step"], row["step"]) if row["group"] == "scale" else row["step"]
        start = f"| {row['size']} | {step} | {row['messages']:,}"
        assert sum(line.startswith(start) for line in lines) == 1, start
    (results_file,) = work.glob("*.json")
    assert run.render(results, run.results_label(results_file)) in table
