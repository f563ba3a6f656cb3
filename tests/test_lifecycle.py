"""The platform's conversation lifecycle rebuilt in DuckDB (DOMAIN R7-R11): the
conversations table, status as of --as-of, and the reconciliation with the exported
conversation records and webhook events. Times are written by hand."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest
from tests.helpers import SAO_PAULO, T0, build_warehouse, inbound, outbound, ts, warehouse


UTC = timezone.utc
H = timedelta(hours=1)
M = timedelta(minutes=1)
S = timedelta(seconds=1)
AS_OF = datetime(2026, 9, 20, tzinfo=UTC)


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def utility(message_id: str, contact: str, moment: datetime, **fields: object) -> dict[str, object]:
    return outbound(message_id, contact, moment, template="update", template_category="utility", **fields)


def closed(event_id: str, contact: str, moment: datetime, conversation_id: int,
           reason: str = "manual_close") -> dict[str, object]:
    """A whatsapp.conversation.ended webhook event for an operator's close (DOMAIN R11)."""
    return {"id": event_id, "type": "whatsapp.conversation.ended", "created_at": ts(moment), "data": {
        "id": conversation_id, "tenant_id": 1, "phone_number_id": SAO_PAULO, "contact_phone": None,
        "contact_bsuid": contact, "status": "ended", "ended_reason": reason,
        "started_at": ts(T0), "ended_at": ts(moment)}}


def record(conversation_id: int, contact: str, status: str, started_at: datetime, ended_at: datetime | None = None,
           ended_reason: str | None = None, messages_count: int = 1, last_inbound_at: datetime | None = None,
           last_outbound_at: datetime | None = None) -> dict[str, object]:
    """An exported conversation record (DOMAIN R10)."""
    def when(moment: datetime | None) -> str | None:
        return None if moment is None else ts(moment)
    return {"id": conversation_id, "tenant_id": 1, "customer_id": None, "phone_number_id": SAO_PAULO,
            "contact_phone": None, "contact_bsuid": contact, "contact_name": "Ana", "status": status,
            "ended_reason": ended_reason, "messages_count": messages_count,
            "last_inbound_at": when(last_inbound_at), "last_outbound_at": when(last_outbound_at),
            "started_at": ts(started_at), "ended_at": when(ended_at)}


# Sao Paulo is UTC-3: local day1 00:00 is 03:00 UTC.
DAY1 = datetime(2026, 9, 2, 3, 0, tzinfo=UTC)

