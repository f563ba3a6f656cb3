"""Incremental builds: recompute only the threads that changed (DESIGN "Two kinds of work").

A build records what it was built from (``build_info``: as-of, fingerprint of code,
data and settings; ``build_lake_files``: every lake file with its size and mtime).
The next build with ``incremental=True`` starts from a copy of that warehouse and:

* recomputes every cross-thread model in full, as a full build does (contact keys,
  countries, closes, the platform's records, the billing calendar, tiers, costs, ...);
* recomputes the per-thread models (THREAD_MODELS) only for the *affected threads*
  (phone_number_id x contact_key), deleting their old rows and inserting new ones.
  A per-thread model reads only its own threads' rows (DESIGN: shard-safe), so its
  rows for the other threads cannot have changed.

Affected threads, a superset of the threads whose rows can differ from the last build:

1. threads of the contacts with a message in a lake partition added or rewritten
   since the last build (old rows of those partitions and new ones);
2. contacts whose contact key (DOMAIN R2, int_contact_keys) changed: all their
   threads, old and new keys (a contact's row, int_contacts, is rebuilt from its own
   messages: it changes only with them or with its key);
3. threads whose operator closes (int_conv_closes) changed: the rows of the two
   versions are compared (a per-thread model may read no other cross-thread table
   keyed by thread: run_model refuses, so a new model cannot be missed silently);
4. when the as-of moved: what was still open at the old as-of is judged again, i.e.
   threads with a message within the longest window of the old as-of (customer
   service window, platform timeout, CBP conversation: the longest hour-valued policy
   row but the entry point window, plus a day for the inactivity timeout) and threads
   with an entry point window open then (R15, R19: 72 h from its opening).

Anything else falls back to a full build, with the reason in the build's notes: no
previous warehouse or no build_info in it, other code, data files, settings or policy
values (fingerprint), a lake file removed, the template catalog changed, the as-of
moved back.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from pipeline import __version__, lake, paths, schema
from pipeline.config import Settings

# Per-thread models and the key their old rows are deleted by: "thread" =
# (phone_number_id, contact_key); "contact" = (tenant_id, contact_key); "phone" =
# contact_phone (a phone's country depends on the phone alone: only phones in the new
# lake files are looked up); "message" = message_id of the affected threads'
# messages; "conversation" = conversation_id of their rebuilt conversations (old and new).
THREAD_MODELS: dict[str, str] = {
    "int_phone_countries": "phone",
    "int_contacts": "contact",
    "messages": "thread",
    "int_bill_outbound": "thread",
    "int_thread_boundaries": "thread",
    "int_bill_entry_points": "thread",
    "int_conv_lifecycle": "thread",
    "service_windows": "thread",
    "int_bill_timeline": "message",
    "conversations": "thread",
    "int_bill_template_conversations": "thread",
    "int_outcome_messages": "thread",
    "int_bill_service_conversations": "message",
    "int_outcome_waits": "conversation",
    "int_bill_messages": "message",
    "conversation_outcomes": "thread",
}

# Cross-thread models whose rows belong to a billing month and depend only on that
# month's rows of their inputs (volume tiers and free allowances count per month,
# DOMAIN R24): recomputed from the first month that changed (below), not in full.
MONTH_MODELS = ("int_bill_units", "billable_units", "costs_daily", "costs_monthly", "wasted_spend",
                "regime_whatif")

# Per-thread models the month models read, and how a row of each names its month:
# the first changed month is the earliest month of a row that differs between the last
# build and this one (only the affected threads' rows are compared).
MONTH_INPUTS = {
    "messages": "local_date",
    "int_bill_outbound": "billing_date",
    "int_bill_messages": "billing_date",
    "int_bill_timeline": None,           # per outbound message: int_bill_outbound's billing_date
}

# Cross-thread models whose old and new rows are compared (affected threads, item 2-3).
COMPARED = ("int_contact_keys", "int_conv_closes")

# The entry point window outlasts the other windows: its open ones are read from the
# last build's int_bill_entry_points instead of widening the look back (item 4).
ENTRY_POINT_WINDOW = "entry_point_window_hours"


@dataclass
class Plan:
    """What an incremental build recomputes, and what it found (for notes and tests)."""
    old_as_of: datetime | None
    changed_partitions: int = 0
    affected_threads: int = 0
    total_threads: int = 0
    phase: str = "start"           # "contacts" once the first set is computed, "threads" once widened
    first_month: object = None     # the first billing month recomputed (a date), None: none
    months_planned: bool = False


def fingerprint(con: duckdb.DuckDBPyConnection, settings: Settings) -> str:
    """Code, data files, settings and the policy values in force: same -> same rows per thread.

    sql/ingest/ is left out: it shapes the lake, whose files are compared on their own.
    """
    digest = hashlib.sha256()
    digest.update(__version__.encode())
    for root in (paths.sql_dir(), paths.data_dir()):
        for path in sorted(p for p in root.rglob("*") if p.is_file() and "ingest" not in p.relative_to(root).parts):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    digest.update(Path(settings.billing.rate_card).read_bytes() if Path(settings.billing.rate_card).is_file() else b"")
    shown = asdict(settings)
    shown.pop("api", None)                       # never hash a key
    for key in ("config_path", "lake", "warehouse", "reports", "exports", "build"):   # build: how, not what
        shown.pop(key, None)
    shown["billing"].pop("rate_card", None)      # its content is hashed above, not where it lies
    digest.update(repr(shown).encode())
    variables = con.execute(
        "select name, value::varchar from duckdb_variables() where name <> 'as_of' order by name"
    ).fetchall()
    digest.update(repr(variables).encode())
    return digest.hexdigest()


def lake_files(lake_dir: Path) -> list[tuple[str, str, int, int]]:
    """(dataset, path relative to the lake, size, mtime_ns) of every lake file."""
    rows = []
    for name in [*schema.DATASETS, "quarantine"]:
        for path in lake.files(lake_dir, name):
            stat = path.stat()
            rows.append((name, str(path.relative_to(lake_dir)), stat.st_size, stat.st_mtime_ns))
    return rows


def record(con: duckdb.DuckDBPyConnection, settings: Settings, mode: str, threads_rebuilt: int | None) -> None:
    """Write build_info and build_lake_files into the warehouse being built."""
    con.execute("""
        create or replace table build_info as
        select getvariable('as_of')::timestamptz as as_of, now() as built_at, ? as mode,
               ? as convo_version, ? as fingerprint, ?::bigint as threads_rebuilt,
               current_setting('memory_limit') as memory_limit
    """, [mode, __version__, fingerprint(con, settings), threads_rebuilt])
    con.execute("create or replace table build_lake_files "
                "(dataset varchar, path varchar, size bigint, mtime_ns bigint)")
    rows = lake_files(settings.lake)
    if rows:
        con.executemany("insert into build_lake_files values (?, ?, ?, ?)", rows)


def copy_previous(target: Path, building: Path) -> str | None:
    """Copy the last warehouse to start from; the reason when an incremental build cannot."""
    if not target.is_file():
        return "no previous warehouse"
    if Path(str(target) + ".wal").exists():
        return "the previous warehouse has a write-ahead log (opened for writing since)"
    shutil.copyfile(target, building)
    return None


def start(con: duckdb.DuckDBPyConnection, settings: Settings, as_of: datetime | None) -> Plan | str:
    """Check the copied warehouse can be brought up to date; a Plan, or the reason it cannot.

    Call after the build's settings, lake views and variables are in place and before
    any model runs. Renames the COMPARED tables to prev_<name> for comparison.
    """
    tables = {row[0] for row in con.execute(
        "select table_name from duckdb_tables() where schema_name = 'main'").fetchall()}
    needed = {"build_info", "build_lake_files", *THREAD_MODELS, *COMPARED}
    if not needed <= tables:
        return "the previous warehouse has no build_info (built before incremental builds)"
    old_as_of, old_print = con.execute("select as_of, fingerprint from build_info").fetchall()[0]
    if old_print != fingerprint(con, settings):
        return "code, data files, settings or policy in force changed since the last build"
    if old_as_of is not None and as_of is not None and as_of < old_as_of:
        return "the as-of moved back"
    old = {(d, p): (s, m) for d, p, s, m in con.execute("select * from build_lake_files").fetchall()}
    now = {(d, p): (s, m) for d, p, s, m in lake_files(settings.lake)}
    removed = sorted(key for key in old if key not in now)
    if removed:
        return f"a lake file was removed ({removed[0][1]})"
    changed = {key for key, value in now.items() if old.get(key) != value}
    if any(dataset == "templates" for dataset, _ in changed):
        return "the template catalog changed"
    plan = Plan(old_as_of=old_as_of)
    partitions = sorted(path for dataset, path in changed if dataset == "messages")
    plan.changed_partitions = len(partitions)
    con.execute("create or replace temp table changed_message_files (path varchar)")
    if partitions:
        con.executemany("insert into changed_message_files values (?)",
                        [(str(settings.lake / path),) for path in partitions])
    for name in COMPARED:
        con.execute(f'alter table "{name}" rename to "prev_{name}"')
    con.execute("create schema if not exists delta")
    con.execute("create schema if not exists months")
    return plan


def before_model(con: duckdb.DuckDBPyConnection, plan: Plan, name: str) -> None:
    """Compute the affected sets when the models they need are in place."""
    if name == "int_phone_countries":
        files = [Path(row[0]) for row in con.execute("select path from changed_message_files").fetchall()]
        new_phones = (f"select distinct contact_phone from read_parquet({lake.sql_list(files)})" if files
                      else "select null::varchar as contact_phone where false")
        con.execute("create or replace view delta.stg_messages_phones as "
                    f"select * from stg_messages semi join ({new_phones}) as new_phones using (contact_phone)")
    if plan.phase == "start" and name in ("int_contacts", "messages"):
        _affected_contacts(con, plan)
        con.execute("create or replace temp table changed_months (first_day date)")
        plan.phase = "contacts"
    elif name in THREAD_MODELS and name not in ("int_contacts", "messages") and plan.phase == "contacts":
        _affected_threads(con, plan)
    elif name in MONTH_MODELS and not plan.months_planned:
        _first_month(con, plan)


def _affected_contacts(con: duckdb.DuckDBPyConnection, plan: Plan) -> None:
    # DOMAIN R2: the key is the bsuid, else the bsuid paired with the phone, else the phone.
    key = ("coalesce({m}.contact_bsuid, keys.contact_bsuid, {m}.contact_phone)")
    new_files = [row[0] for row in con.execute("select path from changed_message_files").fetchall()]
    new_rows = (
        f"select tenant_id, contact_bsuid, contact_phone from read_parquet({lake.sql_list([Path(p) for p in new_files])})"
        if new_files else
        "select null::bigint as tenant_id, null::varchar as contact_bsuid, null::varchar as contact_phone where false"
    )
    dates = [Path(p).parent.name.removeprefix("date=") for p in new_files]
    con.execute("create or replace temp table changed_dates (utc_date date)")
    if dates:
        con.executemany("insert into changed_dates values (?::date)", [(d,) for d in dates])
    con.execute(f"""
        create or replace temp table affected_contacts as
        with new_rows as ({new_rows}),
        changed_keys as (
            select tenant_id, contact_phone, contact_bsuid from (
                (select * from prev_int_contact_keys except select * from int_contact_keys)
                union all
                (select * from int_contact_keys except select * from prev_int_contact_keys)
            )
        )
        select distinct tenant_id, contact_key from (
            select new_rows.tenant_id, {key.format(m='new_rows')} as contact_key
            from new_rows
            left join int_contact_keys as keys
                on keys.tenant_id = new_rows.tenant_id and keys.contact_phone = new_rows.contact_phone
            union all
            select tenant_id, contact_key from messages
            where cast(timezone('UTC', sent_at) as date) in (select utc_date from changed_dates)
            union all
            select tenant_id, contact_phone from changed_keys
            union all
            select tenant_id, contact_bsuid from changed_keys
        )
        where contact_key is not null
    """)
    # The affected contacts' whole history, keyed with today's keys (the messages model's input).
    con.execute(f"""
        create or replace table delta.stg_messages as
        select stg_messages.*
        from stg_messages
        left join int_contact_keys as keys
            on keys.tenant_id = stg_messages.tenant_id and keys.contact_phone = stg_messages.contact_phone
        semi join affected_contacts as affected
            on affected.tenant_id = stg_messages.tenant_id
            and affected.contact_key = {key.format(m='stg_messages')}
    """)
    # Their threads under the old keys (the rows to delete) and the new ones.
    con.execute(f"""
        create or replace temp table affected_threads as
        select distinct phone_number_id, contact_key from messages
        semi join affected_contacts using (tenant_id, contact_key)
        union
        select distinct delta_messages.phone_number_id, {key.format(m='delta_messages')}
        from delta.stg_messages as delta_messages
        left join int_contact_keys as keys
            on keys.tenant_id = delta_messages.tenant_id and keys.contact_phone = delta_messages.contact_phone
    """)


def _affected_threads(con: duckdb.DuckDBPyConnection, plan: Plan) -> None:
    """Widen the affected threads once the closes are rebuilt (items 3-4)."""
    for name in ("int_conv_closes",):
        if not _exists(con, name):
            raise RuntimeError(f"incremental build: {name} must be built before the per-thread models")
    lookback = _lookback(con)
    moved = plan.old_as_of is None or con.execute(
        "select getvariable('as_of') is distinct from ?::timestamptz", [plan.old_as_of]).fetchall()[0][0]
    recent = (
        "select phone_number_id, contact_key from messages "
        "where sent_at > ?::timestamptz - to_microseconds(?::bigint) "
        "union all "
        "select phone_number_id, contact_key from int_bill_entry_points where expires_at > ?::timestamptz"
        if moved and plan.old_as_of is not None else
        "select null::bigint, null::varchar where false"
    )
    parameters = ([plan.old_as_of, int(lookback.total_seconds() * 1_000_000), plan.old_as_of]
                  if "?" in recent else [])
    con.execute(f"""
        insert into affected_threads
        select distinct phone_number_id, contact_key from (
            select phone_number_id, contact_key from (
                (select * from prev_int_conv_closes except all select * from int_conv_closes)
                union all
                (select * from int_conv_closes except all select * from prev_int_conv_closes)
            )
            union all
            {recent}
        )
        where contact_key is not null
        except
        select * from affected_threads
    """, parameters)
    con.execute("""
        create or replace temp table affected_messages as
        select message_id from messages semi join affected_threads using (phone_number_id, contact_key)
    """)
    con.execute("""
        create or replace temp table affected_conversations as
        select id as conversation_id from conversations semi join affected_threads using (phone_number_id, contact_key)
    """)
    # The messages model ran on the first set: its rows for the wider one are read back.
    con.execute("create or replace table delta.messages as select * from main.messages "
                "semi join affected_threads using (phone_number_id, contact_key)")
    plan.affected_threads = con.execute(          # as they are now (a re-keyed thread counts once)
        "select count(*) from (select distinct phone_number_id, contact_key from messages "
        "semi join affected_threads using (phone_number_id, contact_key))").fetchall()[0][0]
    plan.total_threads = con.execute(
        "select count(*) from (select distinct phone_number_id, contact_key from messages)").fetchall()[0][0]
    plan.phase = "threads"


def _lookback(con: duckdb.DuckDBPyConnection) -> timedelta:
    """The longest hour-valued policy in force but the entry point window, plus a day."""
    longest = con.execute("""
        select max(variables.value::double)
        from duckdb_variables() as variables
        semi join (
            select key from ref_policy where unit = 'hours'
            union all
            select key from ref_pricing_policy where unit = 'hours'
        ) as policies on policies.key = variables.name
        where variables.name <> ?
    """, [ENTRY_POINT_WINDOW]).fetchall()[0][0] or 0
    return timedelta(hours=longest + 24)


def run_model(con: duckdb.DuckDBPyConnection, name: str, body: str, references: set[str]) -> None:
    """Recompute one per-thread model for the affected threads and swap their rows in."""
    rewritten = body
    kind = THREAD_MODELS[name]
    for reference in sorted(references):
        if reference == "stg_messages" and kind == "phone":
            target = 'delta."stg_messages_phones"'
        elif reference == "stg_messages" or THREAD_MODELS.get(reference) in ("thread", "contact", "message",
                                                                             "conversation"):
            target = f'delta."{reference}"'
        elif _has_thread_key(con, reference):
            if reference not in COMPARED:
                raise RuntimeError(f"incremental build: per-thread model {name} reads {reference}, a "
                                   "cross-thread table keyed by thread whose changes are not compared")
            con.execute(f'create or replace view delta."{reference}" as select * from main."{reference}" '
                        f"semi join affected_threads using (phone_number_id, contact_key)")
            target = f'delta."{reference}"'
        else:
            continue
        rewritten = re.sub(rf'\b(from|join)(\s+)"?{reference}"?(?![\w"])', rf"\1\2{target}",
                           rewritten, flags=re.IGNORECASE)
    con.execute(f'create or replace table delta."{name}" as {rewritten}')
    if name in MONTH_INPUTS:
        _changed_months(con, name, kind)
    con.execute(f'delete from main."{name}" as old where {_replaced(name, kind)}')
    con.execute(f'insert into main."{name}" select * from delta."{name}"')


def _old_rows(name: str, kind: str) -> str:
    """The last build's rows of the affected threads (those run_model replaces)."""
    return f'select * from main."{name}" as old where {_replaced(name, kind)}'


