"""Synthetic messages exports at any size, straight from DuckDB SQL (no Python per row).

    .venv/bin/python bench/generate.py --messages 10M --days 30 --out bench/results/10M
    .venv/bin/python bench/generate.py --out bench/results/10M --next-day     # one more day after the last

Writes DESIGN.md's messages export format as Parquet, one file per local day
(`exports/messages-YYYY-MM-DD.parquet`), and a convo.toml for them beside `exports/`
(four business numbers in four timezones, the illustrative rate card), so that
`convo ingest exports`, `convo build` and `convo nightly` run in that folder as is.

The model (every random choice is a hash of contact, session, position and a salt, so
the same options give the same rows): ~18 messages per contact; contacts in six
countries (Brazil, India, US, Mexico, Spain, Indonesia), a fifth of them phone-only,
the rest with a bsuid too; each contact talks to one of four business numbers; 1-8
sessions per contact over the period, each on one local day of its business number
(a session never crosses the local midnight), of 1-7 messages 30-930 s apart that
alternate user and business; half the sessions are opened by a marketing, utility or
authentication template, a tenth by an ad (referral_source 'ad'); a tenth of the
business's free-form replies are utility templates; 2 % of free-form sends fail with
131047; a tenth of the sessions end with an operator's close (`bench_sessions.is_closed`,
written as webhook events by bench/windows.py). The default period starts 2025-06-16,
so the CBP -> PMP switch of 2025-07-01 is inside it.

bench/billing.py and bench/windows.py write the same model straight into a lake
(`write_lake`), without exports and ingest.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb

MESSAGES_PER_CONTACT = 18          # 4.5 sessions (1-8) x 4 messages (1-7) on average
MAX_SESSIONS = 8                   # sessions per contact over the period: 1..MAX_SESSIONS
LONGEST_SESSION_SECONDS = 6 * 929 + 2  # 7 messages 929 s apart, the last delivered 2 s later
START = date(2025, 6, 16)          # the CBP -> PMP switch of 2025-07-01 falls inside 30 days
DAYS = 30
PARAMETERS = "generated.json"      # what the folder was generated with, for --next-day
# DuckDB's memory while generating: the sessions table (~25 million rows at 100 million
# messages) and one day's messages at a time; past it DuckDB spills to the folder.
MEMORY_LIMIT = "4GB"

# Business numbers: (phone_number_id, timezone, display number); contact_index % 4 picks one.
NUMBERS = (
    (104711550000101, "America/Sao_Paulo", "551140000101"),
    (104711550000202, "Asia/Kolkata", "912240000202"),
    (104711550000303, "Europe/Madrid", "34910000303"),
    (104711550000404, "America/New_York", "12120000404"),
)
# Contact countries: (phone prefix, bsuid country); hash(contact) % 6 picks one.
COUNTRIES = (("+5511", "BR"), ("+9198", "IN"), ("+1212", "US"), ("+5255", "MX"), ("+3461", "ES"), ("+6281", "ID"))
NAMES = ("Ana", "Bruno", "Chen", "Divya", "Elena", "Farid", "Gabriela", "Hiro")


def config_text() -> str:
    """convo.toml for the generated folder (exports/ beside it, as `convo nightly` reads)."""
    numbers = "".join(
        f'\n[[phone_numbers]]\nphone_number_id = {number}\ntenant_id = 1\ntimezone = "{zone}"\n'
        f'display_phone_number = "{display}"\n'
        for number, zone, display in NUMBERS)
    return ('[paths]\nlake = "lake"\nwarehouse = "warehouse.duckdb"\nreports = "reports_out"\nexports = "exports"\n'
            + numbers
            + '\n[billing]\nrate_card = "illustrative_usd"\nbusiness_country = "BR"\n'
              "auth_international_eligible = true\n")


def _sql_list(values: tuple[object, ...]) -> str:
    return "[" + ", ".join(f"'{value}'" if isinstance(value, str) else str(value) for value in values) + "]"


def sessions_sql(contacts: int, days: int, start: date, day: int | None = None) -> str:
    """Creates table bench_sessions: one row per session.

    day None: the period, sessions on local days 0..days-1. day >= days: one more day after
    it, at the same rate per contact (each candidate session kept with probability 1/days),
    its session_index beyond the period's so message ids stay unique.
    """
    if day is None:
        first_session, day_index, keep = "0", f"hash(contact_index, session_index, 'day') % {days}", "true"
    else:
        first_session = str(MAX_SESSIONS * (1 + day - days))
        day_index, keep = str(day), f"hash(contact_index, session_index, 'extra-day') % {days} = 0"
    return f"""
