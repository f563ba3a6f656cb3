"""The per-thread stage of billing against a plain reading of DOMAIN R13-R15, and its
independence from other threads (DESIGN "Two kinds of work, kept apart").

Random threads, dense enough that conversations follow each other back to back (the
chains the SQL settles by recursion), are priced by the SQL engine and by a small
state machine written here from DOMAIN; every delivered outbound message must land in
the same CBP conversation. Then the same per-thread tables are rebuilt from half of
the threads and must hold exactly the same rows for them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from tests.helpers import Thread, build_threads, project


UTC = timezone.utc
DAY = timedelta(hours=24)
CONVERSATION = timedelta(hours=24)     # data/pricing_policy.csv cbp_conversation_hours
ENTRY_POINT = timedelta(hours=72)      # entry_point_window_hours
REPLY_WITHIN = timedelta(hours=24)     # entry_point_reply_within_hours
START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
CATEGORIES = ("marketing", "utility", "authentication")


@dataclass(frozen=True)
class Event:
    message_id: str
    at: datetime
    kind: str               # inbound, template, text
    category: str | None = None
    is_referral: bool = False


def random_thread(rng: random.Random, name: str, contact: str) -> tuple[Thread, list[Event]]:
    """Gaps mixing minutes, hours, ~a day and days; distinct seconds (no ties). A dense
    thread sends mostly one kind of message every few hours, so that conversations
    follow each other back to back."""
    thread = Thread(name, contact)
    events: list[Event] = []
    moment = START + timedelta(seconds=rng.randrange(86_400))
    dense = rng.choice([None, "template", "text"])
    favourite = rng.choice(CATEGORIES)
    for _ in range(rng.randrange(15, 70)):
        if dense and rng.random() < 0.8:
            gap = timedelta(seconds=rng.randrange(2 * 3_600, 20 * 3_600))
        else:
            gap = rng.choice([
                timedelta(seconds=rng.randrange(30, 3_600)),
                timedelta(seconds=rng.randrange(3_600, 20 * 3_600)),
                timedelta(seconds=rng.randrange(22 * 3_600, 26 * 3_600)),
                timedelta(seconds=rng.randrange(26 * 3_600, 5 * 86_400)),
            ])
        moment += gap
        roll = rng.random()
        kind = dense if dense and rng.random() < 0.7 else None
        if kind is None:
            kind = "inbound" if roll < 0.30 else "template" if roll < 0.70 else "text"
        if kind == "inbound":
            referral = rng.random() < 0.15
            message_id = thread.user(moment, referral="ad" if referral else None)
            events.append(Event(message_id, moment, "inbound", is_referral=referral))
        elif kind == "template":
            category = favourite if dense == "template" else rng.choice(CATEGORIES)
            message_id = thread.template(moment, category)
            events.append(Event(message_id, moment, "template", category))
        else:
            message_id = thread.text(moment)
            events.append(Event(message_id, moment, "text"))
    return thread, events


def reference_conversations(events: list[Event]) -> dict[str, str]:
    """message_id -> the opening message of its CBP conversation, read from DOMAIN:
    R15 entry point windows first, then R13 (templates) and R14 (other messages,
    absorbed into the conversation opened first among those open)."""
    outbound = [event for event in events if event.kind != "inbound"]
    replies = []
    for arrival in (event for event in events if event.is_referral):
        first = next((event for event in outbound if event.at >= arrival.at), None)
        if first is not None and first.at - arrival.at < REPLY_WITHIN:
            replies.append(first)
    windows: list[tuple[datetime, datetime, str]] = []
    for reply in sorted(set(replies), key=lambda event: event.at):
        if not windows or reply.at >= windows[-1][1]:
            windows.append((reply.at, reply.at + ENTRY_POINT, reply.message_id))
    opened: dict[str, tuple[datetime, str]] = {}
    result: dict[str, str] = {}
    for event in outbound:
        window = next((w for w in windows if w[0] <= event.at < w[1]), None)
        if window is not None:
            result[event.message_id] = window[2]
            continue
        closed_by = max((w[0] for w in windows if w[0] <= event.at), default=None)
        live = {category: (start, opener) for category, (start, opener) in opened.items()
                if event.at < start + CONVERSATION and (closed_by is None or start >= closed_by)}
        if event.kind == "template":
            if event.category in live:
                result[event.message_id] = live[event.category][1]
            else:
                opened[event.category] = (event.at, event.message_id)
                result[event.message_id] = event.message_id
        elif live:
            result[event.message_id] = min(live.values())[1]
        else:
            opened["service"] = (event.at, event.message_id)
            result[event.message_id] = event.message_id
    return result


@pytest.fixture(scope="module")
def random_threads(tmp_path_factory: pytest.TempPathFactory):
    rng = random.Random(20250601)
    threads = [random_thread(rng, f"r{index:03d}", f"+55119{index:07d}") for index in range(80)]
    root = tmp_path_factory.mktemp("threads")
    con, _ = build_threads(project(root), [thread for thread, _ in threads], root)
    return con, threads, tmp_path_factory


def test_conversations_agree_with_a_state_machine_reading_of_domain(random_threads) -> None:
    con, threads, _ = random_threads
    got = dict(con.execute("select message_id, conversation_id from int_bill_messages").fetchall())
    expected: dict[str, str] = {}
    for _, events in threads:
        expected.update(reference_conversations(events))
    assert got == expected
    # the data did exercise the hard cases: templates and free-form messages opening a
    # conversation less than a conversation length after the previous one of their chain
    chained = con.execute("select count(*) from int_bill_cbp_conversations "
                          "where is_chained and conversation_category <> 'service'").fetchone()[0]
    entry_points = con.execute("select count(*) from int_bill_entry_points").fetchone()[0]
    back_to_back = {"template": 0, "text": 0}
    for _, events in threads:
        outbound = [event for event in events if event.kind != "inbound"]
        for index, event in enumerate(outbound):
            if expected[event.message_id] == event.message_id and any(
                    earlier.kind == event.kind and earlier.category == event.category
                    and event.at - earlier.at < CONVERSATION for earlier in outbound[:index]):
                back_to_back[event.kind] += 1
    assert chained > 20 and entry_points > 10
    assert min(back_to_back.values()) > 50, back_to_back


def test_the_per_thread_stage_gives_the_same_rows_on_any_subset_of_threads(random_threads) -> None:
    con, threads, factory = random_threads
    subset = [thread for index, (thread, _) in enumerate(threads) if index % 3 == 0]
    root = factory.mktemp("shard")
    shard, _ = build_threads(project(root), subset, root)
    contacts = [thread.contact for thread in subset]
    for table in ("int_bill_outbound", "int_bill_entry_points", "int_thread_messages", "int_bill_cbp_conversations",
                  "int_bill_messages"):
        query = (f"select * from {table} where message_id in "
                 f"(select message_id from messages where contact_key in ({', '.join('?' * len(contacts))}))")
        whole = sorted(map(repr, con.execute(query, contacts).fetchall()))
        part = sorted(map(repr, shard.execute(query, contacts).fetchall()))
        assert whole and part == whole, table


def test_simultaneous_messages_are_counted_together(tmp_path: Path) -> None:
    # An inbound message at the instant of a delivery opens the window for it (R6:
    # (t - 24 h, t]); two templates of one category at one instant share one
    # conversation, opened by the smaller message_id.
    at = datetime(2025, 8, 5, 15, 0, tzinfo=UTC)
    thread = Thread("tie", "+5511977777777")
    thread.template(at, "utility")
    thread.template(at, "utility")
    thread.user(at)
    later = Thread("tie2", "+5511977777778")
    later.template(at, "marketing")
    later.template(at, "marketing")
    con, _ = build_threads(project(tmp_path), [thread, later], tmp_path)
    assert con.execute("select message_id, is_service_window_open, conversation_id from int_bill_messages "
                       "order by message_id").fetchall() == [
        ("tie-01", True, "tie-01"),
        ("tie-02", True, "tie-01"),
        ("tie2-01", False, "tie2-01"),
        ("tie2-02", False, "tie2-01"),
    ]
    # PMP: the utility templates are free (window open), the marketing ones charged
    assert con.execute("select message_id, pricing_type from billable_units order by message_id").fetchall() == [
        ("tie-01", "free_customer_service"), ("tie-02", "free_customer_service"),
        ("tie2-01", "regular"), ("tie2-02", "regular"),
    ]


def test_the_window_is_read_at_the_delivery_when_the_user_writes_between_send_and_delivery(tmp_path: Path) -> None:
    # DOMAIN R27 and R4/R6: the delivery is the instant that counts. A template sent
    # before the user's first message but delivered after it is inside the window the
    # message opened (also when delivered at that very instant); one delivered before
    # the user wrote is not, and the message is its next inbound one.
    at = datetime(2025, 8, 5, 15, 0, tzinfo=UTC)
    second = timedelta(seconds=1)
    late = Thread("late", "+5511966666661")
    late.template(at, "utility", delivered=at + 30 * second)
    late.user(at + 10 * second)
    late.user(at + timedelta(hours=2))
    tie = Thread("tie", "+5511966666662")
    tie.template(at, "utility", delivered=at + 10 * second)
    tie.user(at + 10 * second)
    on_time = Thread("ontime", "+5511966666663")
    on_time.template(at, "utility", delivered=at + 5 * second)
    on_time.user(at + 10 * second)
    # several inbound messages between send and delivery: the last of them counts
    many = Thread("many", "+5511966666664")
    many.template(at, "utility", delivered=at + 60 * second)
    many.user(at + 10 * second)
    many.user(at + 20 * second)
    many.user(at + 90 * second)
    # an export that records the delivery before the send, the user's message between
    # them: at the delivery the user had not written yet
    early = Thread("early", "+5511966666665")
    early.user(at - timedelta(hours=30))
    early.template(at, "utility", delivered=at - 60 * second)
    early.user(at - 30 * second)
    con, _ = build_threads(project(tmp_path), [late, tie, on_time, many, early], tmp_path)
    assert con.execute(
        "select message_id, is_service_window_open, last_inbound_at, next_inbound_at from int_bill_messages "
        "order by message_id").fetchall() == [
        ("early-02", False, at - timedelta(hours=30), at - 30 * second),
        ("late-01", True, at + 10 * second, at + timedelta(hours=2)),
        ("many-01", True, at + 20 * second, at + 90 * second),
        ("ontime-01", False, None, at + 10 * second),
        ("tie-01", True, at + 10 * second, None),
    ]
    # PMP: a utility template inside the window is free (R19), outside it is charged
    assert con.execute("select message_id, pricing_type from billable_units order by message_id").fetchall() == [
        ("early-02", "regular"), ("late-01", "free_customer_service"), ("many-01", "free_customer_service"),
        ("ontime-01", "regular"), ("tie-01", "free_customer_service"),
    ]


def test_an_inbound_message_counts_whatever_its_status(tmp_path: Path) -> None:
    # An inbound message reached the business; only a failed outbound send never reached
    # anyone (DOMAIN R5: never billed, so it opens and extends nothing). An inbound one
    # an export marks failed opens the customer service window (R4) for the service
    # windows and for the bill alike.
    at = datetime(2025, 8, 5, 15, 0, tzinfo=UTC)
    thread = Thread("odd", "+5511966666666")
    thread._add(at, direction="inbound", status="failed")
    thread.template(at + timedelta(hours=1), "utility")
    con, _ = build_threads(project(tmp_path), [thread], tmp_path)
    assert con.execute("select opened_at, inbound_count from service_windows").fetchall() == [(at, 1)]
    assert con.execute("select message_id, is_service_window_open, last_inbound_at from int_bill_messages"
                       ).fetchall() == [("odd-02", True, at)]
    assert con.execute("select pricing_type from billable_units").fetchall() == [("free_customer_service",)]
