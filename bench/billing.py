"""Benchmark: the billing engine (sql/intermediate/int_bill_*, the billing marts) on N messages.

    .venv/bin/python bench/billing.py                      # 10 million messages
    .venv/bin/python bench/billing.py --messages 1000000   # a quick look

1. Generates a lake directly with DuckDB SQL into Parquet, in the layout ingest writes
   (no JSON, no ingest), with bench/generate.py's model: ~555,000 contacts per 10 million
   messages in six countries on four business numbers over 30 days from 2025-06-16 (so
   the CBP -> PMP switch of 2025-07-01 is inside), sessions of 1-7 messages opened by the
   user or by a template (marketing, utility, authentication), utility templates inside
   sessions, ad arrivals, 2 % of free-form sends failed with 131047.
2. Runs `convo build` in a child process: wall time, seconds per model, peak RSS.
3. Reruns only the billing models in another child on a copy of that warehouse: their
   time and peak RSS alone (the per-thread stage and the cross-thread stage apart).
Prints the row for bench/README.md. Files go to bench/results/ (not in git).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline import policy, pricing  # noqa: E402
from pipeline.build import _register_lake, _run, build, discover  # noqa: E402  (the build's own steps)
from pipeline.config import load  # noqa: E402
from pipeline.models import define_functions  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
import generate as generator  # noqa: E402  (bench/generate.py: the shared model)

PER_THREAD = ("int_bill_calendar", "int_bill_outbound", "int_bill_entry_points", "int_thread_messages",
              "int_bill_cbp_conversations", "int_bill_messages")
CROSS_THREAD = ("int_bill_rules_daily", "int_bill_rate_quarters", "billable_units",
                "costs_daily", "costs_monthly", "pricing_reconciliation", "analytics_reconciliation",
                "wasted_spend", "regime_whatif")


def generate(folder: Path, messages: int) -> dict[str, float]:
    """The lake and convo.toml under folder (bench/generate.py's model); returns counts and seconds."""
    started = time.perf_counter()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "convo.toml").write_text(generator.config_text())
    counts = generator.write_lake(folder, messages, generator.DAYS, generator.START)
    return {**counts, "seconds": time.perf_counter() - started}


def child_build(folder: Path) -> dict[str, object]:
    """`convo build`: seconds per model, total, peak RSS (this process)."""
    settings = load(folder / "convo.toml")
    marks: list[tuple[str, float]] = []
    started = time.perf_counter()
    summary = build(settings, on_model=lambda model: marks.append((model.name, time.perf_counter())))
    finished = time.perf_counter()
    ends = [mark for _, mark in marks[1:]] + [finished]
    per_model = {name: end - start for (name, start), end in zip(marks, ends)}
    return {"seconds": finished - started, "models": per_model, "tables": summary.tables,
            "checks": summary.checks, "peak_rss_mb": _peak_rss_mb()}


def child_billing(folder: Path) -> dict[str, object]:
    """Only the billing models, rebuilt on a copy of the built warehouse."""
    settings = load(folder / "convo.toml")
    copy = folder / "billing-stage.duckdb"
    shutil.copyfile(settings.warehouse, copy)
    con = duckdb.connect(str(copy))
    con.execute("set TimeZone = 'UTC'")
    con.execute("set enable_progress_bar = false")
    _register_lake(con, settings.lake)
    as_of = con.execute("select max(sent_at) from lake_messages").fetchall()[0][0]
    con.execute("set variable as_of = ?::timestamptz", [as_of])
    policy.apply(con, as_of)
    pricing.register(con, settings, as_of)
    define_functions(con)
    models = [model for model in discover() if model.name in PER_THREAD + CROSS_THREAD]
    per_model: dict[str, float] = {}
    started = time.perf_counter()
    for model in models:
        begun = time.perf_counter()
        _run(con, model)
        per_model[model.name] = time.perf_counter() - begun
    seconds = time.perf_counter() - started
    units = con.execute("select count(*), sum(cost_micros) from billable_units").fetchall()[0]
    con.close()
    copy.unlink()
    return {"seconds": seconds, "models": per_model, "peak_rss_mb": _peak_rss_mb(),
            "units": units[0], "cost_micros": units[1]}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _in_child(step: str, folder: Path) -> dict[str, object]:
    output = subprocess.run([sys.executable, __file__, "--child", step, "--dir", str(folder)],
                            check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000_000)
    parser.add_argument("--dir", type=Path, default=ROOT / "bench" / "results" / "billing")
    parser.add_argument("--child", choices=("build", "billing"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "build":
        print(json.dumps(child_build(args.dir)))
        return
    if args.child == "billing":
        print(json.dumps(child_billing(args.dir)))
        return

    generated = generate(args.dir, args.messages)
    print(f"generated {generated['messages']:,} messages ({generated['delivered']:,} delivered outbound), "
          f"{generated['threads']:,} threads in {generated['seconds']:.1f} s")
    full = _in_child("build", args.dir)
    mine = {name: seconds for name, seconds in full["models"].items() if name in PER_THREAD + CROSS_THREAD}
    print(f"convo build: {full['seconds']:.1f} s, peak RSS {full['peak_rss_mb']:,.0f} MB; "
          f"billing models {sum(mine.values()):.1f} s of it")
    stage = _in_child("billing", args.dir)
    per_thread = sum(seconds for name, seconds in stage["models"].items() if name in PER_THREAD)
    cross = sum(seconds for name, seconds in stage["models"].items() if name in CROSS_THREAD)
    print(f"billing models alone: {stage['seconds']:.1f} s (per-thread {per_thread:.1f} s, "
          f"cross-thread {cross:.1f} s), peak RSS {stage['peak_rss_mb']:,.0f} MB, "
          f"{stage['units']:,} billable units")
    for name, seconds in stage["models"].items():
        print(f"  {name:<34} {seconds:6.2f} s  {full['tables'].get(name, ''):>12}")
    for line in full["checks"]:
        print(line)
    today = datetime.now(timezone.utc).date()
    print("\nbench/README.md row:")
    print(f"| {today} | {generated['messages']:,} | {generated['delivered']:,} | {full['seconds']:.1f} s | "
          f"{full['peak_rss_mb']:,.0f} MB | {stage['seconds']:.1f} s ({per_thread:.1f} + {cross:.1f}) | "
          f"{stage['peak_rss_mb']:,.0f} MB | duckdb {duckdb.__version__} |")


if __name__ == "__main__":
    main()
