"""bench/run.py end to end: the harness's rows, counts and table.

By default a small run (20,000 messages: a scale row and a 30-day incremental row,
about 20 s of wall on the 2-core machine) keeps `make test` fast. With CONVO_BENCH=1
it is the harness's own --smoke instead, as the CONVO_BIG size runs of
test_robust_size.py are kept out of the default suite: 1 million messages, a
1M x 365-day incremental row and the three baselines (about 120 CPU-seconds, 3 to 10
minutes of wall on the 2-core machine depending on load)::

    CONVO_BENCH=1 .venv/bin/python -m pytest tests/test_bench.py -q

The message counts are checked against bench/generate.py's model computed here on
its own (sessions only), not against what ingest or build report. No timings are
asserted: only that they were measured.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import generate  # noqa: E402  (bench/generate.py)
import run  # noqa: E402  (bench/run.py)

BIG = bool(os.environ.get("CONVO_BENCH"))
# (messages, label, incremental days, with baselines): what the run measures
MESSAGES, SIZE, DAYS, BASELINES = (1_000_000, "1M", 365, True) if BIG else (20_000, "20k", 30, False)
ARGS = ["--smoke"] if BIG else ["--sizes", SIZE, "--incremental-messages", SIZE, "--incremental-days", str(DAYS)]
START = date(2025, 6, 16)       # bench/generate.py's first day

SMOKE_ROWS = {
    ("scale", SIZE, "generate"), ("scale", SIZE, "ingest"), ("scale", SIZE, "build"),
    ("scale", SIZE, "bare DuckDB pass"),
    ("incremental", SIZE, "generate"), ("incremental", SIZE, "ingest"), ("incremental", SIZE, "full build"),
    ("incremental", SIZE, "next day"), ("incremental", SIZE, "nightly"),
} | ({("baselines", SIZE, "pandas"), ("baselines", SIZE, "polars"), ("baselines", SIZE, "convo")}
     if BASELINES else set())


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, Path]:
    folder = tmp_path_factory.mktemp("bench")
    readme = folder / "README.md"
    shutil.copyfile(ROOT / "bench" / "README.md", readme)
    work = folder / "work"
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), *ARGS, "--keep", "--work", str(work),
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
    for key in (("scale", SIZE, "ingest"), ("scale", SIZE, "build"), ("scale", SIZE, "bare DuckDB pass"),
                ("incremental", SIZE, "nightly")):
        assert rows[key]["target"] and rows[key]["verdict"].startswith(("met", "missed")), key
    assert results["machine"]["cores"] > 0 and results["versions"]["duckdb"] == duckdb.__version__


def test_ingest_and_build_keep_every_generated_message(smoke: tuple[Path, dict, Path]) -> None:
    work, results, _ = smoke
    rows = _rows(results)
    expected = generate.count(MESSAGES, days=30, start=START)
    exports = work / f"scale-{SIZE}" / "exports"
    assert len(list(exports.glob("messages-*.parquet"))) == 30
    assert duckdb.sql(f"select count(*) from read_parquet('{exports}/*.parquet')").fetchall()[0][0] == expected
    ingested = rows[("scale", SIZE, "ingest")]
    assert ingested["messages"] == expected
    assert {key: ingested["details"][key] for key in ("read", "accepted", "duplicates", "quarantined")} == {
        "read": expected, "accepted": expected, "duplicates": 0, "quarantined": 0}
    with duckdb.connect(str(work / f"scale-{SIZE}" / "warehouse.duckdb"), read_only=True) as con:
        assert con.sql("select count(*) from messages").fetchall()[0][0] == expected
    assert rows[("scale", SIZE, "build")]["details"]["warehouse_messages"] == expected


def test_nightly_adds_exactly_the_new_day(smoke: tuple[Path, dict, Path]) -> None:
    work, results, _ = smoke
    nightly = _rows(results)[("incremental", SIZE, "nightly")]
    period = generate.count(MESSAGES, days=DAYS, start=START)
    new_day = generate.count(MESSAGES, days=DAYS, start=START, next_day=DAYS)
    assert new_day > 0
    assert (nightly["details"]["new_day_messages"], nightly["details"]["accepted"]) == (new_day, new_day)
    folder = work / f"incremental-{SIZE}-{DAYS}d"
    assert (folder / "exports" / f"messages-{START + timedelta(days=DAYS)}.parquet").is_file()
    with duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True) as con:
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