MESSAGES = [
    # DOMAIN E1: h0 marketing tpl; h4 utility tpl; h10 utility tpl; no user message.
    outbound("e1a", "BR.eone", h(0), template="promo"),
    utility("e1b", "BR.eone", h(4)),
    utility("e1c", "BR.eone", h(10)),
    # E2: h0 marketing tpl; h4 user; h5 list msg; h25 text; h26 text.
    outbound("e2a", "BR.etwo", h(0), template="promo"),
    inbound("e2b", "BR.etwo", h(4)),
    outbound("e2c", "BR.etwo", h(5), type="interactive"),
    outbound("e2d", "BR.etwo", h(25)),
    outbound("e2e", "BR.etwo", h(26)),
    # E3: h0 marketing tpl; h2 user; h3 text; h4 utility tpl; h30 utility tpl.
    outbound("e3a", "BR.ethree", h(0), template="promo"),
    inbound("e3b", "BR.ethree", h(2)),
    outbound("e3c", "BR.ethree", h(3)),
    utility("e3d", "BR.ethree", h(4)),
    utility("e3e", "BR.ethree", h(30)),
    # E4: user via ad 10:00; business template 22:00.
    inbound("e4a", "BR.efour", h(0), referral_source="ad"),
    outbound("e4b", "BR.efour", h(12), template="promo"),
    # E5: 09:00 user; 09:30 marketing tpl.
    inbound("e5a", "BR.efive", h(0)),
    outbound("e5b", "BR.efive", h(0.5), template="promo"),
    # E6: day1 00:00 user; 23:59 text; day2 00:01 text, which fails (131047).
    inbound("e6a", "BR.esix", DAY1),
    outbound("e6b", "BR.esix", DAY1 + 23 * H + 59 * M),
    outbound("e6c", "BR.esix", DAY1 + 24 * H + M, status="failed", error_code=131047),
    # R8: 24 h - 1 s of silence continues a conversation; exactly 24 h has ended it.
    inbound("to1", "BR.timeout", h(0)),
    outbound("to2", "BR.timeout", h(24) - S),
    inbound("to3", "BR.timeout", h(48) - S),
    # R9: a close, then an inbound message: a reopen. A close in the export record, then
    # a template: a new conversation but no reopen; a timeout, then a user: no reopen.
    inbound("r1", "BR.reopen", h(0)),
    outbound("r2", "BR.reopen", h(0) + 5 * M),
    inbound("r3", "BR.reopen", h(2)),
    outbound("r4", "BR.reopen", h(4), template="promo"),
    inbound("r5", "BR.reopen", h(40)),
    # A user writing after a close but after the timeout would have ended it anyway.
    inbound("l1", "BR.latereopen", h(0)),
    inbound("l2", "BR.latereopen", h(30)),
    # A free-form message while no conversation is open opens nothing and counts nowhere.
    inbound("f1", "BR.orphan", h(0)),
    outbound("f2", "BR.orphan", h(2)),
    inbound("f3", "BR.orphan", h(3)),
    outbound("f4", "BR.orphan", h(40), status="sent"),
    outbound("f5", "BR.orphan", h(41), template="promo"),
    # A close in the same second as a message comes after it.
    inbound("s1", "BR.sametime", h(0)),
    outbound("s2", "BR.sametime", h(1)),
    inbound("s3", "BR.sametime", h(1) + S),
    # Same second, nothing open: the inbound message comes first and opens (it sorts
    # before the outbound one although its id sorts after).
    outbound("tie-a", "BR.tie", h(0)),
    inbound("tie-b", "BR.tie", h(0)),
    # Inactive twice: after 40 min of silence it went inactive, then active, then inactive.
    inbound("i1", "BR.inactive", h(0)),
    outbound("i2", "BR.inactive", h(0) + 10 * M),
    inbound("i3", "BR.inactive", h(0) + 50 * M),
    outbound("i4", "BR.inactive", h(1)),
    # Closed 10 minutes after the last message: never inactive.
    inbound("q1", "BR.quickclose", h(0)),
    # The platform id most messages carry.
    inbound("pid1", "BR.platform", h(0), conversation_id=900),
    outbound("pid2", "BR.platform", h(0) + M, conversation_id=900),
    inbound("pid3", "BR.platform", h(0) + 2 * M, conversation_id=901, contact_name="Ana M."),
]
EVENTS = [
    closed("ev1", "BR.reopen", h(1), 1),
    closed("ev2", "BR.latereopen", h(1), 2, reason="agent_close"),
    closed("ev3", "BR.orphan", h(1), 3),
    closed("ev4", "BR.sametime", h(1), 4),
    closed("ev5", "BR.quickclose", h(0) + 10 * M, 5),
    closed("ev6", "BR.eone", h(100), 6),          # no conversation open then: ignored
]
RECORDS = [
    record(77, "BR.reopen", "ended", h(2), ended_at=h(3), ended_reason="agent_close"),
]

COLUMNS = ("started_at, messages_count, last_inbound_at, last_outbound_at, status, ended_reason, ended_at, "
           "inactive_at, is_reopen")


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    return warehouse(tmp_path_factory.mktemp("lifecycle"), MESSAGES, as_of=AS_OF,
                     conversations=RECORDS, events=EVENTS)


def conversations(con: duckdb.DuckDBPyConnection, contact: str, columns: str = COLUMNS) -> list[tuple]:
    return con.execute(f"select {columns} from conversations where contact_key = ? order by started_at",
                       [contact]).fetchall()


def ended(started: datetime, count: int, last_in: datetime | None, last_out: datetime | None,
          reason: str, end: datetime, reopen: bool = False, inactive: timedelta | None = 30 * M) -> tuple:
    last = max(moment for moment in (last_in, last_out) if moment is not None)
    return (started, count, last_in, last_out, "ended", reason, end,
            None if inactive is None else last + inactive, reopen)


