"""Incremental builds (pipeline/incremental.py): a warehouse brought up to date night by
night has exactly the rows of a full build of the same lake, table by table.

DESIGN "Two kinds of work": per-thread models recompute only the threads that changed.
The data crosses the 2026-03-31 bsuid cut-over (phone-only records before, bsuid after:
contact keys change under DOMAIN R2), gets the platform's conversation records and
webhook closes late (R10, R11), a late status for an old message (DESIGN: the latest
status wins), and a day in a new month (tiers and allowances start again, R24).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from pipeline.build import build
from pipeline.cli import cli
from pipeline.config import Settings, load
from pipeline.ingest import ingest
from tests.helpers import rows_differing, warehouse_tables

# simulated start -> the first billing month nights 3 and 4 recompute (see the test)
RECOMPUTED_MONTHS = {"2026-03-10": ("2026-03", "2026-03"), "2026-05-10": ("2026-05", "2026-06")}


# Across the bsuid cut-over (contacts re-keyed night after night), and after it.
@pytest.fixture(scope="module", params=["2026-03-10", "2026-05-10"])
def simulated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("incremental")
    result = CliRunner().invoke(cli, ["simulate", "--out", str(root / "sim"), "--contacts", "300",
                                      "--days", "30", "--start", request.param, "--seed", "5"])
    assert result.exit_code == 0, result.output
    return root / "sim"


def nights(simulated: Path, root: Path) -> list[list[Path]]:
    """The simulated exports cut into the files of four nights."""
    exports = simulated / "exports"
    days = sorted((exports / "messages").glob("messages-*.jsonl"))
    events = [json.loads(line) for line in (exports / "events" / "events.jsonl").read_text().splitlines()]
    # Closes of days 8-16 arrive a night late, some for threads with nothing else new.
    dates = [path.stem.removeprefix("messages-") for path in days]
    cuts = ["", dates[7], dates[16], dates[29], "9999"]
    event_files = []
    for night in (1, 2, 3, 4):
        path = root / f"night{night}" / f"events-{night}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(event) + "\n" for event in events
                                if cuts[night - 1] <= event["created_at"] < cuts[night]))
        event_files.append(path)
    # Night 3: one old delivered template message comes again, now read.
    late = root / "night3" / "messages-late.jsonl"
    late.parent.mkdir(parents=True, exist_ok=True)
    for line in days[0].read_text().splitlines():
        record = json.loads(line)
        if record.get("direction") == "outbound" and record.get("status") == "delivered":
            record["status"] = "read"
            late.write_text(json.dumps(record) + "\n")
            break
    return [
        [*days[:14], event_files[0], exports / "templates"],
        [*days[14:16], event_files[1], exports / "conversations"],
        [*days[16:29], event_files[2], late, exports / "pricing_analytics"],
        [days[29], event_files[3]],
    ]


def assert_same_tables(incremental: Path, full: Path) -> None:
    """The same tables with the same rows (build_info and build_lake_files aside: how each build ran)."""
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    con.execute(f"attach '{incremental}' as inc (read_only)")
    con.execute(f"attach '{full}' as whole (read_only)")
    assert warehouse_tables(con, "inc") == warehouse_tables(con, "whole")
    differing = [table for table in sorted(warehouse_tables(con, "whole")) if rows_differing(con, "inc", "whole", table)]
    assert differing == []


def full_build(settings: Settings, root: Path) -> Path:
    target = root / "full.duckdb"
    build(replace(settings, warehouse=target))
    return target


def test_four_nights_match_full_builds(simulated: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    settings = load(simulated / "convo.toml")
    settings = replace(settings, lake=tmp_path / "lake", warehouse=tmp_path / "warehouse.duckdb")
    notes, rebuilt = [], []
    for number, files in enumerate(nights(simulated, tmp_path), start=1):
        ingest(settings.lake, files)
        summary = build(settings, incremental=True)
        notes.append(summary.notes)
        with duckdb.connect(str(settings.warehouse), read_only=True) as con:
            rebuilt.append(con.execute("select mode, threads_rebuilt from build_info").fetchall()[0] + con.execute(
                "select count(*) from (select distinct phone_number_id, contact_key from messages)").fetchall()[0])
        full = full_build(settings, tmp_path / f"full{number}")
        assert_same_tables(settings.warehouse, full)
    assert notes[0] == ["full build: no previous warehouse"]
    assert [note for note in notes[1] if note.startswith("incremental build:")], notes[1]
    assert [note for note in notes[2] if note.startswith("incremental build:")], notes[2]
    # Night 3 brings a late status of the first day: billing is recomputed from its month.
    # Night 4 brings one more day: after the cut-over (May start) earlier months stay; across
    # it (March start) the night's bsuid records re-key threads that have March messages
    # (DOMAIN R2), so March is recomputed again.
    night3, night4 = RECOMPUTED_MONTHS[request.node.callspec.params["simulated"]]
    assert f"billing months from {night3} recomputed" in " ".join(notes[2]), notes[2]
    assert f"billing months from {night4} recomputed" in " ".join(notes[3]), notes[3]
    assert rebuilt[0][:2] == ("full", None)
    mode, threads, total = rebuilt[1]          # two new days: not every thread
    assert mode == "incremental" and 0 < threads < total


@pytest.fixture(scope="module")
def built_once(simulated: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every export of the simulated tenant ingested and built in full, once per tenant:
    a folder with `lake` and `warehouse.duckdb` that the tests copy and never change."""
    root = tmp_path_factory.mktemp("built-once")
    settings = replace(load(simulated / "convo.toml"), lake=root / "lake", warehouse=root / "warehouse.duckdb")
    ingest(settings.lake, [simulated / "exports"])
    build(settings)
    return root


