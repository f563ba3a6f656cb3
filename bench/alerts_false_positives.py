"""False positives of the alert rules: simulated tenants without incidents, many seeds.

Every alert such a tenant fires is a false positive of the rule (the simulator injects
nothing). Prints one markdown row per tenant size: tenants, days judged, and the alerts
of each kind (cost_spike, otp_pumping and failure_spike should stay at 0; the others
are listed for what they are worth). Not a test: tests/test_alerts_quiet.py checks ten
small tenants.

    .venv/bin/python bench/alerts_false_positives.py --seeds 1-30 --contacts 300,1500 --days 60
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections import Counter
from datetime import date
from pathlib import Path

import duckdb

from pipeline.build import build
from pipeline.config import load
from pipeline.ingest import ingest
from pipeline.simulate import SimulateSettings, simulate
from pipeline.simulate.incidents import KINDS


def seeds(text: str) -> list[int]:
    low, _, high = text.partition("-")
    return list(range(int(low), int(high or low) + 1))


def tenant(work: Path, seed: int, contacts: int, days: int, start: date, dirty: bool) -> tuple[Counter, int]:
    folder = work / f"s{seed}-c{contacts}"
    shutil.rmtree(folder, ignore_errors=True)
    summary = simulate(SimulateSettings(out=folder, contacts=contacts, days=days, seed=seed, start=start,
                                        dirty=dirty))
    settings = load(summary.config_path)
    ingest(settings.lake, [folder / "exports"])
    build(settings)
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        fired = Counter(dict(con.execute("select kind, count(*) from alerts group by kind").fetchall()))
        numbers_days = con.execute("select count(distinct (phone_number_id, local_date)) from messages").fetchall()[0][0]
    finally:
        con.close()
    shutil.rmtree(folder, ignore_errors=True)
    return fired, numbers_days


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="1-30")
    parser.add_argument("--contacts", default="300,1500")
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--start", default="2026-08-15", help="first day (2026-10-01 starts regime C)")
    parser.add_argument("--dirty", action="store_true")
    args = parser.parse_args()
    print(f"| contacts | tenants | number-days | {' | '.join(KINDS)} |")
    print(f"|---:|---:|---:|{'---:|' * len(KINDS)}")
    with tempfile.TemporaryDirectory(prefix="convo-alerts-bench-") as work:
        for contacts in (int(value) for value in args.contacts.split(",")):
            total: Counter = Counter()
            number_days = 0
            chosen = seeds(args.seeds)
            for seed in chosen:
                fired, judged = tenant(Path(work), seed, contacts, args.days, date.fromisoformat(args.start),
                                       args.dirty)
                total += fired
                number_days += judged
            print(f"| {contacts:,} | {len(chosen)} | {number_days:,} | "
                  + " | ".join(str(total.get(kind, 0)) for kind in KINDS) + " |", flush=True)


if __name__ == "__main__":
    main()