def test_e1_templates_without_a_user_one_conversation(con: duckdb.DuckDBPyConnection) -> None:
    # DOMAIN E1, R7: the first template opens it, the others keep it open (R8); the
    # close event at h100 finds nothing open and changes nothing.
    assert conversations(con, "BR.eone") == [ended(h(0), 3, None, h(10), "timeout", h(34))]


def test_e2_one_conversation_while_messages_flow(con: duckdb.DuckDBPyConnection) -> None:
    # DOMAIN E2, R8: gaps under 24 h keep one conversation (Meta's CBP split is billing's).
    assert conversations(con, "BR.etwo") == [ended(h(0), 5, h(4), h(26), "timeout", h(50))]


def test_e3_a_26_hour_gap_ends_it(con: duckdb.DuckDBPyConnection) -> None:
    # DOMAIN E3, R8: h4 -> h30 is more than 24 h: ended at h28, h30's template opens another.
    assert conversations(con, "BR.ethree") == [
        ended(h(0), 4, h(2), h(4), "timeout", h(28)),
        ended(h(30), 1, None, h(30), "timeout", h(54)),
    ]


def test_e4_and_e5_user_then_template_one_conversation(con: duckdb.DuckDBPyConnection) -> None:
    # DOMAIN E4, E5: the template joins the conversation the user opened.
    assert conversations(con, "BR.efour") == [ended(h(0), 2, h(0), h(12), "timeout", h(36))]
    assert conversations(con, "BR.efive") == [ended(h(0), 2, h(0), h(0.5), "timeout", h(24.5))]


def test_e6_failed_message_counts_in_nothing(con: duckdb.DuckDBPyConnection) -> None:
    # DOMAIN E6: day2 00:01 fails (131047) outside the window; it never reached the
    # user, so it neither counts nor extends the conversation.
    last_out = DAY1 + 23 * H + 59 * M
    assert conversations(con, "BR.esix") == [ended(DAY1, 2, DAY1, last_out, "timeout", last_out + 24 * H)]
    assert con.execute("select in_service_window(?, 'BR.esix', ?), in_service_window(?, 'BR.esix', ?)",
                       [SAO_PAULO, last_out, SAO_PAULO, DAY1 + 24 * H + M]).fetchone() == (True, False)


def test_timeout_is_24_hours_of_silence_exactly(con: duckdb.DuckDBPyConnection) -> None:
    # DOMAIN R8: 24 h - 1 s continues; "ended once 24 h pass": a message exactly 24 h
    # after the last one finds it ended and opens a new one (unlike the CSW, R4).
    assert conversations(con, "BR.timeout") == [
        ended(h(0), 2, h(0), h(24) - S, "timeout", h(48) - S),
        ended(h(48) - S, 1, h(48) - S, None, "timeout", h(72) - S),
    ]


def test_close_then_inbound_is_a_reopen(con: duckdb.DuckDBPyConnection) -> None:
    # DOMAIN R9: closed at h1 by the webhook event, the user writes at h2: reopen.
    # Closed at h3 by the exported record, the template at h4: new, not a reopen.
    # Timed out at h28, the user at h40: new, not a reopen.
    assert conversations(con, "BR.reopen") == [
        ended(h(0), 2, h(0), h(0) + 5 * M, "manual_close", h(1)),
        ended(h(2), 1, h(2), None, "agent_close", h(3), reopen=True),
        ended(h(4), 1, None, h(4), "timeout", h(28)),
        ended(h(40), 1, h(40), None, "timeout", h(64)),
    ]
    assert conversations(con, "BR.latereopen") == [
        ended(h(0), 1, h(0), None, "agent_close", h(1)),
        ended(h(30), 1, h(30), None, "timeout", h(54)),
    ]


def test_free_form_with_no_conversation_open_belongs_to_none(con: duckdb.DuckDBPyConnection) -> None:
    # R7: only inbound messages and templates open. f2 (after the close) and f4 (after
    # the timeout) are in no conversation; f3 opens one (a reopen), f5's template another.
    assert conversations(con, "BR.orphan") == [
        ended(h(0), 1, h(0), None, "manual_close", h(1)),
        ended(h(3), 1, h(3), None, "timeout", h(27), reopen=True),
        ended(h(41), 1, None, h(41), "timeout", h(65)),
    ]