def copy_of(built_once: Path, simulated: Path, tmp_path: Path) -> Settings:
    """The settings of a copy of built_once's lake and full build (mtimes kept, as the
    incremental build compares the lake's files by size and mtime)."""
    shutil.copytree(built_once / "lake", tmp_path / "lake")
    shutil.copy2(built_once / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    return replace(load(simulated / "convo.toml"), lake=tmp_path / "lake", warehouse=tmp_path / "warehouse.duckdb")


def test_nothing_new_rebuilds_no_thread(simulated: Path, built_once: Path, tmp_path: Path) -> None:
    settings = copy_of(built_once, simulated, tmp_path)
    first = built_once / "warehouse.duckdb"
    summary = build(settings, incremental=True)
    assert "incremental build: 0 of" in " ".join(summary.notes)
    assert_same_tables(settings.warehouse, first)


@pytest.mark.parametrize("change, reason", [
    ("policy", "code, data files, settings or policy in force changed since the last build"),
    ("as_of", "the as-of moved back"),
])
def test_falls_back_to_a_full_build_and_says_why(simulated: Path, built_once: Path, tmp_path: Path, change: str,
                                                 reason: str) -> None:
    settings = copy_of(built_once, simulated, tmp_path)
    as_of = None
    if change == "policy":
        settings = replace(settings, inactive_after_minutes=settings.inactive_after_minutes + 1)
    else:
        from datetime import datetime, timezone
        as_of = datetime(2026, 3, 30, tzinfo=timezone.utc)
    summary = build(settings, as_of=as_of, incremental=True)
    assert f"full build: {reason}" in summary.notes
    assert_same_tables(settings.warehouse, full_build(settings, tmp_path / "full") if as_of is None else
                       _full_as_of(settings, tmp_path, as_of))


def _full_as_of(settings: Settings, root: Path, as_of) -> Path:  # noqa: ANN001
    target = root / "full-as-of.duckdb"
    build(replace(settings, warehouse=target), as_of=as_of)
    return target


def test_replace_differing_writes_only_the_rows_that_differ() -> None:
    """Selected rows (contact 'a'): one kept as it is, one changed, one gone, one new, a
    duplicate pair that becomes one; the other contact's rows are never touched."""
    from pipeline.incremental import replace_differing

    con = duckdb.connect()
    con.execute("create table facts (contact_key varchar, month date, amount integer)")
    con.execute("""insert into facts values
        ('a', '2026-01-01', 1), ('b', '2026-01-01', 1), ('a', '2026-03-01', 2), ('a', '2026-02-01', 3),
        ('a', '2026-05-01', 5), ('a', '2026-05-01', 5)""")
    con.execute("""create table incoming as select * from (values
        ('a', date '2026-01-01', 1), ('a', date '2026-04-01', 20), ('a', date '2026-06-01', 6),
        ('a', date '2026-05-01', 5), ('a', date '2025-12-01', 7)) as rows (contact_key, month, amount)""")
    kept = con.execute("select rowid from facts where contact_key = 'a' and amount = 1").fetchall()
    untouched = con.execute("select rowid from facts where contact_key = 'b'").fetchall()

    first = replace_differing(con, "facts", "contact_key = 'a'", "incoming", "month")

    assert sorted(con.execute("select contact_key, month::varchar, amount from facts").fetchall()) == [
        ("a", "2025-12-01", 7), ("a", "2026-01-01", 1), ("a", "2026-04-01", 20), ("a", "2026-05-01", 5), ("a", "2026-06-01", 6),
        ("b", "2026-01-01", 1),
    ]
    # ('a', Jan, 1) is the same on both sides: left where it was (same rowid)
    assert con.execute("select rowid from facts where contact_key = 'a' and amount = 1").fetchall() == kept
    assert con.execute("select rowid from facts where contact_key = 'b'").fetchall() == untouched
    # deleted: Mar 2, Feb 3, both May 5 (two copies become one); inserted: Dec 7, Apr 20, Jun 6, May 5
    assert str(first) == "2025-12-01"
    # the earliest change a deleted row: January's
    assert str(replace_differing(con, "facts", "contact_key = 'a'",
                                 "(select * from facts where contact_key = 'a' and amount <> 1)", "month")) == "2026-01-01"
    assert con.execute("select count(*) from facts").fetchall() == [(5,)]
    # nothing differs: nothing written, no month
    rowids = con.execute("select rowid from facts order by rowid").fetchall()
    assert replace_differing(con, "facts", "contact_key = 'a'",
                             "(select * from facts where contact_key = 'a')", "month") is None
    assert con.execute("select rowid from facts order by rowid").fetchall() == rowids


def test_contact_keys_recomputed_by_phone_follow_conversations_and_rewritten_days(settings: Settings,
                                                                                 tmp_path: Path) -> None:
    """int_contact_keys (recompute_by=contact_phone) is recomputed for the phones a night can
    change, not only those written in the new partition (DOMAIN R2):
    * night 2: a bsuid-only record in platform conversation 77, whose only other record
      (night 1) is phone-only: that phone now pairs with the bsuid, though the new day
      never names it, and its old thread is re-keyed;
    * night 3: day 1 is rewritten (a message comes again, read, with another phone): the
      old phone, now in no message, loses its row."""
    from tests.helpers import message, write_jsonl

    day1 = [
        message(message_id="m.conv", contact_phone="+5511900000001", conversation_id=77,
                timestamp="2026-09-01T10:00:00Z"),
        message(message_id="m.pair", direction="outbound", type="text", status="delivered",
                contact_phone="+5511900000002", contact_bsuid="BR.pair", timestamp="2026-09-01T11:00:00Z",
                delivered_at="2026-09-01T11:00:05Z"),
        message(message_id="m.other", contact_phone="+5511900000003", timestamp="2026-09-01T12:00:00Z"),
    ]
    day2 = [message(message_id="m.bsuid", contact_phone=None, contact_bsuid="BR.conv", conversation_id=77,
                    timestamp="2026-09-02T10:00:00Z")]
    rewritten = [{**day1[1], "status": "read", "contact_phone": "+5511900000004"}]
    expected_keys = [
        [("+5511900000002", "BR.pair")],
        [("+5511900000001", "BR.conv"), ("+5511900000002", "BR.pair")],
        [("+5511900000001", "BR.conv"), ("+5511900000004", "BR.pair")],
    ]
    expected_message_keys = [
        [("m.conv", "+5511900000001"), ("m.other", "+5511900000003"), ("m.pair", "BR.pair")],
        [("m.bsuid", "BR.conv"), ("m.conv", "BR.conv"), ("m.other", "+5511900000003"), ("m.pair", "BR.pair")],
        [("m.bsuid", "BR.conv"), ("m.conv", "BR.conv"), ("m.other", "+5511900000003"), ("m.pair", "BR.pair")],
    ]
    for night, records in enumerate([day1, day2, rewritten]):
        ingest(settings.lake, [write_jsonl(tmp_path / f"night{night}" / "messages.jsonl", records)])
        summary = build(settings, incremental=True)
        assert any(note.startswith("incremental build:" if night else "full build:") for note in summary.notes)
        with duckdb.connect(str(settings.warehouse), read_only=True) as con:
            assert con.execute("select contact_phone, contact_bsuid from int_contact_keys "
                               "order by contact_phone").fetchall() == expected_keys[night]
            assert con.execute("select message_id, contact_key from messages "
                               "order by message_id").fetchall() == expected_message_keys[night]
        assert_same_tables(settings.warehouse, full_build(settings, tmp_path / f"full{night}"))


def test_late_closes_of_an_earlier_month_recompute_its_close_rates(simulated: Path, tmp_path: Path) -> None:
    """close_rates_daily is recomputed from the first month whose conversation_outcomes
    changed (kind=monthly, month=local_date): webhook events of days 11-15 held back and
    delivered with days 28-30, a month after the days they close and beyond the look back
    of the last as-of, change only outcomes of that earlier month."""
    settings = replace(load(simulated / "convo.toml"), lake=tmp_path / "lake", warehouse=tmp_path / "warehouse.duckdb")
    exports = simulated / "exports"
    days = sorted((exports / "messages").glob("messages-*.jsonl"))
    dates = [path.stem.removeprefix("messages-") for path in days]
    events = [json.loads(line) for line in (exports / "events" / "events.jsonl").read_text().splitlines()]
    held = [event for event in events if dates[10] <= event["created_at"] < dates[15]]
    on_time = [event for event in events if event not in held and event["created_at"] < dates[27]]
    assert held
    first = write_jsonl_events(tmp_path / "night1" / "events.jsonl", on_time)
    second = write_jsonl_events(tmp_path / "night2" / "events.jsonl",
                                held + [event for event in events if event["created_at"] >= dates[27]])
    ingest(settings.lake, [*days[:27], first, exports / "templates"])
    build(settings, incremental=True)
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        before = con.execute("select sum(agent_closes + manual_closes) from close_rates_daily "
                             "where local_date between ?::date and ?::date", [dates[10], dates[14]]).fetchall()[0][0]
    ingest(settings.lake, [*days[27:], second])
    summary = build(settings, incremental=True)
    assert f"billing months from {dates[10][:7]} recomputed" in " ".join(summary.notes), summary.notes
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        after = con.execute("select sum(agent_closes + manual_closes) from close_rates_daily "
                            "where local_date between ?::date and ?::date", [dates[10], dates[14]]).fetchall()[0][0]
    assert_same_tables(settings.warehouse, full_build(settings, tmp_path / "full"))
    assert after > before          # the held-back closes now count


def write_jsonl_events(path: Path, events: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(event) + "\n" for event in events))
    return path


def test_replace_differing_tells_null_empty_and_shifted_lists_apart() -> None:
    """Rows that differ only in a list column's NULL vs [] (or an element moved from one
    list column to the next) are different rows, though DuckDB's hash() of the whole row
    folds them together: the table must end up holding exactly `new`'s rows."""
    from pipeline.incremental import replace_differing

    con = duckdb.connect()
    con.execute("create table facts (contact_key varchar, waits double[], business double[])")
    con.execute("insert into facts values ('a', [], [1.0]), ('a', [1.0, 2.0], []), ('b', null, null)")
    con.execute("""create table incoming as select * from (values
        ('a', null::double[], [1.0]::double[]), ('a', [1.0]::double[], [2.0]::double[]))
        as rows (contact_key, waits, business)""")

    replace_differing(con, "facts", "contact_key = 'a'", "incoming")

    # every 'a' row is incoming's: (a, NULL, [1.0]) and (a, [1.0], [2.0]); b's row untouched
    assert sorted(con.execute("select contact_key, waits is null, waits, business from facts").fetchall(),
                  key=repr) == sorted([("a", True, None, [1.0]), ("a", False, [1.0], [2.0]),
                                       ("b", True, None, None)], key=repr)
