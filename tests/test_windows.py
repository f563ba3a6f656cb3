"""Customer service windows (DOMAIN R3-R6): the service_windows table and the stored
in_service_window macro, built for real from JSONL through the lake into DuckDB."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from pipeline import policy
from pipeline.build import BuildError
from tests.helpers import KOLKATA, MADRID, SAO_PAULO, T0, UTC, build_warehouse, inbound, outbound, warehouse



def windows(con: duckdb.DuckDBPyConnection, contact: str) -> list[tuple]:
    return con.execute(
        "select window_number, opened_at, last_inbound_at, expires_at, inbound_count "
        "from service_windows where contact_key = ? order by window_number", [contact],
    ).fetchall()


H = timedelta(hours=1)
S = timedelta(seconds=1)

SCENARIOS = [
    # DOMAIN R4: a gap of exactly 24 h continues the window, 24 h + 1 s starts a new one;
    # outbound messages never extend it.
    inbound("x1", "BR.exact", T0),
    outbound("x2", "BR.exact", T0 + 23 * H),
    inbound("x3", "BR.exact", T0 + 24 * H),
    outbound("x4", "BR.exact", T0 + 47 * H),
    inbound("x5", "BR.exact", T0 + 48 * H + S),
    # A window across local midnight in Kolkata: 23:50 IST and 00:10 IST the next day.
    inbound("k1", "IN.midnight", datetime(2026, 9, 1, 18, 20, tzinfo=UTC), phone_number_id=KOLKATA),
    inbound("k2", "IN.midnight", datetime(2026, 9, 1, 18, 40, tzinfo=UTC), phone_number_id=KOLKATA),
    # Across the end of DST in Madrid: 10:00 CEST -> 09:00 CET next day is exactly 24 h
    # (continues); 10:00 CEST -> 09:30 CET is 24.5 h though the wall clock shows 23.5 h.
    inbound("d1", "ES.dstexact", datetime(2026, 10, 24, 8, 0, tzinfo=UTC), phone_number_id=MADRID),
    inbound("d2", "ES.dstexact", datetime(2026, 10, 25, 8, 0, tzinfo=UTC), phone_number_id=MADRID),
    inbound("d3", "ES.dstbreak", datetime(2026, 10, 24, 8, 0, tzinfo=UTC), phone_number_id=MADRID),
    inbound("d4", "ES.dstbreak", datetime(2026, 10, 25, 8, 30, tzinfo=UTC), phone_number_id=MADRID),
    # DOMAIN R2: phone-only before the bsuid cut-over, then seen with its bsuid: one thread.
    inbound("p1", "+5511911112222", datetime(2026, 3, 30, 20, 0, tzinfo=UTC)),
    inbound("p2", "+5511911112222", datetime(2026, 3, 31, 10, 0, tzinfo=UTC), contact_bsuid="BR.phone2bsuid"),
    # A call is an inbound message too (R4); a business that only sends templates has no window.
    inbound("c1", "BR.caller", T0, type="call"),
    outbound("o1", "BR.templatesonly", T0, template="promo"),
    # The same contact on two numbers: two threads (R3).
    inbound("n1", "BR.twonumbers", T0),
    inbound("n2", "BR.twonumbers", T0 + H, phone_number_id=KOLKATA),
]
AS_OF = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    return warehouse(tmp_path_factory.mktemp("windows"), SCENARIOS, as_of=AS_OF)


def test_exactly_24_hours_continues_and_one_second_more_breaks(con: duckdb.DuckDBPyConnection) -> None:
    # DOMAIN R4: gaps <= 24 h continue; expires 24 h after the last inbound message.
    assert windows(con, "BR.exact") == [
        (1, T0, T0 + 24 * H, T0 + 48 * H, 2),
        (2, T0 + 48 * H + S, T0 + 48 * H + S, T0 + 72 * H + S, 1),
    ]


def test_window_across_local_midnight(con: duckdb.DuckDBPyConnection) -> None:
    # DOMAIN R1/R4: local days switch at midnight, windows do not care.
    assert con.execute("select local_date from messages where message_id in ('k1', 'k2') order by 1").fetchall() \
        == [(datetime(2026, 9, 1).date(),), (datetime(2026, 9, 2).date(),)]
    assert windows(con, "IN.midnight") == [(
        1, datetime(2026, 9, 1, 18, 20, tzinfo=UTC), datetime(2026, 9, 1, 18, 40, tzinfo=UTC),
        datetime(2026, 9, 2, 18, 40, tzinfo=UTC), 2,
    )]


def test_window_across_dst_counts_elapsed_hours(con: duckdb.DuckDBPyConnection) -> None:
    # DOMAIN R4: 24 h of elapsed time, whatever the local clock does.
    assert windows(con, "ES.dstexact") == [(
        1, datetime(2026, 10, 24, 8, 0, tzinfo=UTC), datetime(2026, 10, 25, 8, 0, tzinfo=UTC),
        datetime(2026, 10, 26, 8, 0, tzinfo=UTC), 2,
    )]
    assert windows(con, "ES.dstbreak") == [
        (1, datetime(2026, 10, 24, 8, 0, tzinfo=UTC), datetime(2026, 10, 24, 8, 0, tzinfo=UTC),
         datetime(2026, 10, 25, 8, 0, tzinfo=UTC), 1),
        (2, datetime(2026, 10, 25, 8, 30, tzinfo=UTC), datetime(2026, 10, 25, 8, 30, tzinfo=UTC),
         datetime(2026, 10, 26, 8, 30, tzinfo=UTC), 1),
    ]


def test_phone_only_contact_later_seen_with_bsuid_is_one_thread(con: duckdb.DuckDBPyConnection) -> None:
    # DOMAIN R2/R3: the phone-only record belongs to the bsuid seen with that phone.
    assert windows(con, "+5511911112222") == []
    assert windows(con, "BR.phone2bsuid") == [(
        1, datetime(2026, 3, 30, 20, 0, tzinfo=UTC), datetime(2026, 3, 31, 10, 0, tzinfo=UTC),
        datetime(2026, 4, 1, 10, 0, tzinfo=UTC), 2,
    )]


def test_calls_open_windows_templates_do_not_and_threads_are_per_number(con: duckdb.DuckDBPyConnection) -> None:
    # DOMAIN R3, R4.
    assert windows(con, "BR.caller") == [(1, T0, T0, T0 + 24 * H, 1)]
    assert windows(con, "BR.templatesonly") == []
    got = con.execute("select phone_number_id, opened_at from service_windows where contact_key = 'BR.twonumbers' "
                      "order by 1").fetchall()
    assert got == [(SAO_PAULO, T0), (KOLKATA, T0 + H)]


def test_service_windows_grain_is_unique(con: duckdb.DuckDBPyConnection) -> None:
    assert con.execute("select count(*), count(distinct (phone_number_id, contact_key, window_number)) "
                       "from service_windows").fetchone() == (10, 10)
    assert con.execute("select count(*) from service_windows where tenant_id is null or expires_at <= opened_at "
                       "or last_inbound_at < opened_at").fetchone() == (0,)


@pytest.mark.parametrize(("moment", "expected"), [
    (T0 - S, False),                  # before the first inbound message
    (T0, True),                       # DOMAIN R6: the message itself is in (t - 24 h, t]
    (T0 + 47 * H, True),              # extended by the inbound message at +24 h
    (T0 + 48 * H - S, True),
    (T0 + 48 * H, False),             # (t - 24 h, t] excludes t - 24 h
    (T0 + 48 * H + S, True),          # the next window
    (T0 + 72 * H + S, False),
])
def test_in_service_window_macro(con: duckdb.DuckDBPyConnection, moment: datetime, expected: bool) -> None:
    # DOMAIN R6, asked the way a notebook would.
    got = con.execute("select in_service_window(?, ?, ?)", [SAO_PAULO, "BR.exact", moment]).fetchone()
    assert got == (expected,)


def test_windows_follow_the_as_of(tmp_path: Path) -> None:
    # Messages after the build's as-of do not exist yet for the per-thread models.
    con, summary = build_warehouse(tmp_path, SCENARIOS, as_of=T0 + 30 * H)
    assert windows(con, "BR.exact") == [(1, T0, T0 + 24 * H, T0 + 48 * H, 2)]
    assert con.execute("select as_of from int_thread_as_of").fetchone() == (T0 + 30 * H,)
    assert [line for line in summary.checks if line.startswith("conversations:")] == [
        "conversations: 7 rebuilt; nothing exported to compare with (no conversation records, "
        "no webhook events naming a conversation)",
    ]


def test_duplicates_and_out_of_order_input_give_the_same_tables(tmp_path: Path,
                                                                con: duckdb.DuckDBPyConnection) -> None:
    # Exports repeat records and come in any order: the same windows and conversations.
    shuffled = list(SCENARIOS) + SCENARIOS[:5] + [dict(SCENARIOS[1], status="read")]
    random.Random(3).shuffle(shuffled)
    again = warehouse(tmp_path, shuffled, as_of=AS_OF)
    for table, order in (("service_windows", "phone_number_id, contact_key, window_number"),
                         ("conversations", "phone_number_id, contact_key, started_at")):
        query = f"select * from {table} order by {order}"
        assert again.execute(query).fetchall() == con.execute(query).fetchall()


def test_per_thread_models_give_the_same_rows_on_a_subset_of_threads(tmp_path: Path,
                                                                     con: duckdb.DuckDBPyConnection) -> None:
    # DESIGN "Two kinds of work": the per-thread stage can run on any shard of threads.
    shard = [record for record in SCENARIOS if record["contact_bsuid"] in ("BR.exact", "ES.dstbreak")]
    alone = warehouse(tmp_path, shard, as_of=AS_OF)
    for table, order in (("service_windows", "window_number"), ("conversations", "started_at")):
        query = (f"select * from {table} where contact_key in ('BR.exact', 'ES.dstbreak') "
                 f"order by phone_number_id, contact_key, {order}")
        assert alone.execute(query).fetchall() == con.execute(query).fetchall()


# --- the window lengths are policy data (data/policy.csv), not SQL literals -----------

POLICY_HEADER = "key,value,unit,effective_from,effective_to,domain_rule,note\n"


def test_window_and_timeout_lengths_come_from_the_policy_file(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # The same messages with a 12 h customer service window and a 12 h platform timeout.
    path = tmp_path / "policy.csv"
    path.write_text(POLICY_HEADER
                    + "customer_service_window_hours,12,hours,2020-01-01,,R4,test\n"
                    + "platform_conversation_timeout_hours,12,hours,2020-01-01,,R8,test\n")
    monkeypatch.setattr(policy, "default_path", lambda: path)
    con = warehouse(tmp_path / "run", [inbound("a", "BR.short", T0), inbound("b", "BR.short", T0 + 12 * H),
                                       inbound("c", "BR.short", T0 + 24 * H + S)], as_of=AS_OF)
    assert windows(con, "BR.short") == [
        (1, T0, T0 + 12 * H, T0 + 24 * H, 2),
        (2, T0 + 24 * H + S, T0 + 24 * H + S, T0 + 36 * H + S, 1),
    ]
    got = con.execute("select started_at, ended_at, messages_count from conversations order by 1").fetchall()
    assert got == [(T0, T0 + 12 * H, 1), (T0 + 12 * H, T0 + 24 * H, 1), (T0 + 24 * H + S, T0 + 36 * H + S, 1)]
    assert con.execute("select key, value from ref_policy order by key").fetchall() == [
        ("customer_service_window_hours", 12.0), ("platform_conversation_timeout_hours", 12.0),
    ]


@pytest.mark.parametrize(("rows", "error"), [
    ("customer_service_window_hours,24h,hours,2020-01-01,,R4,x\n", ":2: value: must be a number, got '24h'"),
    ("customer_service_window_hours,24,hours,2020-02-30,,R4,x\n",
     ":2: effective_from: not a date YYYY-MM-DD: '2020-02-30'"),
    ("customer_service_window_hours,24,hours,2020-01-01,2020-01-01,R4,x\n",
     ":2: effective_to: 2020-01-01 is not after effective_from 2020-01-01"),
    ("customer_service_window_hours,24,hours,2020-01-01,,R4,x\ncustomer_service_window_hours,48,hours,2025-01-01,,R4,x\n",
     ":3: customer_service_window_hours: its period overlaps the row on line 2"),
    ("Window Hours,24,hours,2020-01-01,,R4,x\n",
     ":2: key: must be snake_case like customer_service_window_hours, got 'Window Hours'"),
    ("as_of,24,hours,2020-01-01,,R4,x\n", ":2: key: as_of is set by the build itself, choose another name"),
    ("customer_service_window_hours,24,hours,2020-01-01,2026-01-01,R4,x\n",
     ": no row in force on 2026-11-01 for customer_service_window_hours, platform_conversation_timeout_hours"),
    # one value for all days: the windows are cut with it across the whole history
    ("customer_service_window_hours,24,hours,2020-01-01,2027-01-01,R4,x\ncustomer_service_window_hours,48,hours,"
     "2027-01-01,,R4,x\n",
     ":3: customer_service_window_hours: one row only (line 2 has it): windows and conversations are cut with one "
     "value for every day, so a value by date would rewrite all history"),
])
def test_policy_errors_are_one_line_naming_file_and_line(tmp_path: Path, rows: str, error: str) -> None:
    path = tmp_path / "policy.csv"
    path.write_text(POLICY_HEADER + rows)
    with pytest.raises(BuildError) as raised:
        policy.apply(duckdb.connect(), AS_OF, path)
    assert str(raised.value) == f"{path}{error}"


def test_a_bad_policy_file_stops_the_build_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "policy.csv"
    path.write_text(POLICY_HEADER + "customer_service_window_hours,24h,hours,2020-01-01,,R4,x\n")
    monkeypatch.setattr(policy, "default_path", lambda: path)
    with pytest.raises(BuildError, match=r"policy.csv:2: value: must be a number, got '24h'$"):
        warehouse(tmp_path / "run", SCENARIOS[:1], as_of=AS_OF)


def test_policy_values_switch_on_their_effective_dates(tmp_path: Path) -> None:
    path = tmp_path / "policy.csv"
    path.write_text(POLICY_HEADER
                    + "customer_service_window_hours,24,hours,2020-01-01,,R4,x\n"
                    + "first_response_bucket_1_max_hours,1,hours,2020-01-01,2027-01-01,,x\n"
                    + "first_response_bucket_1_max_hours,2,hours,2027-01-01,,,x\n"
                    + "platform_conversation_timeout_hours,24,hours,2020-01-01,,R8,x\n")
    rows = policy.load(path)
    assert policy.in_force(rows, datetime(2026, 12, 31).date())["first_response_bucket_1_max_hours"] == 1
    assert policy.in_force(rows, datetime(2027, 1, 1).date())["first_response_bucket_1_max_hours"] == 2
    assert policy.load() == policy.load(policy.default_path())   # the shipped file is valid
