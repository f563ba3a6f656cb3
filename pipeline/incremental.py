"""Incremental builds: recompute only the contacts that changed (DESIGN "Two kinds of work").

A build records what it was built from (``build_info``: as-of, fingerprint of code,
data and settings; ``build_lake_files``: every lake file with its size and mtime).
The next build with ``incremental=True`` starts from a copy of that warehouse and:

* recomputes every cross-thread model in full, as a full build does, but those that
  declare ``recompute_by=contact_phone`` (int_contact_keys): those run for the phones of
  the new or rewritten lake partitions' messages (old rows and new) and of the platform
  conversations those are in, and only those phones' rows are replaced (``run_by_phone``);
* runs the per-thread stage (models declaring ``kind=per-thread``, pipeline/models.py)
  on the *selected contacts* only, exactly as a full build runs it on one shard: their
  old rows of every kept per-thread table are deleted and the new ones inserted. A
  per-thread model reads only its own threads' rows, so the other contacts' rows
  cannot have changed;
* recomputes the monthly models (``kind=monthly``) from the first billing month that
  changed, reading only those months of their inputs (the inputs that declare their
  month column).

Selected contacts (tenant_id x contact_key, by a hash of the two: a collision only adds
a contact, recomputed and replaced alike), a superset of those whose rows can differ:

1. contacts with a message in a lake partition added or rewritten since the last build
   (old rows of those partitions and new ones);
2. contacts whose key (DOMAIN R2, int_contact_keys) changed: old and new keys;
3. contacts of the rows that changed in a cross-thread relation the per-thread stage
   cuts by contact (``shard_by=contact_key``: the operator closes);
4. when the as-of moved: what was still open at the old as-of is judged again, i.e.
   contacts with a message within the longest window of the old as-of (customer
   service window, platform timeout, CBP conversation: the longest hour-valued policy
   row but the entry point window, plus a day for the inactivity timeout) and contacts
   with an entry point window open then (R15, R19: 72 h from its opening).

Anything else falls back to a full build, with the reason in the build's notes: no
previous warehouse or no build_info in it, other code, data files, settings or policy
values (fingerprint), a lake file removed, the template catalog changed, the as-of
moved back.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from pipeline import __version__, lake, models, paths, rates, schema
from pipeline.config import Settings

# The selection predicate of the per-thread stage on an incremental night (build._per_thread).
SELECTED = "hash(tenant_id, contact_key) in (select contact_hash from selected_contacts)"

# The contact keys (DOMAIN R2): their old and new rows are compared (item 2).
CONTACT_KEYS = "int_contact_keys"

# The rows (of `row_alias`) of a recompute_by=contact_phone model of the phones run_by_phone recomputed.
RECOMPUTED = ("exists (select 1 from recomputed_phones as phones where phones.tenant_id is not distinct from "
              "{row_alias}.tenant_id and phones.contact_phone = {row_alias}.contact_phone)")

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
    first_month: object = None     # the first billing month recomputed (a date), None: none
    months_planned: bool = False
    compared: tuple[str, ...] = ()  # cross-thread relations whose old rows were kept as prev_<name>
    recomputed: tuple[str, ...] = ()  # of those, the ones run for some phones only (prev_: their old rows)


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
    for card in rates.card_files(settings.billing.card_paths):     # every file a folder or list names
        digest.update(card.name.encode())
        digest.update(card.read_bytes() if card.is_file() else b"")
    shown = asdict(settings)
    shown.pop("api", None)                       # never hash a key
    for key in ("config_path", "lake", "warehouse", "reports", "exports", "build"):   # build: how, not what
        shown.pop(key, None)
    shown["billing"].pop("rate_card", None)      # their content is hashed above, not where they lie
    shown["billing"].pop("rate_cards", None)
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


def record(con: duckdb.DuckDBPyConnection, settings: Settings, mode: str, threads_rebuilt: int | None,
           shards: int = 1) -> None:
    """Write build_info and build_lake_files into the warehouse being built."""
    con.execute("""
        create or replace table build_info as
        select getvariable('as_of')::timestamptz as as_of, now() as built_at, ? as mode,
               ? as convo_version, ? as fingerprint, ?::bigint as threads_rebuilt,
               current_setting('memory_limit') as memory_limit, ?::integer as shards
    """, [mode, __version__, fingerprint(con, settings), threads_rebuilt, shards])
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
    any model runs. Renames the compared cross-thread tables to prev_<name>.
    """
    found = models.discover()
    kept = {model.name for model in found if model.kind == "per-thread" and not model.is_temp}
    compared = (CONTACT_KEYS, *sorted(model.name for model in found if model.shard_by == "contact_key"))
    tables = {row[0] for row in con.execute(
        "select table_name from duckdb_tables() where schema_name = 'main'").fetchall()}
    if not {"build_info", "build_lake_files", *kept, *compared} <= tables:
        return "the previous warehouse lacks tables this build keeps (built by other code)"
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
    plan = Plan(old_as_of=old_as_of, compared=compared)
    partitions = sorted(path for dataset, path in changed if dataset == "messages")
    plan.changed_partitions = len(partitions)
    by_name = {model.name: model for model in found}
    for name in compared:
        if by_name[name].recompute_by is None:     # run_by_phone keeps the recomputed phones' old rows
            con.execute(f'alter table "{name}" rename to "prev_{name}"')
    _changed_rows(con, [settings.lake / path for path in partitions])
    con.execute("create or replace temp table changed_months (first_day date)")
    return plan


