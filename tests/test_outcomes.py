"""Conversation outcomes and daily close rates (conversation_outcomes, close_rates_daily):
who closed, time to close, first response to the first HUMAN reply, waits per exchange,
buckets, the close rate and its quantiles, on hand-built timelines with exact seconds."""

from __future__ import annotations

from datetime import date, datetime, timezone

import duckdb
import pytest

from pipeline import policy
from tests.helpers import (
    DAY,
    EVENTS,
    HOUR,
    KOLKATA,
    MADRID,
    MESSAGES,
    SAO_PAULO,
    at,
    closed,
    inbound,
    reply,
    template,
    warehouse,
)

UTC = timezone.utc
AS_OF = datetime(2026, 9, 20, tzinfo=UTC)


COLUMNS = ("ended_reason, closed_by, time_to_close_seconds, is_reopen, first_response_seconds, "
           "first_response_bucket, exchanges_count, reply_seconds")


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    return warehouse(tmp_path_factory.mktemp("outcomes"), MESSAGES, as_of=AS_OF, events=EVENTS)


def outcomes(con: duckdb.DuckDBPyConnection, contact: str, columns: str = COLUMNS) -> list[tuple]:
    return con.execute(f"select {columns} from conversation_outcomes where contact_key = ? order by started_at",
                       [contact]).fetchall()


def day(con: duckdb.DuckDBPyConnection, phone_number_id: int, local_date: date, columns: str) -> tuple:
    rows = con.execute(f"select {columns} from close_rates_daily where phone_number_id = ? and local_date = ?",
                       [phone_number_id, local_date]).fetchall()
    assert len(rows) == 1
    return rows[0]


def test_first_response_skips_templates_and_automated_replies(con: duckdb.DuckDBPyConnection) -> None:
    assert outcomes(con, "BR.template", "first_inbound_at, first_response_at, first_response_seconds, "
                    "first_response_bucket, inbound_count, human_reply_count, automated_reply_count, "
                    "template_count, messages_count, is_opened_by_inbound") == [
        (at(100), at(400), 300.0, "0-1h", 1, 1, 1, 2, 5, False)]
    assert outcomes(con, "BR.edge", "first_response_seconds, human_reply_count, automated_reply_count") == [
        (5.0, 1, 0)]
    assert outcomes(con, "BR.bot", "first_response_seconds, first_response_bucket, human_reply_count, "
                    "automated_reply_count, awaiting_reply_since_at") == [(None, None, 0, 1, at(0))]


def test_consecutive_inbound_messages_are_one_wait(con: duckdb.DuckDBPyConnection) -> None:
    # Waits: b1-b3 (from b1 at 0 to b4 at 600), b6-b8 (from b6 at 1000 to b9 at 2800,
    # the template b7 in between ends nothing), b10 unanswered.
    assert outcomes(con, "BR.burst", "first_response_seconds, waits_count, exchanges_count, reply_seconds, "
                    "reply_median_seconds, reply_mean_seconds, reply_max_seconds, awaiting_reply_since_at, "
                    "inbound_count, human_reply_count, template_count") == [
        (600.0, 3, 2, [600.0, 1800.0], 1200.0, 1200.0, 1800.0, at(3000), 6, 3, 1)]
    waits = con.execute("""
        select waits.wait_started_at, waits.inbound_messages, waits.replied_at, waits.reply_seconds
        from int_outcome_waits as waits
        join conversation_outcomes as outcomes using (conversation_id)
        where outcomes.contact_key = 'BR.burst' order by waits.wait_started_at""").fetchall()
    assert waits == [(at(0), 3, at(600), 600.0), (at(1000), 2, at(2800), 1800.0),
                     (at(3000), 1, None, None)]


def test_a_conversation_never_answered(con: duckdb.DuckDBPyConnection) -> None:
    # The failed send reached nobody: no reply; the timeout ends it 24 h after c2.
    assert outcomes(con, "BR.silent") == [("timeout", "platform", 60.0 + DAY, False, None, None, 0, [])]
    assert outcomes(con, "BR.silent", "waits_count, awaiting_reply_since_at, messages_count") == [(1, at(0), 2)]
    # A template nobody answered has no first response and nothing waiting.
    assert outcomes(con, "BR.campaign", "inbound_count, first_response_seconds, waits_count, "
                    "awaiting_reply_since_at, ended_reason") == [(0, None, 0, None, "timeout")]


def test_agent_close_manual_close_and_reopen(con: duckdb.DuckDBPyConnection) -> None:
    assert outcomes(con, "BR.agent") == [
        ("agent_close", "agent", 600.0, False, 120.0, "0-1h", 1, [120.0]),
        ("manual_close", "operator", 3660.0, True, 3600.0, "1-4h", 1, [3600.0]),
    ]