def _replaced(name: str, kind: str) -> str:
    """Which rows `old` of main.<name> a per-thread model's new rows replace, by its kind."""
    if kind == "thread":
        return ("exists (select 1 from affected_threads as affected where affected.phone_number_id = "
                "old.phone_number_id and affected.contact_key = old.contact_key)")
    if kind == "contact":
        return ("exists (select 1 from affected_contacts as affected where affected.tenant_id = old.tenant_id "
                "and affected.contact_key = old.contact_key)")
    if kind == "phone":
        return f'old.contact_phone in (select contact_phone from delta."{name}")'
    if kind == "message":
        return "old.message_id in (select message_id from affected_messages)"
    return ("old.conversation_id in (select conversation_id from affected_conversations "
            "union select id from delta.conversations)")


def _changed_months(con: duckdb.DuckDBPyConnection, name: str, kind: str) -> None:
    """Record the earliest month of a row that differs between the last build and this one."""
    column = MONTH_INPUTS[name] or "message_id"
    # Rows compared by a hash of the whole row (a collision could only hide a change of
    # 1 in 2^64; the rows themselves are wide).
    old = f"select {column}, hash(old_row) as row_hash from ({_old_rows(name, kind)}) as old_row"
    new = f'select {column}, hash(new_row) as row_hash from delta."{name}" as new_row'
    differing = f"(({old}) except all ({new})) union all (({new}) except all ({old}))"
    if MONTH_INPUTS[name] is None:
        query = (f"select min(outbound.billing_date) from ({differing}) as changed "
                 "join main.int_bill_outbound as outbound using (message_id)")
    else:
        query = f"select min({column}) from ({differing})"
    con.execute(f"insert into changed_months select date_trunc('month', ({query}))::date")