def _changed_rows(con: duckdb.DuckDBPyConnection, files: list[Path]) -> None:
    """The contact fields of the new or rewritten partitions' messages, read once for the
    night: as the lake has them now (changed_rows_now) and as the last build had them
    (changed_rows_before, from its messages of those UTC dates)."""
    # a webhook row names no tenant: its business number's (as stg_messages does)
    con.execute(
        "create or replace temp table changed_rows_now as "
        + (f"select coalesce(files.tenant_id, numbers.tenant_id) as tenant_id, files.contact_bsuid, "
           f"files.contact_phone, files.conversation_id from read_parquet({lake.sql_list(files)}) as files "
           "left join phone_numbers as numbers on numbers.phone_number_id = files.phone_number_id"
           if files else
           "select null::bigint as tenant_id, null::varchar as contact_bsuid, null::varchar as contact_phone, "
           "null::bigint as conversation_id where false"))
    dates = sorted({path.parent.name.removeprefix("date=") for path in files})
    con.execute("create or replace temp table changed_dates (utc_date date)")
    if dates:
        con.executemany("insert into changed_dates values (?::date)", [(d,) for d in dates])
    # the range first: a plain comparison, before each message's UTC date is worked out
    con.execute("""
        create or replace temp table changed_rows_before as
        select tenant_id, contact_key, contact_phone, conversation_id from messages
        where sent_at >= ?::date::timestamptz and sent_at < (?::date + 1)::timestamptz
            and cast(timezone('UTC', sent_at) as date) in (select utc_date from changed_dates)
    """, [dates[0] if dates else "9999-12-31", dates[-1] if dates else "9999-12-30"])