def test_ties_in_the_same_second(con: duckdb.DuckDBPyConnection) -> None:
    # A close at a message's second comes after it; an inbound message before an outbound one.
    assert conversations(con, "BR.sametime") == [
        ended(h(0), 2, h(0), h(1), "manual_close", h(1), inactive=None),
        ended(h(1) + S, 1, h(1) + S, None, "timeout", h(25) + S, reopen=True),
    ]
    assert conversations(con, "BR.tie", "started_at, opening_message_id, messages_count") == [(h(0), "tie-b", 2)]


def test_inactive_at_is_the_last_silence(con: duckdb.DuckDBPyConnection) -> None:
    # DOMAIN R8: inactive after 30 min without messages. It went inactive at h0:40 and
    # active again at h0:50; inactive_at keeps the last silence: h1 + 30 min.
    assert conversations(con, "BR.inactive") == [ended(h(0), 4, h(0) + 50 * M, h(1), "timeout", h(25))]
    # Closed 10 minutes after its last message: never inactive.
    assert conversations(con, "BR.quickclose") == [
        ended(h(0), 1, h(0), None, "manual_close", h(0) + 10 * M, inactive=None),
    ]


def test_platform_id_and_r10_fields(con: duckdb.DuckDBPyConnection) -> None:
    # R10 fields, the contact's from the thread's latest message; the platform id most of
    # its messages carry (900: two of three).
    got = conversations(con, "BR.platform", "tenant_id, customer_id, phone_number_id, contact_phone, "
                                            "contact_bsuid, contact_name, platform_conversation_id")
    assert got == [(1, None, SAO_PAULO, None, "BR.platform", "Ana M.", 900)]
    ids = con.execute("select count(*), count(distinct id), count(distinct (phone_number_id, contact_key, started_at))"
                      " from conversations").fetchone()
    assert ids == (24, 24, 24)


def test_status_as_of_an_earlier_time(tmp_path: Path) -> None:
    # --as-of h2:40: the reopened conversation (last message h2) is inactive since
    # h2:30 and not ended; the record's close at h3 and everything after is unknown.
    con = warehouse(tmp_path, MESSAGES, as_of=h(2) + 40 * M, conversations=RECORDS, events=EVENTS)
    assert conversations(con, "BR.reopen") == [
        ended(h(0), 2, h(0), h(0) + 5 * M, "manual_close", h(1)),
        (h(2), 1, h(2), None, "inactive", None, None, h(2) + 30 * M, True),
    ]
    # E1 at h2:40: its first template at h0 and nothing since: inactive; h4's template not yet sent.
    assert conversations(con, "BR.eone") == [(h(0), 1, None, h(0), "inactive", None, None, h(0.5), False)]
    # The orphan thread at h2:40: f2 (h2) opened nothing, so nothing is open.
    assert conversations(con, "BR.orphan", "started_at, status") == [(h(0), "ended")]
    # E5 at h2:40 ended? No: 24 h have not passed.
    assert conversations(con, "BR.efive", "status, ended_at") == [("inactive", None)]
    active = warehouse(tmp_path / "early", MESSAGES, as_of=h(0.5) + 10 * M, conversations=RECORDS, events=EVENTS)
    assert conversations(active, "BR.efive", "status, inactive_at, messages_count") == [("active", None, 2)]


# --- reconciliation with the platform's exports ----------------------------------------