def test_every_bucket_and_its_edges(con: duckdb.DuckDBPyConnection) -> None:
    assert outcomes(con, "BR.slow4", "first_response_seconds, first_response_bucket, first_response_bucket_number") \
        == [(5.0 * HOUR, "4-8h", 3)]
    assert outcomes(con, "BR.slow8", "first_response_seconds, first_response_bucket, first_response_bucket_number") \
        == [(8.0 * HOUR, "8-24h", 4)]
    assert outcomes(con, "BR.over24", "first_response_seconds, first_response_bucket, first_response_bucket_number,"
                    " waits_count") == [(25.0 * HOUR, "over 24h", 5, 1)]
    labels = con.execute("select distinct first_response_bucket_number, first_response_bucket "
                         "from conversation_outcomes where first_response_bucket is not null order by 1").fetchall()
    # The labels come from policy data and are the ones close_rates_daily's columns are named after.
    assert labels == [(1, "0-1h"), (2, "1-4h"), (3, "4-8h"), (4, "8-24h"), (5, "over 24h")]
    columns = {row[0] for row in con.execute("select column_name from (describe close_rates_daily)").fetchall()}
    assert {"first_response_" + label.replace("-", "_").replace(" ", "_") for _, label in labels} <= columns


def test_shipped_policy_values() -> None:
    values = policy.in_force(policy.load(), date(2026, 9, 1))
    assert values["automated_reply_max_seconds"] == 5
    assert [values[f"first_response_bucket_{n}_max_hours"] for n in range(1, 5)] == [1, 4, 8, 24]


def test_close_rates_of_a_day(con: duckdb.DuckDBPyConnection) -> None:
    # Sao Paulo, 2026-09-01: eleven conversations (BR.agent twice), ten engaged (not
    # the campaign); one agent close, one manual close: 2 / 10.
    got = day(con, SAO_PAULO, date(2026, 9, 1),
              "conversations_started, agent_closes, manual_closes, timeouts, still_open, engaged_conversations, "
              "engaged_agent_closes, engaged_manual_closes, engaged_still_open, close_rate, reopens, "
              "first_responses, unanswered")
    assert got == (11, 1, 1, 9, 0, 10, 1, 1, 0, 0.2, 1, 8, 2)
    # First responses 5, 120, 300, 600, 3600, 18000, 28800, 90000 s.
    assert day(con, SAO_PAULO, date(2026, 9, 1),
               "first_response_median_seconds, first_response_p90_seconds, first_response_mean_seconds, "
               "first_response_0_1h, first_response_1_4h, first_response_4_8h, first_response_8_24h, "
               "first_response_over_24h") == (2100.0, pytest.approx(47160.0), 17678.125, 4, 1, 1, 1, 1)
    # Every answered wait: 5, 120, 300, 600, 1800, 3600, 18000, 28800, 90000 s.
    exchanges, median, p90, mean = day(con, SAO_PAULO, date(2026, 9, 1),
                                       "exchanges, reply_median_seconds, reply_p90_seconds, reply_mean_seconds")
    assert (exchanges, median, p90) == (9, 1800.0, pytest.approx(41040.0))
    assert mean == pytest.approx(143225 / 9)


def test_p90_is_continuous_on_a_known_set(con: duckdb.DuckDBPyConnection) -> None:
    # First responses 60, 120, 180, 240, 1200: position 0.9 * 4 = 3.6 between 240 and
    # 1200: 240 + 0.6 * 960 = 816. Replies add p1's 600: 0.9 * 5 = 4.5 between 600 and
    # 1200: 900; the median of six is (180 + 240) / 2.
    got = day(con, MADRID, date(2026, 9, 1),
              "conversations_started, first_response_median_seconds, first_response_p90_seconds, "
              "first_response_mean_seconds, exchanges, reply_median_seconds, reply_p90_seconds, reply_mean_seconds")
    assert got[:4] == (5, 180.0, pytest.approx(816.0), 360.0)
    assert got[4:] == (6, 210.0, pytest.approx(900.0), 400.0)


def test_local_day_cut_across_midnight_in_kolkata(con: duckdb.DuckDBPyConnection) -> None:
    # Both start on 2026-09-01 UTC; the local day decides: one second apart, two days.
    assert outcomes(con, "IN.late", "local_start_date, first_response_seconds") == [(date(2026, 9, 1), 61.0)]
    assert outcomes(con, "IN.midnight", "local_start_date, first_response_seconds") == [(date(2026, 9, 2), None)]
    rows = con.execute("select local_date, conversations_started, first_responses, unanswered "
                       "from close_rates_daily where phone_number_id = ? order by local_date", [KOLKATA]).fetchall()
    assert rows == [(date(2026, 9, 1), 1, 1, 0), (date(2026, 9, 2), 1, 0, 1)]