def select_contacts(con: duckdb.DuckDBPyConnection, plan: Plan) -> None:
    """The contacts this night recomputes (items 1-4), as selected_contacts(contact_hash).

    Call once the cross-thread models the per-thread stage reads are rebuilt and before
    any per-thread model runs: the kept per-thread tables still hold the last build's rows.
    """
    changed_rows = " union all ".join(
        f"select tenant_id, contact_key from ((select * from prev_{name} except all select * from {name}) "
        f"union all (select * from {name} except all select * from prev_{name}))"
        for name in plan.compared if name != CONTACT_KEYS
    ) or "select null::bigint, null::varchar where false"
    lookback = _lookback(con)
    moved = plan.old_as_of is not None and con.execute(
        "select getvariable('as_of') is distinct from ?::timestamptz", [plan.old_as_of]).fetchall()[0][0]
    recent = (
        "select tenant_id, contact_key from messages "
        "where sent_at > ?::timestamptz - to_microseconds(?::bigint) "
        "union all "
        "select tenant_id, contact_key from int_bill_entry_points where expires_at > ?::timestamptz"
        if moved else "select null::bigint, null::varchar where false"
    )
    parameters = [plan.old_as_of, int(lookback.total_seconds() * 1_000_000), plan.old_as_of] if moved else []
    con.execute(f"""
        create or replace temp table selected_contacts as
        with current_keys as (
            select * from {CONTACT_KEYS} as keys
            where {RECOMPUTED.format(row_alias='keys') if CONTACT_KEYS in plan.recomputed else 'true'}
        ),
        changed_keys as (
            select tenant_id, contact_phone, contact_bsuid from (
                (select * from prev_{CONTACT_KEYS} except select * from current_keys)
                union all
                (select * from current_keys except select * from prev_{CONTACT_KEYS})
            )
        ),
        contacts as (
            -- DOMAIN R2 (sql/functions/with_contact_key.sql)
            select tenant_id, contact_key from with_contact_key('changed_rows_now', '{CONTACT_KEYS}')
            union all
            select tenant_id, contact_key from changed_rows_before
            union all
            select tenant_id, contact_phone from changed_keys
            union all
            select tenant_id, contact_bsuid from changed_keys
            union all
            {changed_rows}
            union all
            {recent}
        )
        select distinct hash(tenant_id, contact_key) as contact_hash
        from contacts
        where contact_key is not null
    """, parameters)
    plan.total_threads = con.execute(
        "select count(*) from (select distinct phone_number_id, contact_key from messages)").fetchall()[0][0]


def run_by_phone(con: duckdb.DuckDBPyConnection, plan: Plan, model: models.Model) -> None:
    """Run a recompute_by=contact_phone model for the phones this night can change, on its
    inputs' rows of those phones and their conversations, and replace those phones' rows
    (their old rows kept as prev_<name> for select_contacts).

    The phones: those of the new or rewritten partitions' messages, as the lake has them
    now and as the last build had them (its messages of those UTC dates), and those of
    every message in a platform conversation one of these is in (DOMAIN R2 pairs a phone
    with the bsuid of its conversation's bsuid-only records).
    """
    con.execute("""
        create or replace temp table changed_phone_rows as
        select tenant_id, contact_phone, conversation_id from changed_rows_now
        union all
        select tenant_id, contact_phone, conversation_id from changed_rows_before
    """)
    con.execute("""
        create or replace temp table recomputed_phones as
        with conversations as (
            select distinct tenant_id, conversation_id from changed_phone_rows where conversation_id is not null
        ),
        partners as (
            select staged.tenant_id, staged.contact_phone
            from stg_messages as staged
            semi join conversations
                on conversations.tenant_id is not distinct from staged.tenant_id
                and conversations.conversation_id = staged.conversation_id
            where staged.conversation_id is not null
        )
        select distinct tenant_id, contact_phone from (
            select tenant_id, contact_phone from changed_phone_rows
            union all
            select tenant_id, contact_phone from partners
        )
        where contact_phone is not null
    """)
    database = con.execute("select current_database()").fetchall()[0][0]
    main, by_phone = f'"{database}".main', f'"{database}".by_phone'
    # The model reads its inputs through views holding the rows of those phones and of their
    # platform conversations only (all a phone's rows depend on); the schema is put first
    # on the search path, so the model's own SQL is run as it is.
    con.execute(f"create schema if not exists {by_phone}")
    for read in sorted(model.reads):
        relation = f"{main}.{models.quoted(read)}"
        columns = {row[0] for row in con.execute(f"describe select * from {relation}").fetchall()}
        if not {"tenant_id", "contact_phone"} <= columns:
            continue
        of_phones = RECOMPUTED.format(row_alias="staged")
        in_conversations = "false"
        if "conversation_id" in columns:
            conversations = models.quoted(f"{read}__conversations")
            con.execute(f"create or replace temp table {conversations} as select distinct tenant_id, conversation_id "
                        f"from {relation} as staged where conversation_id is not null and {of_phones}")
            in_conversations = (f"exists (select 1 from temp.main.{conversations} as conversations where "
                                "conversations.tenant_id is not distinct from staged.tenant_id "
                                "and conversations.conversation_id = staged.conversation_id)")
        con.execute(f"create or replace view {by_phone}.{models.quoted(read)} as "
                    f"select * from {relation} as staged where {of_phones} or {in_conversations}")
    name = models.quoted(model.name)
    recomputed = RECOMPUTED.format(row_alias="old_row")
    con.execute(f"create or replace temp table prev_{model.name} as "
                f"select * from {main}.{name} as old_row where {recomputed}")
    staged = models.quoted(f"{model.name}__new")
    con.execute(f"set search_path = '{by_phone},{main}'")
    try:
        con.execute(f"create or replace temp table {staged} as "
                    f"select * from ({model.body}) as new_row where {RECOMPUTED.format(row_alias='new_row')}")
    finally:
        con.execute("reset search_path")
    con.execute(f"drop schema {by_phone} cascade")
    replace_differing(con, f"{main}.{name}", recomputed, f"temp.main.{staged}")
    con.execute(f"drop table temp.main.{staged}")
    plan.recomputed = (*plan.recomputed, model.name)


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


