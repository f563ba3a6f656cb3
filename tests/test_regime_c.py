"""Regime C as Meta stated it (DOMAIN R21) and Meta Business Agent messages (R21a),
built for real: JSONL -> lake -> DuckDB.

Rates come from tests.helpers.CARD: Brazil utility from 2025-07-01 has the tiers
1-2 at 0.010, 3-4 at 0.008, 5+ at 0.006 (10,000 / 8,000 / 6,000 micros); India utility
is 0.001 (1,000 micros), one tier. From 2026-10-01 a service message is charged at its
market's utility rate with no volume tiers (the first tier's rate, 10,000 in Brazil),
and it is not counted with utility templates. Every expected amount is worked out by
hand from those numbers.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb

from pipeline.config import Settings, load
from pipeline.pages.money import allowance_assumptions
from pipeline.simulate.clock import epoch_day
from pipeline.simulate.meta import FreeAllowances, MetaNumber, MetaThread, Pricing
from pipeline.simulate.clock import LocalClock
from tests.helpers import KOLKATA, SAO_PAULO, Thread, build_threads, local, project

OCTOBER = date(2026, 10, 1)


def assuming(root: Path, assume: bool) -> Settings:
    """tests.helpers' project with ``[billing] assume_service_allowance`` set in its
    convo.toml (the key goes right after the [billing] table's header)."""
    project(root)
    path = root / "convo.toml"
    text = path.read_text(encoding="utf-8")
    assert text.count("[billing]\n") == 1
    path.write_text(text.replace("[billing]\n", f"[billing]\nassume_service_allowance = {'true' if assume else 'false'}\n"),
                    encoding="utf-8")
    settings = load(root / "convo.toml")
    assert settings.billing.assume_service_allowance is assume
    return settings


def bill(con: duckdb.DuckDBPyConnection) -> list[tuple[object, ...]]:
    return con.execute(
        "select phone_number_id, category, pricing_type, tier, rate_micros, count(*), sum(cost_micros) "
        "from billable_units group by all order by all").fetchall()


# --------------------------------------------------------------------------
# R21: service has no volume tiers and is not in the utility tier counter
# --------------------------------------------------------------------------

def test_r21_service_is_untiered_and_does_not_push_utility_up_its_tiers(tmp_path: Path) -> None:
    # One Brazilian contact writes at 08:00 (the window is open until 08:00 next day).
    # Three service replies at 08:01-08:03, then three utility templates at 09:00-09:02,
    # all inside the window, all charged in regime C. Without the allowance (so the
    # service messages are charged from the first):
    # * service: 3 x the utility list rate 10,000, no tier           = 30,000
    # * utility: the 1st and 2nd utility units of the month (tier 1:2, 10,000 each)
    #   and the 3rd (tier 3:4, 8,000)                                 = 28,000
    # Had service counted with utility, the templates would be units 4-6 of the
    # counter (8,000 + 6,000 + 6,000) and service units 1-3 (10,000 + 10,000 + 8,000).
    thread = Thread("tiers", "+5511970000001")
    opened = local("2026-10-06 08:00")
    thread.user(opened)
    for minute in (1, 2, 3):
        thread.text(opened + timedelta(minutes=minute))
    for minute in (60, 61, 62):
        thread.template(opened + timedelta(minutes=minute), "utility")
    settings = assuming(tmp_path, False)
    con, _ = build_threads(settings, [thread], tmp_path)
    assert bill(con) == [
        (SAO_PAULO, "service", "regular", None, 10_000, 3, 30_000),
        (SAO_PAULO, "utility", "regular", "1:2", 10_000, 2, 20_000),
        (SAO_PAULO, "utility", "regular", "3:4", 8_000, 1, 8_000),
    ]
    assert con.execute("select sum(cost_micros) from costs_monthly").fetchone() == (58_000,)
    assert con.execute(
        "select message_id, tier from billable_units where category = 'utility' order by started_at").fetchall() == [
        ("tiers-05", "1:2"), ("tiers-06", "1:2"), ("tiers-07", "3:4")]


def test_r21_service_list_rate_stays_however_many_are_sent(tmp_path: Path) -> None:
    # Five service messages would reach Brazil's third utility tier (5+) if they were
    # tiered: untiered, all five cost the list rate: 5 x 10,000 = 50,000.
    thread = Thread("many", "+5511970000002")
    opened = local("2026-10-07 10:00")
    thread.user(opened)
    for second in range(1, 6):
        thread.text(opened + timedelta(seconds=second))
    con, _ = build_threads(assuming(tmp_path, False), [thread], tmp_path)
    assert bill(con) == [(SAO_PAULO, "service", "regular", None, 10_000, 5, 50_000)]


# --------------------------------------------------------------------------
# R21: the unconfirmed allowance, both assumptions
# --------------------------------------------------------------------------

def allowance_threads() -> list[Thread]:
    # Sao Paulo number: 1,002 service messages and one utility template in the window;
    # Kolkata number (India): 3 service messages. All in October 2026.
    busy = Thread("busy", "+5511980000001")
    start = local("2026-10-05 08:00")
    busy.user(start)
    for index in range(1002):
        busy.text(start + timedelta(seconds=10 * (index + 1)))
    busy.template(start + timedelta(hours=4), "utility")
    other = Thread("other", "+919800000002", phone_number_id=KOLKATA)
    other.user(local("2026-10-05 08:00", KOLKATA))
    for index in range(3):
        other.text(local("2026-10-05 08:00", KOLKATA) + timedelta(minutes=index + 1))
    return [busy, other]


def test_r21_allowance_assumed_first_1000_service_messages_per_number_are_free(tmp_path: Path) -> None:
    con, _ = build_threads(assuming(tmp_path, True), allowance_threads(), tmp_path)
    assert bill(con) == [
        # the 1,001st and 1,002nd service messages: the utility list rate, no tier
        (SAO_PAULO, "service", "free_tier", None, 0, 1000, 0),
        (SAO_PAULO, "service", "regular", None, 10_000, 2, 20_000),
        # the utility template is the month's first utility unit: tier 1:2
        (SAO_PAULO, "utility", "regular", "1:2", 10_000, 1, 10_000),
        # the Kolkata number has its own 1,000
        (KOLKATA, "service", "free_tier", None, 0, 3, 0),
    ]
    assert con.execute("select * from int_bill_assumptions").fetchall() == [
        (OCTOBER, "service", True, 1000, "phone_number_month", 1003, 2)]
    # the cost report says which assumption priced the month
    assert allowance_assumptions(con) == [
        "2026-10: service priced assuming the unconfirmed 1,000 free per phone number and month (DOMAIN R21): "
        "1,003 free, 2 charged; [billing] assume_service_allowance switches it"]


def test_r21_allowance_not_assumed_every_service_message_is_charged(tmp_path: Path) -> None:
    con, _ = build_threads(assuming(tmp_path, False), allowance_threads(), tmp_path)
    assert bill(con) == [
        (SAO_PAULO, "service", "regular", None, 10_000, 1002, 10_020_000),
        (SAO_PAULO, "utility", "regular", "1:2", 10_000, 1, 10_000),
        # India's utility rate, one tier: 3 x 1,000
        (KOLKATA, "service", "regular", None, 1_000, 3, 3_000),
    ]
    assert con.execute("select * from int_bill_assumptions").fetchall() == [
        (OCTOBER, "service", False, 1000, "phone_number_month", 0, 1005)]
    assert allowance_assumptions(con) == [
        "2026-10: service priced without the unconfirmed 1,000 free per phone number and month (DOMAIN R21): "
        "0 free, 1,005 charged; [billing] assume_service_allowance switches it"]


def test_r21_the_default_assumption_is_the_data_s(tmp_path: Path) -> None:
    # data/pricing_policy.csv: assume_unconfirmed_allowance = 1 from 2026-10-01
    thread = Thread("default", "+5511980000009")
    thread.user(local("2026-10-05 08:00"))
    thread.text(local("2026-10-05 08:01"))
    con, _ = build_threads(project(tmp_path), [thread], tmp_path)
    assert bill(con) == [(SAO_PAULO, "service", "free_tier", None, 0, 1, 0)]
    assert con.execute("select billing_month, is_free_allowance_applied from int_bill_assumptions").fetchall() == [
        (OCTOBER, True)]


def test_months_before_regime_c_have_no_assumption_to_state(tmp_path: Path) -> None:
    thread = Thread("sept", "+5511980000010")
    thread.user(local("2026-09-05 08:00"))
    thread.text(local("2026-09-05 08:01"))
    con, _ = build_threads(project(tmp_path), [thread], tmp_path)
    assert bill(con) == [(SAO_PAULO, "service", "free_customer_service", None, 0, 1, 0)]
    assert con.execute("select count(*) from int_bill_assumptions").fetchone() == (0,)


# --------------------------------------------------------------------------
# The simulator's Meta oracle follows the same assumption
# --------------------------------------------------------------------------

def oracle_line(assume: bool) -> list[Pricing]:
    clock = LocalClock("America/Sao_Paulo")
    thread = MetaThread(MetaNumber(555, "waba-1", clock), "BR", FreeAllowances.counting(assume))
    day = epoch_day(date(2026, 10, 5))
    opened = clock.local_to_utc(day, 0) + 8 * 3600
    thread.inbound(opened)
    return [thread.outbound(opened + 60 * (index + 1), None, index + 1) for index in range(1002)]


def test_oracle_regime_c_allowance_both_assumptions() -> None:
    charged = Pricing(True, "PMP", "regular", "service")
    free = Pricing(False, "PMP", "free_tier", "service")
    assert oracle_line(True) == [free] * 1000 + [charged] * 2
    assert oracle_line(False) == [charged] * 1002


# --------------------------------------------------------------------------
# R21a: Meta Business Agent messages are unpriced, never service
# --------------------------------------------------------------------------

def test_r21a_business_agent_messages_are_unpriced_not_service(tmp_path: Path) -> None:
    # An export marks them by type meta_business_agent. (Meta's pricing object with
    # category meta_business_agent is read by the pricing (sql/functions/bill_price.sql) too, but the ingest's
    # pricing-category enum does not accept that value yet: such a record is
    # quarantined as unknown_enum.)
    thread = Thread("agent", "+5511960000001")
    thread.user(local("2026-08-10 09:00"))
    thread.text(local("2026-08-10 09:01"), kind="meta_business_agent")          # regime B
    thread.user(local("2026-10-10 09:00"))
    thread.text(local("2026-10-10 09:01"), kind="meta_business_agent")          # regime C
    thread.text(local("2026-10-10 09:02"))                                       # a plain service message
    con, _ = build_threads(assuming(tmp_path, False), [thread], tmp_path)
    assert con.execute(
        "select message_id, category, pricing_type, rate_micros, cost_micros from billable_units "
        "order by message_id").fetchall() == [
        ("agent-02", "meta_business_agent", None, None, None),
        ("agent-04", "meta_business_agent", None, None, None),
        ("agent-05", "service", "regular", 10_000, 10_000),
    ]
    assert con.execute(
        "select category, sum(units), sum(cost_micros) from costs_monthly group by all order by all").fetchall() == [
        ("meta_business_agent", 2, None), ("service", 1, 10_000)]