create or replace table bench_sessions as
with contacts as (
    select
        contact_index,
        cast(contact_index % {len(NUMBERS)} as integer) as number_slot,
        cast(hash(contact_index, 'country') % {len(COUNTRIES)} as integer) as country_slot,
        hash(contact_index, 'phone-only') % 5 = 0 as is_phone_only
    from range({contacts}) as contacts(contact_index)
),
candidates as (
    select
        contacts.*,
        session_index
    from contacts
    cross join lateral (
        select unnest(range({first_session},
            {first_session} + 1 + cast(hash(contact_index, {first_session}, 'sessions') % {MAX_SESSIONS} as bigint)))
            as session_index
    )
),
kept as (
    select
        *,
        cast({day_index} as integer) as day_index,
        cast(hash(contact_index, session_index, 'start') % {86400 - LONGEST_SESSION_SECONDS} as bigint)
            as local_start_seconds
    from candidates
    where {keep}
),
final as (
    select
        contact_index,
        session_index,
        number_slot,
        country_slot,
        is_phone_only,
        day_index,
        timezone(
            {_sql_list(tuple(zone for _, zone, _ in NUMBERS))}[number_slot + 1],
            cast(date '{start.isoformat()}' + day_index as timestamp) + to_seconds(local_start_seconds)
        ) as started_at,
        cast(1 + hash(contact_index, session_index, 'length') % 7 as bigint) as message_count,
        cast(30 + hash(contact_index, session_index, 'pace') % 900 as bigint) as seconds_apart,
        cast(hash(contact_index, session_index, 'opener') % 10 as integer) as opener_roll,
        hash(contact_index, session_index, 'close') % 10 = 0 as is_closed
    from kept
)
select * from final
"""


def messages_sql(where: str = "true") -> str:
    """One row per message of the sessions matching `where`: the export's fields plus
    sent_at, local_date and the generator's keys (contact_index, session_index, position)."""
    return f"""
with sessions as (
    select
        *,
        case
            when opener_roll < 2 then 'marketing'
            when opener_roll < 4 then 'utility'
            when opener_roll < 5 then 'authentication'
        end as opener_category,
        opener_roll = 9 as is_ad_arrival
    from bench_sessions
    where {where}
),
positions as (
    select
        sessions.*,
        position,
        started_at + to_seconds(position * seconds_apart) as sent_at,
        case
            when opener_category is not null and position = 0 then 'template'
            when (position + (case when opener_category is not null then 1 else 0 end)) % 2 = 0 then 'inbound'
            when hash(contact_index, session_index, position, 'utility') % 10 = 0 then 'utility'
            else 'free_form'
        end as kind,
        hash(contact_index, session_index, position, 'fail') % 50 = 0 as is_failed_roll
    from sessions
    cross join lateral (select unnest(range(message_count)) as position)
),
final as (
    select
        'wamid.' || contact_index || '.' || session_index || '.' || position as message_id,
        cast(1 as bigint) as tenant_id,
        {_sql_list(tuple(number for number, _, _ in NUMBERS))}[number_slot + 1] as phone_number_id,
        case when not is_phone_only
            then {_sql_list(tuple(country for _, country in COUNTRIES))}[country_slot + 1] || '.' || contact_index
        end as contact_bsuid,
        {_sql_list(tuple(prefix for prefix, _ in COUNTRIES))}[country_slot + 1]
            || lpad(cast(contact_index as varchar), 8, '0') as contact_phone,
        {_sql_list(NAMES)}[cast(1 + hash(contact_index, 'name') % {len(NAMES)} as integer)] as contact_name,
        case when kind = 'inbound' then 'inbound' else 'outbound' end as direction,
        case when kind in ('template', 'utility') then 'template' else 'text' end as type,
        case when kind = 'template' then opener_category || '_tpl' when kind = 'utility' then 'order_update' end
            as template_name,
        case when kind = 'template' then opener_category when kind = 'utility' then 'utility' end
            as template_category,
        case
            when kind = 'inbound' then 'received'
            when kind = 'free_form' and is_failed_roll then 'failed'
            else 'delivered'
        end as status,
        cast(case when kind = 'free_form' and is_failed_roll then 131047 end as bigint) as error_code,
        sent_at,
        case when kind <> 'inbound' and not (kind = 'free_form' and is_failed_roll)
            then sent_at + interval 2 second end as delivered_at,
        case when kind = 'inbound' and position = 0 and is_ad_arrival then 'ad' end as referral_source,
        cast(null as bigint) as conversation_id,
        contact_index,
        session_index,
        position,
        day_index
    from positions
)
select * from final
"""