def replace_rows(con: duckdb.DuckDBPyConnection, plan: Plan, model: models.Model, new: str) -> None:
    """Make the selected contacts' rows of a kept per-thread table those in `new`, noting the
    earliest billing month of a row that differs (by the model's month column)."""
    if model.name == "messages":
        plan.affected_threads = con.execute(
            f"select count(*) from (select distinct phone_number_id, contact_key from {new})").fetchall()[0][0]
    first = replace_differing(con, f"main.{models.quoted(model.name)}", SELECTED, new,
                              model.month or model.changes_month)
    if first is not None:
        con.execute("insert into changed_months values (date_trunc('month', ?::date)::date)", [first])


def _nested(kind: str) -> bool:
    """A DuckDB type name of a list, array, struct, map or union."""
    return kind.endswith("]") or kind.startswith(("STRUCT", "MAP", "UNION"))


def replace_differing(con: duckdb.DuckDBPyConnection, table: str, where: str, new: str,
                      month: str | None = None) -> object:
    """Make the rows of `table` that match `where` (which may name them `old_row`) the rows of
    `new`, writing only those that differ.

    Old and new rows are compared by a hash of the whole row (a collision could only
    hide a change with odds of 1 in 2^64): a row whose hash is found as many times on
    both sides stays where it is; the other old rows are deleted by rowid and the other
    new rows inserted. A night changes few of the rows it recomputes (most of a
    contact's history comes out the same), so a table is rewritten where it changed only.
    Returns the earliest `month` value of a row deleted or inserted (None: none, or no
    column given).
    """
    # DuckDB's hash() folds a nested value's elements into the row's hash: NULL and [] hash
    # alike, and so do ([1, 2], []) and ([1], [2]) in adjacent list columns. Nested columns
    # are hashed by their text (NULL stays NULL; doubles print so that they read back).
    columns = con.execute(f"describe select * from {table}").fetchall()
    row_hash = "hash(" + ", ".join(
        '"' + column.replace('"', '""') + '"' + ("::varchar" if _nested(kind) else "")
        for column, kind, *_ in columns) + ")"
    month_value = f"{month}::date" if month is not None else "null::date"
    # One transaction: the rowids read stay those of the rows deleted (no checkpoint between).
    con.execute("begin transaction")
    try:
        con.execute(f"create or replace temp table replaced_old as "
                    f"select rowid as row_id, {row_hash} as row_hash, {month_value} as month_value "
                    f"from {table} as old_row where {where}")
        con.execute(f"create or replace temp table replaced_new as "
                    f"select {row_hash} as row_hash, {month_value} as month_value, * from {new}")
        con.execute("""
            create or replace temp table replaced_same as
            select row_hash
            from (select row_hash, count(*) as copies from replaced_old group by row_hash) as old_copies
            join (select row_hash, count(*) as copies from replaced_new group by row_hash) as new_copies
                using (row_hash, copies)
        """)
        first = con.execute("""
            select min(month_value) from (
                select month_value from replaced_old anti join replaced_same using (row_hash)
                union all
                select month_value from replaced_new anti join replaced_same using (row_hash)
            )
        """).fetchall()[0][0]
        con.execute(f"delete from {table} where rowid in "
                    "(select row_id from replaced_old anti join replaced_same using (row_hash))")
        con.execute(f"insert into {table} by name select * exclude (row_hash, month_value) "
                    "from replaced_new anti join replaced_same using (row_hash)")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    for name in ("replaced_old", "replaced_new", "replaced_same"):
        con.execute(f"drop table {name}")
    return first


