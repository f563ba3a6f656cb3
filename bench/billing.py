"""Benchmark: the billing engine (sql/intermediate/int_bill_*, the billing marts) on N messages.

    .venv/bin/python bench/billing.py                      # 10 million messages
    .venv/bin/python bench/billing.py --messages 1000000   # a quick look

1. Generates a lake directly with DuckDB SQL into Parquet, in the layout ingest writes
   (no JSON, no ingest): ~555,000 contacts per 10 million messages in six countries on
   four business numbers over 30 days from 2025-06-16 (so the CBP -> PMP switch of
   2025-07-01 is inside), sessions of 1-7 messages opened by the user or by a template
   (marketing, utility, authentication), utility templates inside sessions, ad arrivals,
   2 % of free-form sends failed with 131047.
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

DAYS = 30
START = "2025-06-16"
MESSAGES_PER_CONTACT = 18
PER_THREAD = ("int_bill_calendar", "int_bill_outbound", "int_bill_entry_points", "int_bill_timeline",
              "int_bill_template_conversations", "int_bill_service_conversations", "int_bill_messages")
CROSS_THREAD = ("int_bill_rules_daily", "int_bill_rate_quarters", "int_bill_units", "billable_units",
                "costs_daily", "costs_monthly", "pricing_reconciliation", "analytics_reconciliation",
                "wasted_spend", "regime_whatif")
CONFIG = """\
[paths]
lake = "lake"
warehouse = "warehouse.duckdb"

[[phone_numbers]]
phone_number_id = 104711550000101
tenant_id = 1
timezone = "America/Sao_Paulo"

[[phone_numbers]]
phone_number_id = 104711550000202
tenant_id = 1
timezone = "Asia/Kolkata"

[[phone_numbers]]
phone_number_id = 104711550000303
tenant_id = 1
timezone = "Europe/Madrid"

[[phone_numbers]]
phone_number_id = 104711550000404
tenant_id = 1
timezone = "America/New_York"

[billing]
rate_card = "illustrative_usd"
business_country = "BR"
auth_international_eligible = true
"""

# Every random choice is a hash of (contact, session, position, salt): deterministic.
GENERATE = """
create or replace table bench_sessions as
with contacts as (
    select
        contact_index,
        104711550000101 + (contact_index % 4) * 101 as phone_number_id,
        ['+5511', '+9198', '+1212', '+5255', '+3461', '+6281'][cast(1 + hash(contact_index, 'country') % 6 as bigint)]
            || lpad(cast(contact_index as varchar), 8, '0') as contact_phone
    from range($contacts) as contacts(contact_index)
),
sessions as (
    select
        contacts.*,
        session_index,
        timestamptz '{start}' + to_seconds(cast(hash(contact_index, session_index, 'start') % ($days * 86400) as bigint))
            as started_at,
        cast(1 + hash(contact_index, session_index, 'length') % 7 as bigint) as message_count,
        30 + hash(contact_index, session_index, 'pace') % 900 as seconds_apart,
        hash(contact_index, session_index, 'opener') % 10 as opener_roll
    from contacts
    cross join lateral (select unnest(range(cast(1 + hash(contact_index, 'sessions') % 8 as bigint))) as session_index)
)
select
    *,
    case
        when opener_roll < 2 then 'marketing'
        when opener_roll < 4 then 'utility'
        when opener_roll < 5 then 'authentication'
    end as opener_category,
    opener_roll = 9 as is_ad_arrival
from sessions;

create or replace table bench_messages as
with positions as (
    select
        sessions.*,
        position,
        started_at + to_seconds(cast(position * seconds_apart as bigint)) as sent_at,
        case
            when opener_category is not null and position = 0 then 'template'
            when (position + (case when opener_category is not null then 1 else 0 end)) % 2 = 0 then 'inbound'
            when hash(contact_index, session_index, position, 'utility') % 10 = 0 then 'utility'
            else 'free_form'
        end as kind
    from bench_sessions as sessions
    cross join lateral (select unnest(range(message_count)) as position)
)
select
    'wamid.' || contact_index || '.' || session_index || '.' || position as message_id,
    cast(1 as bigint) as tenant_id,
    phone_number_id,
    cast(null as varchar) as contact_bsuid,
    contact_phone,
    'Ana' as contact_name,
    case when kind = 'inbound' then 'inbound' else 'outbound' end as direction,
    case when kind in ('template', 'utility') then 'template' else 'text' end as type,
    case when kind = 'template' then opener_category || '_tpl' when kind = 'utility' then 'order_update' end
        as template_name,
    case when kind = 'template' then opener_category when kind = 'utility' then 'utility' end as template_category,
    case
        when kind = 'inbound' then 'received'
        when kind = 'free_form' and hash(message_id, 'fail') % 50 = 0 then 'failed'
        else 'delivered'
    end as status,
    cast(case when kind = 'free_form' and hash(message_id, 'fail') % 50 = 0 then 131047 end as bigint) as error_code,
    sent_at,
    case when kind <> 'inbound' then sent_at + interval 2 second end as delivered_at,
    case when kind = 'inbound' and position = 0 and is_ad_arrival then 'ad' end as referral_source,
    cast(null as bigint) as conversation_id,
    cast(null as boolean) as pricing_billable,
    cast(null as varchar) as pricing_model,
    cast(null as varchar) as pricing_type,
    cast(null as varchar) as pricing_category,
    'bench' as source_file,
    cast(row_number() over () as bigint) as source_line,
    cast(sent_at as date) as date
from positions;
"""


def generate(folder: Path, messages: int) -> dict[str, float]:
    """The lake and convo.toml under folder; returns counts and seconds."""
    started = time.perf_counter()
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "lake").mkdir(parents=True)
    (folder / "convo.toml").write_text(CONFIG)
    contacts = max(1, messages // MESSAGES_PER_CONTACT)
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    con.execute(GENERATE.replace("$contacts", str(contacts)).replace("$days", str(DAYS)).replace("{start}", START))
    target = folder / "lake" / "messages"
    con.execute(f"copy bench_messages to '{target}' (format parquet, compression zstd, partition_by (date), "
                "filename_pattern 'data', write_partition_columns false)")
    for written in target.glob("date=*/data*.parquet"):
        written.rename(written.with_name("data.parquet"))
    counts = con.execute("""
        select count(*), count(distinct (phone_number_id, contact_phone)),
            count(*) filter (where direction = 'outbound' and status = 'delivered')
        from bench_messages""").fetchall()[0]
    con.close()
    return {"messages": counts[0], "threads": counts[1], "delivered": counts[2],
            "seconds": time.perf_counter() - started}


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