# The export's columns (DESIGN.md "Inputs", messages), in its order.
EXPORT_COLUMNS = """
    message_id, tenant_id, phone_number_id, contact_bsuid, contact_phone, contact_name, direction, type,
    template_name, template_category, status, error_code, sent_at as timestamp, delivered_at,
    referral_source, conversation_id,
    cast(null as struct(billable boolean, pricing_model varchar, type varchar, category varchar)) as pricing
"""


@dataclass
class Generated:
    out: str
    messages: int          # rows written, summed from the sessions (sum of message_count)
    contacts: int
    sessions: int
    days: list[str]        # local days written, one file each
    files: int             # written by this call
    bytes: int             # their size
    seconds: float


def _connect(scratch: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    con.execute("set enable_progress_bar = false")
    con.execute(f"set memory_limit = '{MEMORY_LIMIT}'")
    scratch.mkdir(parents=True, exist_ok=True)
    con.execute(f"set temp_directory = '{scratch}'")
    return con


def contacts_for(messages: int) -> int:
    return max(1, round(messages / MESSAGES_PER_CONTACT))


def write_exports(out: Path, messages: int, days: int = DAYS, start: date = START,
                  next_day: bool = False) -> Generated:
    """The period's export files and convo.toml into out (replacing out), or with
    next_day the one day after the last one written there (parameters from out)."""
    started = time.perf_counter()
    exports = out / "exports"
    if next_day:
        saved = json.loads((out / PARAMETERS).read_text())
        messages, days, start = saved["messages"], saved["days"], date.fromisoformat(saved["start"])
        day = saved["next_day"]
    else:
        shutil.rmtree(out, ignore_errors=True)
        exports.mkdir(parents=True)
        (out / "convo.toml").write_text(config_text())
        day = None
    contacts = contacts_for(messages)
    scratch = out / ".generate-tmp"
    con = _connect(scratch)
    con.execute(sessions_sql(contacts, days, start, day))
    day_indexes = [index for (index,) in con.execute(
        "select distinct day_index from bench_sessions order by day_index").fetchall()]
    written = []
    for index in day_indexes:
        local_day = start + timedelta(days=index)
        target = exports / f"messages-{local_day.isoformat()}.parquet"
        partial = exports / f".{target.name}.partial"    # hidden from ingest until complete
        con.execute(f"copy (select {EXPORT_COLUMNS} from ({messages_sql(f'day_index = {index}')}) "
                    "order by sent_at, contact_index, session_index, position) "
                    f"to '{partial}' (format parquet, compression zstd)")
        partial.rename(target)
        written.append(target)
    total_messages, sessions = con.execute("select sum(message_count), count(*) from bench_sessions").fetchall()[0]
    con.close()
    shutil.rmtree(scratch, ignore_errors=True)
    last = (day if day is not None else days - 1)
    (out / PARAMETERS).write_text(json.dumps({"messages": messages, "days": days, "start": start.isoformat(),
                                              "next_day": last + 1}))
    return Generated(out=str(out), messages=int(total_messages or 0), contacts=contacts, sessions=int(sessions),
                     days=[(start + timedelta(days=index)).isoformat() for index in day_indexes],
                     files=len(written), bytes=sum(path.stat().st_size for path in written),
                     seconds=time.perf_counter() - started)


def write_lake(folder: Path, messages: int, days: int = DAYS, start: date = START,
               events: bool = False) -> dict[str, int]:
    """The model straight into a lake under folder in ingest's layout (no exports, no
    ingest), for benchmarks of the build alone; with events, the operators' closes too.
    Leaves folder/lake; returns counts."""
    (folder / "lake").mkdir(parents=True, exist_ok=True)
    con = _connect(folder / ".generate-tmp")
    con.execute(sessions_sql(contacts_for(messages), days, start))
    con.execute(f"""
        create or replace table bench_messages as
        select
            message_id, tenant_id, phone_number_id, contact_bsuid, contact_phone, contact_name, direction,
            type, template_name, template_category, status, error_code, sent_at, delivered_at,
            referral_source, conversation_id,
            cast(null as boolean) as pricing_billable,
            cast(null as varchar) as pricing_model,
            cast(null as varchar) as pricing_type,
            cast(null as varchar) as pricing_category,
            'bench' as source_file,
            cast(row_number() over (order by contact_index, session_index, position) as bigint) as source_line,
            cast(sent_at as date) as date
        from ({messages_sql()})""")
    tables = [("messages", "bench_messages")]
    if events:
        con.execute(f"""
            create or replace table bench_events as
            select
                'evt.' || contact_index || '.' || session_index as event_id,
                'whatsapp.conversation.ended' as type,
                started_at + to_seconds(message_count * seconds_apart + 300) as created_at,
                cast(null as bigint) as conversation_id,
                cast(1 as bigint) as tenant_id,
                {_sql_list(tuple(number for number, _, _ in NUMBERS))}[number_slot + 1] as phone_number_id,
                {_sql_list(tuple(prefix for prefix, _ in COUNTRIES))}[country_slot + 1]
                    || lpad(cast(contact_index as varchar), 8, '0') as contact_phone,
                case when not is_phone_only
                    then {_sql_list(tuple(country for _, country in COUNTRIES))}[country_slot + 1] || '.' || contact_index
                end as contact_bsuid,
                'ended' as status,
                'manual_close' as ended_reason,
                started_at,
                started_at + to_seconds(message_count * seconds_apart + 300) as ended_at,
                'bench' as source_file,
                cast(row_number() over (order by contact_index, session_index) as bigint) as source_line,
                cast(started_at as date) as date
            from bench_sessions
            where is_closed""")
        tables.append(("events", "bench_events"))
    for dataset, table in tables:
        target = folder / "lake" / dataset
        con.execute(f"copy {table} to '{target}' (format parquet, compression zstd, partition_by (date), "
                    "filename_pattern 'data', write_partition_columns false, overwrite_or_ignore)")
        for written in target.glob("date=*/data*.parquet"):
            written.rename(written.with_name("data.parquet"))
    counts = {
        "messages": con.execute("select count(*) from bench_messages").fetchall()[0][0],
        "threads": con.execute("select count(*) from (select distinct phone_number_id, contact_phone "
                               "from bench_messages)").fetchall()[0][0],
        "delivered": con.execute("select count(*) from bench_messages "
                                 "where direction = 'outbound' and status = 'delivered'").fetchall()[0][0],
        "closes": con.execute("select count(*) from bench_events").fetchall()[0][0] if events else 0,
    }
    con.close()
    shutil.rmtree(folder / ".generate-tmp", ignore_errors=True)
    return counts


def count(messages: int, days: int = DAYS, start: date = START, next_day: int | None = None) -> int:
    """How many messages the model has, from the sessions alone (no message rows)."""
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    con.execute(sessions_sql(contacts_for(messages), days, start, next_day))
    total = con.execute("select sum(message_count) from bench_sessions").fetchall()[0][0]
    con.close()
    return int(total or 0)


def parse_size(text: str) -> int:
    """10M, 1.5M, 100k, 1000000 -> a number of messages."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kKmM]?)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a number of messages: {text!r} (e.g. 1M, 250k, 1000000)")
    scale = {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2).lower()]
    value = int(float(match.group(1)) * scale)
    if value < 1:
        raise argparse.ArgumentTypeError(f"at least one message, got {text!r}")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=parse_size, default=1_000_000, help="e.g. 1M, 10M, 100M (default 1M)")
    parser.add_argument("--days", type=int, default=DAYS, help=f"local days in the period (default {DAYS})")
    parser.add_argument("--start", type=date.fromisoformat, default=START,
                        help=f"first local day, YYYY-MM-DD (default {START})")
    parser.add_argument("--out", type=Path, required=True, help="folder: exports/ and convo.toml go there")
    parser.add_argument("--next-day", action="store_true",
                        help="add one more day's file after the last one in --out (same parameters)")
    args = parser.parse_args()
    if args.days < 1:
        parser.error("--days must be at least 1")
    if args.next_day and not (args.out / PARAMETERS).is_file():
        parser.error(f"--next-day: {args.out} was not written by bench/generate.py (no {PARAMETERS})")
    generated = write_exports(args.out, args.messages, args.days, args.start, next_day=args.next_day)
    print(f"wrote {generated.messages:,} messages of {generated.contacts:,} contacts in {generated.files} files "
          f"({generated.bytes / 1e6:,.0f} MB) to {args.out / 'exports'} in {generated.seconds:.1f} s",
          file=sys.stderr)
    print(json.dumps(asdict(generated)))


if __name__ == "__main__":
    main()
