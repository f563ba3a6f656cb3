"""What writing a built warehouse's tables costs, with nothing computed (bench/README.md, Build floor).

    .venv/bin/python bench/write_floor.py --warehouse DIR/warehouse.duckdb [--repeat 2]

Every table of the warehouse is first read into memory (untimed), then written into a
fresh DuckDB file as `create table ... as select * from` that copy, and checkpointed:
the CPU and wall seconds of this process per table. Two sets: every table the build
writes, and only what DESIGN.md's warehouse table promises notebooks (its tables, with
its key columns where it lists them). No build can write its tables for less, so the
second set, beside the bare pass (bench/bare_pass.py), is a floor under any design of
the build on this machine.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import duckdb

# DESIGN.md "The warehouse": the tables notebooks may rely on, and the columns it names
# ("*": every column the table has, where DESIGN names the grain's fields, not a list).
CONTRACT = {
    "messages": "message_id, tenant_id, phone_number_id, contact_key, contact_bsuid, contact_phone, direction, "
                "type, template_name, category, status, error_code, sent_at, delivered_at, country_code, market",
    "service_windows": "phone_number_id, contact_key, opened_at, last_inbound_at, expires_at, inbound_count",
    "conversations": "*",
    "billable_units": "*",
    "costs_daily": "*",
    "costs_monthly": "*",
    "conversation_outcomes": "conversation_id, ended_reason, time_to_close_seconds, first_response_seconds, "
                             "inbound_count, human_reply_count, automated_reply_count, template_count, is_reopen",
    "close_rates_daily": "*",
    "wasted_spend": "*",
    "pricing_reconciliation": "*",
    "quarantine": "*",
}


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def write(warehouse: Path, columns: dict[str, str]) -> list[tuple[str, int, int, float, float]]:
    """(table, rows, columns, CPU s, wall s) of writing each table into a fresh file."""
    with tempfile.TemporaryDirectory(dir=warehouse.parent) as scratch:
        con = duckdb.connect(str(Path(scratch) / "floor.duckdb"))
        con.execute("attach ? as built (read_only)", [str(warehouse)])
        for table, selected in columns.items():
            con.execute(f'create temp table "copy_{table}" as select {selected} from built."{table}"')
        con.execute("detach built")
        rows = []
        for table in columns:
            started, used = time.perf_counter(), cpu()
            con.execute(f'create table "{table}" as select * from "copy_{table}"')
            con.execute("checkpoint")
            used, wall = cpu() - used, time.perf_counter() - started
            count = con.execute(f'select count(*) from "{table}"').fetchone()[0]
            width = len(con.execute(f'select * from "{table}" limit 0').description)
            rows.append((table, count, width, used, wall))
        con.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warehouse", type=Path, required=True, help="a built warehouse.duckdb")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each set (the least CPU is shown)")
    args = parser.parse_args(argv)
    if not args.warehouse.is_file():
        print(f"error: no warehouse {args.warehouse}", file=sys.stderr)
        return 2
    con = duckdb.connect(str(args.warehouse), read_only=True)
    every = {name: "*" for (name,) in con.execute(
        "select table_name from duckdb_tables() where not temporary order by table_name").fetchall()}
    con.close()
    missing = sorted(set(CONTRACT) - set(every))
    if missing:
        print(f"error: {args.warehouse} has no table {', '.join(missing)}", file=sys.stderr)
        return 2
    for label, columns in (("every table the build writes", every), ("DESIGN.md's tables and key columns", CONTRACT)):
        runs = [write(args.warehouse, columns) for _ in range(args.repeat)]
        best = min(runs, key=lambda rows: sum(row[3] for row in rows))
        print(f"\n{label}: {len(best)} tables, {sum(r[3] for r in best):.1f} CPU-s, {sum(r[4] for r in best):.1f} s wall\n")
        print("| table | rows | columns | CPU-s | wall s |\n|---|---|---|---|---|")
        for table, count, width, used, wall in sorted(best, key=lambda row: -row[3]):
            if used >= 0.3:
                print(f"| `{table}` | {count:,} | {width} | {used:.1f} | {wall:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