def _first_month(con: duckdb.DuckDBPyConnection, plan: Plan) -> None:
    """The first billing month the monthly models recompute: the earliest changed, and the
    month of the old as-of's look back when the as-of moved (wasted_spend judges
    re-engagement templates as of it)."""
    moved = plan.old_as_of is None or con.execute(
        "select getvariable('as_of') is distinct from ?::timestamptz", [plan.old_as_of]).fetchall()[0][0]
    if moved and plan.old_as_of is not None:
        start = plan.old_as_of - _lookback(con) - timedelta(days=1)     # a day: local dates
        con.execute("insert into changed_months values (date_trunc('month', ?::timestamptz)::date)", [start])
    plan.first_month = con.execute("select min(first_day) from changed_months").fetchall()[0][0]
    plan.months_planned = True


def run_month_model(con: duckdb.DuckDBPyConnection, plan: Plan, model: models.Model) -> None:
    """Recompute one monthly model from plan.first_month on (nothing when no month changed).

    Its inputs that declare a month column are read through views of the schema
    ``months`` holding only their rows from that month on; the schema is put first on
    the search path, so the model's own SQL is run as it is.
    """
    if not plan.months_planned:
        _first_month(con, plan)
    if plan.first_month is None:
        return
    database = con.execute("select current_database()").fetchall()[0][0]
    main, months = f'"{database}".main', f'"{database}".months'
    con.execute(f"create schema if not exists {months}")
    by_name = {found.name: found for found in models.discover()}
    for name in sorted(model.reads):
        column = by_name[name].month
        if column is not None and not by_name[name].is_temp:      # a temp step holds those months only
            con.execute(f"create or replace view {months}.{models.quoted(name)} as select * from {main}.{models.quoted(name)} "
                        f"where {column} >= '{plan.first_month}'::date or {column} is null")
    keep = f"{model.month} >= '{plan.first_month}'::date or {model.month} is null"
    name = models.quoted(model.name)
    if model.is_temp:
        con.execute(f"set search_path = '{months},{main}'")
        try:
            con.execute(f"create or replace temp table {name} as select * from ({model.body}) where {keep}")
        finally:
            con.execute("reset search_path")
        return
    staged = models.quoted(f"{model.name}__new")
    con.execute(f"set search_path = '{months},{main}'")
    try:          # a temp table: the new rows are not written to the warehouse file twice
        con.execute(f"create or replace temp table {staged} as select * from ({model.body}) where {keep}")
    finally:
        con.execute("reset search_path")
    replace_differing(con, f"{main}.{name}", keep, f"temp.main.{staged}")
    con.execute(f"drop table temp.main.{staged}")


def finish(con: duckdb.DuckDBPyConnection) -> None:
    """Drop what only this build needed."""
    names = [row[0] for row in con.execute(
        "select table_name from duckdb_tables() where schema_name = 'main' and table_name like 'prev\\_%' escape '\\'"
    ).fetchall()]
    for name in names:
        con.execute(f'drop table if exists "{name}"')
    con.execute("drop schema if exists months cascade")