def _first_month(con: duckdb.DuckDBPyConnection, plan: Plan) -> None:
    """The first billing month the month models recompute: the earliest changed, and the
    month of the old as-of's look back when the as-of moved (wasted_spend judges
    re-engagement templates as of it)."""
    moved = plan.old_as_of is None or con.execute(
        "select getvariable('as_of') is distinct from ?::timestamptz", [plan.old_as_of]).fetchall()[0][0]
    if moved and plan.old_as_of is not None:
        start = plan.old_as_of - _lookback(con) - timedelta(days=1)     # a day: local dates
        con.execute("insert into changed_months values (date_trunc('month', ?::timestamptz)::date)", [start])
    plan.first_month = con.execute("select min(first_day) from changed_months").fetchall()[0][0]
    plan.months_planned = True


def run_month_model(con: duckdb.DuckDBPyConnection, plan: Plan, name: str, body: str,
                    references: set[str]) -> None:
    """Recompute one month model from plan.first_month on (nothing when no month changed)."""
    if plan.first_month is None:
        return
    rewritten = body
    for reference in sorted(references):
        month = _month_column(con, reference)
        if month is None:
            continue
        con.execute(f'create or replace view months."{reference}" as select * from main."{reference}" '
                    f"where {month} >= '{plan.first_month}'::date or {month} is null")
        rewritten = re.sub(rf'\b(from|join)(\s+)"?{reference}"?(?![\w"])', rf'\1\2months."{reference}"',
                           rewritten, flags=re.IGNORECASE)
    month = _month_column(con, name)
    if month is None:
        raise RuntimeError(f"incremental build: month model {name} has no billing_month or billing_date")
    keep = f"{month} >= '{plan.first_month}'::date or {month} is null"
    con.execute(f'create or replace table months."{name}_new" as select * from ({rewritten}) where {keep}')
    con.execute(f'delete from main."{name}" where {keep}')
    con.execute(f'insert into main."{name}" select * from months."{name}_new"')


def _month_column(con: duckdb.DuckDBPyConnection, name: str) -> str | None:
    columns = {row[0] for row in con.execute(
        "select column_name from duckdb_columns() where table_name = ? and schema_name = 'main'", [name]).fetchall()}
    if "billing_month" in columns:
        return "billing_month"
    if "billing_date" in columns:
        return "billing_date"
    return None


def finish(con: duckdb.DuckDBPyConnection) -> None:
    """Drop what only this build needed."""
    for name in COMPARED:
        con.execute(f'drop table if exists "prev_{name}"')
    con.execute("drop schema if exists delta cascade")
    con.execute("drop schema if exists months cascade")


def _has_thread_key(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    columns = {row[0] for row in con.execute(
        "select column_name from duckdb_columns() where table_name = ? and schema_name = 'main'", [name]).fetchall()}
    return {"phone_number_id", "contact_key"} <= columns


def _exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(con.execute(
        "select count(*) from duckdb_tables() where table_name = ? and schema_name = 'main'", [name]).fetchall()[0][0])