RECONCILE_AS_OF = h(40)
RECONCILE_MESSAGES = [
    inbound("m1", "BR.match", h(0), conversation_id=700),
    outbound("m2", "BR.match", h(1), conversation_id=700),
    inbound("d1", "BR.differs", h(0), conversation_id=701),
    outbound("d2", "BR.differs", h(1), conversation_id=701),
    inbound("o1", "BR.onlyrebuilt", h(0)),
    inbound("x1", "BR.exportedopen", h(10), conversation_id=703),
    inbound("v1", "BR.eventsonly", h(0), conversation_id=704),
    inbound("a1", "BR.later", h(39), conversation_id=705),
]
RECONCILE_RECORDS = [
    record(700, "BR.match", "ended", h(0), ended_at=h(25), ended_reason="timeout", messages_count=2,
           last_inbound_at=h(0), last_outbound_at=h(1)),
    record(701, "BR.differs", "ended", h(0), ended_at=h(25), ended_reason="timeout", messages_count=3,
           last_inbound_at=h(0), last_outbound_at=h(1)),
    record(702, "BR.onlyexported", "ended", h(5), ended_at=h(29), ended_reason="timeout", messages_count=1,
           last_inbound_at=h(5)),
]
# Exported while still active; this file's newest time is h29 (702's end), so the
# export predates 703's timeout at h34, which has passed by the as-of (h40): fairly
# judged, the platform would say ended at h34 too.
EXPORTED_ACTIVE = record(703, "BR.exportedopen", "active", h(10), messages_count=1, last_inbound_at=h(10))
LATER_RECORDS = [
    # Exported after the as-of: its end at h63 is not known at h40, when it was inactive.
    record(705, "BR.later", "ended", h(39), ended_at=h(63), ended_reason="timeout", messages_count=1,
           last_inbound_at=h(39)),
    # Starts after the as-of: out of scope.
    record(706, "BR.future", "active", h(41), messages_count=1, last_inbound_at=h(41)),
]
RECONCILE_EVENTS = [
    closed("c1", "BR.eventsonly", h(2), 704, reason="agent_close"),
]
RECONCILIATION = """
    select contact_key, platform_conversation_id, outcome, differing_fields, exported_source,
        rebuilt_status, exported_status, exported_ended_at
    from conversation_reconciliation order by contact_key
"""


def test_reconciliation_rows_and_summary_line(tmp_path: Path) -> None:
    con, summary = build_warehouse(tmp_path, RECONCILE_MESSAGES, as_of=RECONCILE_AS_OF,
                                   conversations=[RECONCILE_RECORDS + [EXPORTED_ACTIVE], LATER_RECORDS],
                                   events=RECONCILE_EVENTS)
    assert con.execute(RECONCILIATION).fetchall() == [
        ("BR.differs", 701, "differs", ["messages_count"], "record", "ended", "ended", h(25)),
        ("BR.eventsonly", 704, "matched", [], "events", "ended", "ended", h(2)),
        ("BR.exportedopen", 703, "matched", [], "record", "ended", "ended", h(34)),
        ("BR.later", 705, "matched", [], "record", "inactive", "inactive", None),
        ("BR.match", 700, "matched", [], "record", "ended", "ended", h(25)),
        ("BR.onlyexported", 702, "only_exported", None, "record", None, "ended", h(29)),
        ("BR.onlyrebuilt", None, "only_rebuilt", None, None, "ended", None, None),
    ]
    assert [line for line in summary.checks if line.startswith("conversations:")] == [
        "conversations: 6 rebuilt, 4 matched exported records (66.7%), 1 differ: messages_count 1; "
        "1 only rebuilt, 1 only exported",
    ]
    assert con.execute("select count(*), count(distinct (rebuilt_id, platform_conversation_id)) "
                       "from conversation_reconciliation").fetchone() == (7, 7)


def test_reconciliation_status_is_fair_to_the_export_time(tmp_path: Path) -> None:
    # The same active record in a file whose newest time (h63) is after 703's timeout
    # (h34): the platform still had it open after 24 h of silence, which we disagree with.
    con, summary = build_warehouse(tmp_path, RECONCILE_MESSAGES, as_of=RECONCILE_AS_OF,
                                   conversations=[RECONCILE_RECORDS, LATER_RECORDS + [EXPORTED_ACTIVE]],
                                   events=RECONCILE_EVENTS)
    got = con.execute(RECONCILIATION).fetchall()
    assert got[2] == ("BR.exportedopen", 703, "differs", ["ended_at", "ended_reason", "status"], "record",
                      "ended", "inactive", None)
    assert [line for line in summary.checks if line.startswith("conversations:")] == [
        "conversations: 6 rebuilt, 3 matched exported records (50.0%), 2 differ: ended_at 1, ended_reason 1, "
        "messages_count 1, status 1; 1 only rebuilt, 1 only exported",
    ]