def test_grain_and_lineage(con: duckdb.DuckDBPyConnection) -> None:
    # conversation_outcomes: one row per conversation, the same ids.
    assert con.execute("""
        select count(*), count(distinct conversation_id),
            (select count(*) from conversations),
            (select count(*) from conversations join conversation_outcomes on conversation_id = id)
        from conversation_outcomes""").fetchone() == (18, 18, 18, 18)
    # Every message of a conversation (50 less the failed one and the one in no
    # conversation) has one role: the role counts add up to the messages.
    assert con.execute("""
        select count(*), count(distinct message_id),
            (select sum(inbound_count + human_reply_count + automated_reply_count + template_count)
             from conversation_outcomes),
            (select sum(messages_count) from conversation_outcomes)
        from int_thread_messages where is_in_conversation""").fetchone() == (48, 48, 48, 48)
    # Waits: 12 in Sao Paulo (three in BR.burst, none in BR.campaign), 2 in Kolkata, 6 in Madrid.
    assert con.execute("select count(*), count(distinct (conversation_id, wait_started_at)), "
                       "count(distinct (conversation_id, reply_message_id)) from int_outcome_waits"
                       ).fetchone() == (20, 20, 20)
    # close_rates_daily: one row per local day x number.
    assert con.execute("select count(*), count(distinct (local_date, phone_number_id)) from close_rates_daily"
                       ).fetchone() == (4, 4)
    # Messages by role add up to the lifecycle's count; days add up to conversations.
    assert con.execute("""
        select count(*) from conversation_outcomes
        where messages_count <> inbound_count + human_reply_count + automated_reply_count + template_count
        """).fetchone() == (0,)
    assert con.execute("""
        select sum(conversations_started), sum(agent_closes + manual_closes + timeouts + still_open),
            sum(first_response_0_1h + first_response_1_4h + first_response_4_8h + first_response_8_24h
                + first_response_over_24h) = sum(first_responses)
        from close_rates_daily""").fetchone() == (18, 18, True)


def test_open_conversations_as_of_an_earlier_time(tmp_path) -> None:
    # At +3100 s: BR.burst's user wrote at +3000 s and waits; nothing has timed out;
    # BR.agent's first conversation was closed at +600 s; its reopen is in the future.
    con = warehouse(tmp_path, MESSAGES, as_of=at(3100), events=EVENTS)
    assert outcomes(con, "BR.burst", "status, ended_reason, closed_by, time_to_close_seconds, "
                    "awaiting_reply_since_at, reply_seconds") == [
        ("active", None, None, None, at(3000), [600.0, 1800.0])]
    # Ten started (BR.agent's reopen not yet), nine open, one closed by the agent:
    # the open ones count as not closed.
    got = day(con, SAO_PAULO, date(2026, 9, 1), "conversations_started, agent_closes, still_open, "
              "engaged_conversations, engaged_still_open, close_rate")
    assert got[:5] == (10, 1, 9, 9, 8)
    assert got[5] == pytest.approx(1 / 9)


def test_reply_seconds_keep_the_order_of_the_waits(tmp_path) -> None:
    """The list of waits is in wait order, not sorted by length, and the median is the
    middle one: conversation_outcomes gathers (wait_number, seconds) pairs in a group by
    and sorts them by wait number, so a sort by seconds would show here as [60, 300, 3000]."""
    con = warehouse(tmp_path, [
        inbound("f1", "BR.faster", at(0)),
        reply("f2", "BR.faster", 3000),          # the first wait: 3000 s
        inbound("f3", "BR.faster", at(3100)),
        reply("f4", "BR.faster", 3160),          # then 60 s
        inbound("f5", "BR.faster", at(3200)),
        reply("f6", "BR.faster", 3500),          # then 300 s
    ], as_of=AS_OF)
    assert outcomes(con, "BR.faster", "waits_count, exchanges_count, reply_seconds, reply_median_seconds, "
                    "reply_mean_seconds, reply_max_seconds, first_response_seconds, local_start_date") == [
        (3, 3, [3000.0, 60.0, 300.0], 300.0, 1120.0, 3000.0, 3000.0, date(2026, 9, 1))]


def test_a_thread_s_next_conversation_neither_answers_nor_automates(tmp_path) -> None:
    # DOMAIN R7-R9: the contact writes at 0 and the agent closes at +1 s with no reply;
    # a template at +2 s opens the thread's next conversation and a free-form message
    # follows at +4 s. That message is a human reply of the second conversation (no
    # inbound message there), not an automated reply to the first one's inbound 4 s
    # before; and it answers nothing in the first conversation, which stays unanswered.
    con = warehouse(tmp_path, [inbound("h1", "BR.handover", at(0)), template("h2", "BR.handover", 2),
                               reply("h3", "BR.handover", 4)],
                    as_of=AS_OF, events=[closed("ev3", "BR.handover", 1, "agent_close")])
    assert outcomes(con, "BR.handover", "ended_reason, time_to_close_seconds, inbound_count, human_reply_count, "
                    "automated_reply_count, template_count, first_response_seconds, exchanges_count, "
                    "awaiting_reply_since_at") == [
        ("agent_close", 1.0, 1, 0, 0, 0, None, 0, at(0)),
        ("timeout", 2.0 + DAY, 0, 1, 0, 1, None, 0, None),
    ]
    assert con.execute("select message_id, message_role, answered_by_message_id from int_thread_messages "
                       "where is_in_conversation order by sent_at").fetchall() == [
        ("h1", "inbound", None), ("h2", "template", None), ("h3", "human_reply", None)]
