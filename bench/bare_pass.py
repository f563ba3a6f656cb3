"""The floor a build is measured against: one bare DuckDB pass over the same messages.

    .venv/bin/python bench/bare_pass.py --lake DIR [--memory-limit 6.5GB]

Reads the lake's messages (Parquet), sorts every thread (phone_number_id x the contact's
bsuid, else phone) by time, numbers the 24 h gap windows of its inbound messages
(DOMAIN R4) and checks every delivered outbound message against the last inbound
message at or before it (an ASOF join: was a customer service window open, R6). No
contact keys through phone pairing, no lifecycle, no billing, nothing written: what the
cheapest engine must do at least. Prints one JSON line (engine, messages, wall_s, cpu_s,
peak_rss_mb, windows, open_at_delivery) for bench/run.py.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import duckdb

WINDOW_HOURS = 24        # DOMAIN R4, as data/policy.csv has it since 2020

BARE_PASS = f"""
with messages as (
    select
        phone_number_id,
        coalesce(contact_bsuid, contact_phone) as contact,
        sent_at,
        coalesce(delivered_at, sent_at) as event_at,
        direction,
        status
    from read_parquet(?)
),
inbound as (
    select
        phone_number_id, contact, sent_at,
        sent_at - lag(sent_at) over (partition by phone_number_id, contact order by sent_at)
            > interval {WINDOW_HOURS} hours as is_window_start
    from messages
    where direction = 'inbound'
),
windows as (
    select count(*) filter (where is_window_start is distinct from false) as windows from inbound
),
delivered as (
    select phone_number_id, contact, event_at
    from messages
    where direction = 'outbound' and status in ('delivered', 'read')
),
checked as (
    select count(*) filter (where delivered.event_at < inbound.sent_at + interval {WINDOW_HOURS} hours) as open_at_delivery
    from delivered
    asof left join inbound
        on inbound.phone_number_id = delivered.phone_number_id
        and inbound.contact = delivered.contact
        and inbound.sent_at <= delivered.event_at
)
select (select windows from windows), (select open_at_delivery from checked), (select count(*) from messages)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", type=Path, required=True)
    parser.add_argument("--memory-limit", default="6500MB", help="DuckDB's limit, as convo build's default")
    args = parser.parse_args()
    files = sorted(str(path) for path in (args.lake / "messages").rglob("*.parquet"))
    con = duckdb.connect()
    con.execute("set memory_limit = ?", [args.memory_limit])
    con.execute("set TimeZone = 'UTC'")
    started, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    windows, open_at_delivery, messages = con.execute(BARE_PASS, [files]).fetchall()[0]
    after = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({
        "engine": "duckdb bare pass",
        "messages": messages,
        "wall_s": round(time.perf_counter() - started, 2),
        "cpu_s": round(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, 2),
        "peak_rss_mb": round(after.ru_maxrss / 1024),
        "windows": windows,
        "open_at_delivery": open_at_delivery,
    }))


if __name__ == "__main__":
    main()
