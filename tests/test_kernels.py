"""pipeline/kernels.py: int_thread_messages and int_bill_cbp_conversations made by one
sorted pass each in compiled code.

Each model runs here on hand-made rows in a bare DuckDB, as the build runs it
(pipeline/stage.py), and every value is checked against DOMAIN's rules by hand.
Every table the build makes from it is also covered end to end (test_windows,
test_lifecycle, test_outcomes, test_billing)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import duckdb
import pyarrow as pa
import pytest

from pipeline import kernels, models, stage

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=timezone.utc)
S = timedelta(seconds=1)
H = timedelta(hours=1)


def thread_messages(messages: list[tuple], closes: list[tuple], automated_seconds: int | None = 5) -> list[tuple]:
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    con.execute("""create table messages (message_id varchar, tenant_id bigint, phone_number_id bigint,
        contact_key varchar, direction varchar, is_template boolean, status varchar, sent_at timestamptz,
        delivered_at timestamptz, tie_rank integer, conversation_id bigint)""")
    con.execute("""create table int_conv_closes (tenant_id bigint, phone_number_id bigint, contact_key varchar,
        closed_at timestamptz, ended_reason varchar)""")
    for message in messages:
        con.execute("insert into messages values (?, 1, ?, ?, ?, ?, ?, ?, ?, ?, null)", message)
    for close in closes:
        con.execute("insert into int_conv_closes values (1, ?, ?, ?, ?)", close)
    con.execute("set variable as_of = ?::timestamptz", [T0 + 1000 * H])
    con.execute("set variable customer_service_window_hours = 24")          # DOMAIN R4
    con.execute("set variable platform_conversation_timeout_hours = 24")    # DOMAIN R8
    con.execute("set variable automated_reply_max_seconds = ?", [automated_seconds])
    model = next(found for found in models.discover() if found.name == "int_thread_messages")
    assert model.kernel == "thread_pass"
    stage._run(con, model)
    return con.execute("""
        select message_id, thread_position, next_message_at, previous_inbound_at, next_inbound_at,
            reordered_delivery_at, next_close_at, next_close_reason, is_window_start, window_number, run_number,
            is_segment_end, is_in_conversation, message_role, answered_by_message_id, answered_at
        from int_thread_messages order by message_id
    """).fetchall()


def inbound(message_id: str, number: int, contact: str, at: datetime) -> tuple:
    return (message_id, number, contact, "inbound", False, "received", at, None, 0)


def outbound(message_id: str, number: int, contact: str, at: datetime, delivered: datetime | None = None,
             template: bool = False) -> tuple:
    return (message_id, number, contact, "outbound", template, "delivered", at, delivered, 1 if template else 2)


MESSAGES = [
    # number 1, contact a: an inbound message, an automated reply 2 s later, a human
    # reply a minute later delivered after the next inbound message, a close, and the
    # contact again an hour later
    inbound("m1", 1, "a", T0),
    outbound("m2", 1, "a", T0 + 2 * S, delivered=T0 + 3 * S),
    outbound("m3", 1, "a", T0 + 60 * S, delivered=T0 + H + S),
    inbound("m4", 1, "a", T0 + H),
    # the same contact on number 2 (its rows follow number 1's in thread order), another
    # contact on number 3: threads of their own (R3)
    inbound("m5", 2, "a", T0 + 10 * S),
    outbound("m6", 3, "b", T0, template=True),
    # a failed outbound message is not in the timeline (it reached nobody)
    ("m7", 3, "b", "outbound", False, "failed", T0 + S, None, 2),
]
CLOSES = [(1, "a", T0 + 120 * S, "agent_close")]


@pytest.mark.parametrize("part_rows", [1 << 20, 3, 1])
def test_one_pass_gives_each_message_its_neighbours_windows_runs_and_answer(
        part_rows: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # The rows go to DuckDB in parts of whole threads: one part, or parts cut inside the
    # first thread's rows (moved to its end), or a part per thread.
    monkeypatch.setattr(kernels, "PART_ROWS", part_rows)
    rows = thread_messages(MESSAGES, CLOSES)
    assert rows == [
        # m1 opens the window (R4) and the conversation (R7); m3, the first human reply, answers it
        ("m1", 1, T0 + 2 * S, None, T0 + H, None, None, None, True, 1, 1, False, True, "inbound",
         "m3", T0 + 60 * S),
        # 2 s after the inbound message: an automated reply; delivered before the next inbound message
        ("m2", 2, T0 + 60 * S, T0, T0 + H, None, None, None, False, 1, 1, False, True, "automated_reply",
         None, None),
        # the close comes before the next message: the run ends here (R8); its delivery
        # came after m4, so the bill must look at the window again (reordered)
        ("m3", 3, T0 + H, T0, T0 + H, T0 + H + S, T0 + 120 * S, "agent_close", False, 1, 1, True, True,
         "human_reply", None, None),
        # after the close a new run and conversation (R9), inside the same service window (1 h < 24 h)
        ("m4", 4, None, T0, None, None, None, None, False, 1, 2, True, True, "inbound", None, None),
        ("m5", 1, None, None, None, None, None, None, True, 1, 1, True, True, "inbound", None, None),
        # a template opens a conversation (R7) but no service window
        ("m6", 1, None, None, None, None, None, None, False, 0, 1, True, True, "template", None, None),
    ]


def test_without_an_automated_reply_limit_every_free_form_reply_is_human() -> None:
    rows = {row[0]: row for row in thread_messages(MESSAGES, CLOSES, automated_seconds=None)}
    assert rows["m2"][13] == "human_reply"
    assert rows["m1"][14:] == ("m2", T0 + 2 * S)


def test_the_models_know_every_kernel_by_name() -> None:
    # pipeline/models.py names them without importing numba
    assert set(models.KERNELS) == set(kernels.KERNELS)


@pytest.mark.parametrize("closes", [[], CLOSES])
def test_no_messages_give_no_rows(closes: list[tuple]) -> None:
    assert thread_messages([], closes) == []


L = 24 * H                  # the CBP conversation's length (data/pricing_policy.csv, DOMAIN R13)
PMP_FROM = date(2026, 5, 5)  # the test's regime switch: deliveries billed from this date are PMP


def cbp_conversations(outbound: list[tuple], entry_points: list[tuple] = ()) -> list[tuple]:
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    models.define_functions(con)
    con.execute("""create table int_bill_outbound (message_id varchar, phone_number_id bigint, contact_key varchar,
        is_template boolean, category varchar, event_at timestamptz, billing_date date, pricing_model varchar)""")
    con.execute("""create table int_bill_entry_points (tenant_id bigint, phone_number_id bigint, contact_key varchar,
        message_id varchar, opened_at timestamptz, expires_at timestamptz)""")
    con.execute("create table int_bill_calendar (calendar_date date, cbp_conversation_length interval)")
    con.execute("insert into int_bill_calendar select d::date, interval 24 hour "
                "from range(date '2026-05-01', date '2026-06-01', interval 1 day) as days(d)")
    for row in outbound:
        # billed on the delivery's UTC date (the test's number is on UTC)
        billing_date = row[-1].date()
        con.execute("insert into int_bill_outbound values (?, 1, ?, ?, ?, ?, ?, ?)",
                    (*row, billing_date, "CBP" if billing_date < PMP_FROM else "PMP"))
    for row in entry_points:
        con.execute("insert into int_bill_entry_points values (1, 1, ?, ?, ?, ?)", row)
    model = next(found for found in models.discover() if found.name == "int_bill_cbp_conversations")
    assert model.kernel == "cbp_pass"
    stage._run(con, model)
    return con.execute("select * from int_bill_cbp_conversations order by message_id").fetchall()


def template(message_id: str, contact: str, at: datetime, category: str | None) -> tuple:
    return (message_id, contact, True, category, at)


def text(message_id: str, contact: str, at: datetime) -> tuple:
    return (message_id, contact, False, "service", at)


OUTBOUND = [
    # contact a: template chains of two categories, free-form messages absorbed
    template("mk1", "a", T0, "marketing"),
    text("s1", "a", T0 + H),
    template("ut1", "a", T0 + 2 * H, "utility"),
    text("s2", "a", T0 + 3 * H),
    template("mk2", "a", T0 + L, "marketing"),
    template("mk3", "a", T0 + 25 * H, "marketing"),
    text("s3", "a", T0 + 26 * H),
    template("c1", "a", T0 + 50 * H, "marketing"),
    template("c2", "a", T0 + 60 * H, "marketing"),
    template("c3", "a", T0 + 74 * H, "marketing"),
    template("c4", "a", T0 + 80 * H, "marketing"),
    # contact b: free-form messages only, the service chain
    text("f1", "b", T0),
    text("f2", "b", T0 + H),
    text("f3", "b", T0 + L),
    # contact c: four messages at one instant
    text("a-text", "c", T0),
    text("t-0", "c", T0),
    template("u-b", "c", T0, "utility"),
    template("u-a", "c", T0, "utility"),
    # contact d: a service conversation open before a template one
    text("d1", "d", T0),
    template("d2", "d", T0 + H, "marketing"),
    text("d3", "d", T0 + 2 * H),
    # contact e: an entry point window [T0, T0 + 72 h) holding three messages over two
    # regimes (one a template of no known category), a template of no known category after
    template("e2", "e", T0 + H, "marketing"),
    text("e5", "e", T0 + 30 * H),
    template("e6", "e", T0 + 40 * H, None),
    template("e3", "e", T0 + 72 * H, "marketing"),
    template("e4", "e", T0 + 80 * H, None),
    # contact g: a service conversation across the regime switch (PMP_FROM, 00:00 UTC)
    text("g1", "g", T0 + 14 * H),
    template("g2", "g", T0 + 16 * H, "marketing"),
    text("g3", "g", T0 + 17 * H),
]
ENTRY_POINTS = [("e", "e1", T0, T0 + 72 * H)]


@pytest.mark.parametrize("part_rows", [1 << 20, 3, 1])
def test_one_walk_chains_templates_per_category_and_free_form_messages(
        part_rows: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernels, "PART_ROWS", part_rows)
    rows = cbp_conversations(OUTBOUND, ENTRY_POINTS)
    # (message, conversation, its opening, category, chained, in an entry point window,
    #  the conversation's messages, those of them delivered on CBP dates: before PMP_FROM)
    assert rows == [
        # at one instant the templates come first, the smallest message_id opens (R13), and
        # a free-form message is absorbed by the template conversation opened then (R14)
        ("a-text", "u-a", T0, "utility", False, False, 4, 4),
        # a conversation reaches the first member of a chain after it: back to back (chained)
        ("c1", "c1", T0 + 50 * H, "marketing", False, False, 2, 0),
        ("c2", "c1", T0 + 50 * H, "marketing", False, False, 2, 0),
        ("c3", "c3", T0 + 74 * H, "marketing", True, False, 2, 0),
        ("c4", "c3", T0 + 74 * H, "marketing", True, False, 2, 0),
        ("d1", "d1", T0, "service", False, False, 2, 2),
        ("d2", "d2", T0 + H, "marketing", False, False, 1, 1),
        # covered by d2's conversation, absorbed by the one opened first: d1's service one
        ("d3", "d1", T0, "service", False, False, 2, 2),
        # e2, e5 and e6 are inside the entry point window: its free conversation, whatever
        # their category (R15, R27), not chained; e4 has no category: no row
        ("e2", "e1", T0, "referral_conversion", False, True, 3, 1),
        ("e3", "e3", T0 + 72 * H, "marketing", False, False, 1, 0),
        ("e5", "e1", T0, "referral_conversion", False, True, 3, 1),
        ("e6", "e1", T0, "referral_conversion", False, True, 3, 1),
        ("f1", "f1", T0, "service", False, False, 2, 2),
        ("f2", "f1", T0, "service", False, False, 2, 2),
        # a conversation lasts exactly 24 h: f3 opens the next one, right after f2's
        ("f3", "f3", T0 + L, "service", True, False, 1, 0),
        # g2 opens its own (marketing) conversation; g3 goes to the one opened first, g1's,
        # which holds a CBP delivery and a PMP one
        ("g1", "g1", T0 + 14 * H, "service", False, False, 2, 1),
        ("g2", "g2", T0 + 16 * H, "marketing", False, False, 1, 0),
        ("g3", "g1", T0 + 14 * H, "service", False, False, 2, 1),
        ("mk1", "mk1", T0, "marketing", False, False, 3, 3),
        ("mk2", "mk2", T0 + L, "marketing", False, False, 3, 0),
        ("mk3", "mk2", T0 + L, "marketing", False, False, 3, 0),
        ("s1", "mk1", T0, "marketing", False, False, 3, 3),
        # two template conversations open: the first opened absorbs it
        ("s2", "mk1", T0, "marketing", False, False, 3, 3),
        # ut1's conversation ended at exactly 26 h; mk2's is open
        ("s3", "mk2", T0 + L, "marketing", False, False, 3, 0),
        ("t-0", "u-a", T0, "utility", False, False, 4, 4),
        ("u-a", "u-a", T0, "utility", False, False, 4, 4),
        ("u-b", "u-a", T0, "utility", False, False, 4, 4),
        ("ut1", "ut1", T0 + 2 * H, "utility", False, False, 1, 1),
    ]


def test_no_deliveries_give_no_conversations() -> None:
    assert cbp_conversations([]) == []


def test_thread_order_puts_an_instant_in_message_id_order_and_survives_a_shared_hash() -> None:
    # DuckDB sorts the CBP candidates by the contact key's hash and the delivery only
    def candidates(hashes: list[int]) -> pa.Table:
        return pa.table({
            "message_id": ["m3", "m1", "m2", "x9", "x1", "m0"],
            "phone_number_id": [1] * 6,
            "contact_key": ["a", "a", "a", "b", "b", "a"],
            "thread_hash": hashes,
            "event_us": [10, 20, 20, 20, 20, 30],
        })

    # the sort DuckDB gave: thread a (hash 5), then b (hash 7); a's two rows at 20 come out
    # in message_id order, and so do b's
    rows, order, new_thread = kernels._in_thread_order(candidates([5, 5, 5, 7, 7, 5]).take([0, 2, 1, 5, 4, 3]),
                                                       ("event_us",))
    assert kernels._part_rows(rows, order, 0, 6).column("message_id").to_pylist() == [
        "m3", "m1", "m2", "m0", "x1", "x9"]
    assert kernels._ordered(rows.column("event_us").to_numpy(), order).tolist() == [10, 20, 20, 30, 20, 20]
    assert new_thread.tolist() == [True, False, False, False, True, False]
    # a and b share a hash, so their rows interleave in that sort: sorted by the keys instead
    rows, order, new_thread = kernels._in_thread_order(candidates([5] * 6), ("event_us",))
    assert order is None and new_thread.tolist() == [True, False, False, False, True, False]
    assert rows.column("message_id").to_pylist() == ["m3", "m1", "m2", "m0", "x1", "x9"]
