"""The billing engine (DOMAIN R13-R27), built for real: JSONL -> lake -> DuckDB.

Rates come from a small rate card written here, so every expected amount is worked
out by hand from it. One warehouse (module-scoped) holds many threads, one contact
each, so the worked examples, the regime switches and the tier boundaries are read
from a single build; tests that need their own data build their own.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import duckdb
import pytest

from pipeline.build import BuildSummary
from tests.helpers import KOLKATA, SAO_PAULO, Thread, UTC, build_threads, local, project, units_of



# --------------------------------------------------------------------------
# The scenarios warehouse: DOMAIN E1-E6 under CBP (June 2025) and PMP (August 2025),
# the regime switches, R20, tiers, waste. One contact per thread.
# --------------------------------------------------------------------------

CBP_DAY = "2025-06-10"
PMP_DAY = "2025-08-12"
# Utility tiers count per tenant x market x local month: E3's PMP traffic gets a month
# of its own so that E1's two utility charges do not move it up a tier.
PMP_DAYS = {"e3": "2025-10-14"}
AS_OF = datetime(2026, 10, 10, tzinfo=UTC)


def hour(day: str, hours: float, phone_number_id: int = SAO_PAULO) -> datetime:
    """h<hours> of an example: hours after 10:00 local on `day`."""
    return local(f"{day} 10:00", phone_number_id) + timedelta(hours=hours)


def example_e1(thread: Thread, day: str) -> None:
    thread.template(hour(day, 0), "marketing")
    thread.template(hour(day, 4), "utility")
    thread.template(hour(day, 10), "utility")


def example_e2(thread: Thread, day: str) -> None:
    thread.template(hour(day, 0), "marketing")
    thread.user(hour(day, 4))
    thread.text(hour(day, 5), kind="interactive")
    thread.text(hour(day, 25))
    thread.text(hour(day, 26))


def example_e3(thread: Thread, day: str) -> None:
    thread.template(hour(day, 0), "marketing")
    thread.user(hour(day, 2))
    thread.text(hour(day, 3))
    thread.template(hour(day, 4), "utility")
    thread.template(hour(day, 30), "utility")


def example_e4(thread: Thread, day: str) -> None:
    thread.user(local(f"{day} 10:00"), referral="ad")
    reply = local(f"{day} 22:00")
    thread.template(reply, "marketing")
    thread.text(reply + timedelta(hours=11))                    # 09:00 next day: window open
    thread.text(reply + timedelta(hours=13), status="failed")   # 11:00 next day: 131047
    thread.template(reply + timedelta(hours=48), "marketing")   # inside the 72 h
    thread.template(reply + timedelta(hours=72), "marketing")   # the window has ended


def example_e5(thread: Thread, day: str) -> None:
    thread.user(local(f"{day} 09:00"))
    thread.template(local(f"{day} 09:30"), "marketing")


def example_e6(thread: Thread, day: str) -> None:
    thread.user(local(f"{day} 00:00"))
    thread.text(local(f"{day} 23:59"))
    thread.text(local(f"{day} 00:01") + timedelta(days=1), status="failed")


EXAMPLES = {"e1": example_e1, "e2": example_e2, "e3": example_e3, "e4": example_e4,
            "e5": example_e5, "e6": example_e6}


def scenario_threads() -> dict[str, Thread]:
    threads: dict[str, Thread] = {}
    for number, (name, example) in enumerate(EXAMPLES.items()):
        for regime, day in (("cbp", CBP_DAY), ("pmp", PMP_DAYS.get(name, PMP_DAY))):
            key = f"{name}-{regime}"
            threads[key] = Thread(key, f"+55119100{number}{len(threads):04d}")
            example(threads[key], day)
    switch = {
        # DOMAIN R1/R27: the delivery's local date decides the regime, per timezone.
        "sp-last-cbp": (SAO_PAULO, datetime(2025, 7, 1, 2, 59, 59, tzinfo=UTC), None),
        "sp-first-pmp": (SAO_PAULO, datetime(2025, 7, 1, 3, 0, 0, tzinfo=UTC), None),
        "sp-delivered-late": (SAO_PAULO, datetime(2025, 7, 1, 2, 59, 0, tzinfo=UTC),
                              datetime(2025, 7, 1, 3, 0, 30, tzinfo=UTC)),
        "kol-last-cbp": (KOLKATA, datetime(2025, 6, 30, 18, 29, 59, tzinfo=UTC), None),
        "kol-first-pmp": (KOLKATA, datetime(2025, 6, 30, 18, 30, 0, tzinfo=UTC), None),
    }
    for number, (key, (phone, sent, delivered)) in enumerate(switch.items()):
        contact = f"+55119200{number:05d}" if phone == SAO_PAULO else f"+91981200{number:04d}"   # India
        threads[key] = Thread(key, contact, phone_number_id=phone)
        threads[key].template(sent, "marketing", delivered=delivered)
    # Regime C from 2026-10-01 local: a utility template inside the window is charged (R21).
    for number, (key, moment) in enumerate((("c-before", "2026-09-30 23:59"), ("c-after", "2026-10-01 00:00"))):
        threads[key] = Thread(key, f"+55119300{number:05d}")
        threads[key].user(local(moment) - timedelta(hours=1))
        threads[key].template(local(moment), "utility")
    # R20: a CBP utility conversation opened before the switch keeps utility free.
    carry = threads["carry"] = Thread("carry", "+5511940000001")
    carry.template(local("2025-06-30 20:00"), "utility")
    carry.template(local("2025-07-01 10:00"), "utility")        # inside the conversation
    carry.template(local("2025-07-01 21:00"), "utility")        # after its 24 h
    carry.template(local("2025-06-30 20:30"), "marketing")
    carry.template(local("2025-07-01 11:00"), "marketing")      # R18: charged, conversation or not
    # R24: five utility templates outside any window in November 2025 (Brazil, tenant 1):
    # tiers 1-2, 3-4, 5+; a free one in a window does not count; the month is local.
    tiers = threads["tiers"] = Thread("tiers", "+5511950000001")
    for day in (3, 4, 5):
        tiers.template(local(f"2025-11-{day:02d} 12:00"), "utility")
    tiers.user(local("2025-11-06 11:00"))
    tiers.template(local("2025-11-06 12:00"), "utility")         # free: inside the window
    tiers.template(local("2025-11-08 12:00"), "utility")
    tiers.template(local("2025-11-30 23:59"), "utility")         # 02:59 UTC on Dec 1: still November
    tiers.template(local("2025-12-01 00:00"), "utility")         # a new local month: tier 1 again
    # Waste: an unanswered re-engagement template, an answered one, one too recent to judge.
    waste = threads["waste"] = Thread("waste", "+5511960000001")
    waste.template(local("2025-09-02 10:00"), "marketing")      # no reply
    waste.template(local("2025-09-10 10:00"), "marketing")
    waste.user(local("2025-09-11 09:00"))                        # a reply within 24 h
    waste.template(AS_OF - timedelta(hours=2), "marketing")      # not judged yet
    return threads


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory: pytest.TempPathFactory) -> tuple[duckdb.DuckDBPyConnection, dict[str, Thread], BuildSummary]:
    root = tmp_path_factory.mktemp("scenarios")
    settings = project(root)
    threads = scenario_threads()
    con, summary = build_threads(settings, list(threads.values()), root, as_of=AS_OF)
    return con, threads, summary


# --------------------------------------------------------------------------
# DOMAIN E1-E6: exact units and exact money
# --------------------------------------------------------------------------

def test_e1_templates_without_a_user_message(scenarios) -> None:
    con, threads, _ = scenarios
    # CBP: 2 conversations, marketing and utility (the h10 utility template is absorbed).
    assert units_of(con, threads["e1-cbp"]) == [
        ("conversation", "marketing", "regular", 50_000),
        ("conversation", "utility", "regular", 10_000),
    ]
    # PMP: 3 charges M, U, U (utility tier 1-2 of August: 0.01 each).
    assert units_of(con, threads["e1-pmp"]) == [
        ("message", "marketing", "regular", 50_000),
        ("message", "utility", "regular", 10_000),
        ("message", "utility", "regular", 10_000),
    ]
    assert con.execute("select messages_count from billable_units where contact_key = ? order by started_at",
                       [threads["e1-cbp"].contact]).fetchall() == [(1,), (2,)]


def test_e2_service_conversation_opens_after_the_marketing_one_ends(scenarios) -> None:
    con, threads, _ = scenarios
    # CBP: marketing (absorbing the h5 list message) + service opened at h25 (free since 2024-11-01).
    assert units_of(con, threads["e2-cbp"]) == [
        ("conversation", "marketing", "regular", 50_000),
        ("conversation", "service", "free_customer_service", 0),
    ]
    service_start = con.execute("select started_at from billable_units where contact_key = ? and category = 'service'",
                                [threads["e2-cbp"].contact]).fetchone()[0]
    assert service_start == hour(CBP_DAY, 25)
    # PMP: 1 charge (M); the three free-form messages are free in the window.
    assert units_of(con, threads["e2-pmp"]) == [
        ("message", "marketing", "regular", 50_000),
        ("message", "service", "free_customer_service", 0),
        ("message", "service", "free_customer_service", 0),
        ("message", "service", "free_customer_service", 0),
    ]


def test_e3_utility_in_the_window_is_free_only_under_pmp(scenarios) -> None:
    con, threads, _ = scenarios
    assert units_of(con, threads["e3-cbp"]) == [
        ("conversation", "marketing", "regular", 50_000),
        ("conversation", "utility", "regular", 10_000),
        ("conversation", "utility", "regular", 10_000),
    ]
    assert units_of(con, threads["e3-pmp"]) == [
        ("message", "marketing", "regular", 50_000),
        ("message", "service", "free_customer_service", 0),
        ("message", "utility", "free_customer_service", 0),
        ("message", "utility", "regular", 10_000),
    ]


def test_e4_free_entry_point(scenarios) -> None:
    con, threads, _ = scenarios
    # CBP: one free 72 h entry point conversation from the reply; the template at
    # exactly +72 h is outside it and opens a marketing conversation.
    assert units_of(con, threads["e4-cbp"]) == [
        ("conversation", "referral_conversion", "free_entry_point", 0),
        ("conversation", "marketing", "regular", 50_000),
    ]
    assert con.execute("select messages_count from billable_units where contact_key = ? order by started_at",
                       [threads["e4-cbp"].contact]).fetchall() == [(3,), (1,)]
    # PMP: everything free until +72 h; free-form only until 10:00 next day (the 11:00
    # one failed and is not billed).
    assert units_of(con, threads["e4-pmp"]) == [
        ("message", "marketing", "free_entry_point", 0),
        ("message", "service", "free_entry_point", 0),
        ("message", "marketing", "free_entry_point", 0),
        ("message", "marketing", "regular", 50_000),
    ]


def test_e5_marketing_in_the_window_is_charged(scenarios) -> None:
    con, threads, _ = scenarios
    assert units_of(con, threads["e5-cbp"]) == [("conversation", "marketing", "regular", 50_000)]
    assert units_of(con, threads["e5-pmp"]) == [("message", "marketing", "regular", 50_000)]


def test_e6_free_form_after_the_window_fails_and_is_not_billed(scenarios) -> None:
    con, threads, _ = scenarios
    assert units_of(con, threads["e6-cbp"]) == [("conversation", "service", "free_customer_service", 0)]
    assert units_of(con, threads["e6-pmp"]) == [("message", "service", "free_customer_service", 0)]
    for key in ("e6-cbp", "e6-pmp"):
        failed = threads[key].records[-1]["message_id"]
        assert con.execute("select reason, cost_micros from wasted_spend where message_id = ?",
                           [failed]).fetchall() == [("free_form_outside_window", 0)]


# --------------------------------------------------------------------------
# Regimes switch at local midnight (R1, R27), R20, R21
# --------------------------------------------------------------------------

def test_regime_switches_at_local_midnight_in_each_timezone(scenarios) -> None:
    con, threads, _ = scenarios
    got = {key: con.execute(
        "select unit, pricing_model, regime, billing_date, cost_micros from billable_units "
        "where contact_key = ? and phone_number_id = ?",
        [threads[key].contact, threads[key].phone_number_id]).fetchall()
        for key in ("sp-last-cbp", "sp-first-pmp", "sp-delivered-late", "kol-last-cbp", "kol-first-pmp")}
    assert got == {
        "sp-last-cbp": [("conversation", "CBP", "A", date(2025, 6, 30), 50_000)],
        "sp-first-pmp": [("message", "PMP", "B", date(2025, 7, 1), 50_000)],
        # sent at 23:59 local on June 30, delivered after midnight: the delivery decides
        "sp-delivered-late": [("message", "PMP", "B", date(2025, 7, 1), 50_000)],
        # Kolkata writing to India (the market is the recipient's, R22): marketing 0.01
        "kol-last-cbp": [("conversation", "CBP", "A", date(2025, 6, 30), 10_000)],
        "kol-first-pmp": [("message", "PMP", "B", date(2025, 7, 1), 10_000)],
    }


def test_regime_c_charges_utility_inside_the_window(scenarios) -> None:
    con, threads, _ = scenarios
    assert [row[1:] for row in con.execute(
        "select contact_key, regime, pricing_type, cost_micros from billable_units "
        "where contact_key in (?, ?) order by started_at",
        [threads["c-before"].contact, threads["c-after"].contact]).fetchall()] == [
        ("B", "free_customer_service", 0),
        ("C", "regular", 10_000),
    ]


def test_r20_cbp_utility_conversation_open_at_the_switch_keeps_utility_free(scenarios) -> None:
    con, threads, _ = scenarios
    assert con.execute(
        "select unit, pricing_model, category, pricing_type, cost_micros, messages_count from billable_units "
        "where contact_key = ? order by started_at", [threads["carry"].contact]).fetchall() == [
        ("conversation", "CBP", "utility", "regular", 10_000, 1),
        ("conversation", "CBP", "marketing", "regular", 50_000, 1),
        # delivered in regime B: a PMP unit, free because its CBP conversation is still open
        ("message", "PMP", "utility", "free_customer_service", 0, 1),
        # R18: a marketing template is charged per message after the switch
        ("message", "PMP", "marketing", "regular", 50_000, 1),
        # after the conversation's 24 h: charged (first charged utility of July: tier 1)
        ("message", "PMP", "utility", "regular", 10_000, 1),
    ]


# --------------------------------------------------------------------------
# Volume tiers (R24)
# --------------------------------------------------------------------------

def test_the_message_that_crosses_a_tier_is_priced_at_the_next_tier(scenarios) -> None:
    con, threads, _ = scenarios
    assert con.execute(
        "select billing_date, pricing_type, tier, rate_micros, cost_micros from billable_units "
        "where contact_key = ? order by started_at", [threads["tiers"].contact]).fetchall() == [
        (date(2025, 11, 3), "regular", "1:2", 10_000, 10_000),
        (date(2025, 11, 4), "regular", "1:2", 10_000, 10_000),
        (date(2025, 11, 5), "regular", "3:4", 8_000, 8_000),      # the 3rd charged: crosses into tier 3-4
        (date(2025, 11, 6), "free_customer_service", None, 0, 0),  # free: not counted
        (date(2025, 11, 8), "regular", "3:4", 8_000, 8_000),
        (date(2025, 11, 30), "regular", "5:", 6_000, 6_000),       # the 5th: crosses into 5+
        (date(2025, 12, 1), "regular", "1:2", 10_000, 10_000),     # December: counting restarts
    ]


def test_costs_daily_and_monthly_add_up_to_the_units(scenarios) -> None:
    con, _, _ = scenarios
    total = con.execute("select sum(cost_micros), count(*) from billable_units").fetchone()
    assert con.execute("select sum(cost_micros), sum(units) from costs_daily").fetchone() == total
    assert con.execute("select sum(cost_micros), sum(units) from costs_monthly").fetchone() == total
    assert con.execute(
        "select cost_micros, units from costs_monthly where billing_month = date '2025-11-01' "
        "and category = 'utility' and pricing_type = 'regular' and tier = '3:4'").fetchall() == [(16_000, 2)]


def test_grains_are_unique(scenarios) -> None:
    con, _, _ = scenarios
    for table, key in (
        ("billable_units", "unit, unit_id"),
        ("costs_daily", "billing_date, phone_number_id, country_code, market, category, pricing_type, tier"),
        ("costs_monthly", "billing_month, phone_number_id, country_code, market, category, pricing_type, tier"),
        ("pricing_reconciliation", "message_id"),
        ("wasted_spend", "message_id"),
        ("regime_whatif", "billing_month, phone_number_id, regime"),
        ("analytics_reconciliation", "billing_date, phone_number_id, phone_number, country_code, category, pricing_type"),
        ("int_bill_calendar", "calendar_date"),
        ("int_bill_rules_daily", "calendar_date, scenario, category"),
        ("int_bill_rate_quarters", "quarter_start, market, category, currency, tier_from"),
        ("int_bill_outbound", "message_id"),
        ("int_bill_entry_points", "phone_number_id, contact_key, opened_at"),
        ("int_thread_messages", "phone_number_id, contact_key, thread_position"),
        ("int_bill_cbp_conversations", "message_id"),
        ("int_bill_messages", "message_id"),
    ):
        duplicates = con.execute(
            f"select count(*) from (select {key} from {table} group by all having count(*) > 1)").fetchone()[0]
        assert duplicates == 0, table


# --------------------------------------------------------------------------
# Wasted spend and the what-if
# --------------------------------------------------------------------------

def test_wasted_spend_reasons(scenarios) -> None:
    con, threads, _ = scenarios
    got = con.execute(
        "select message_id, reason, cost_micros, currency, pricing_model, template_name, billing_date "
        "from wasted_spend where contact_key in (?, ?, ?, ?) order by occurred_at",
        [threads[key].contact for key in ("e5-cbp", "e5-pmp", "waste", "e4-pmp")]).fetchall()
    assert got == [
        # E5 under CBP (June 2025: service conversations free since 2024-11, R16): the
        # marketing conversation opened inside the window; a free-form reply was free
        ("e5-cbp-02", "template_in_open_window", 50_000, "USD", "CBP", "marketing_tpl", date(2025, 6, 10)),
        # E5 under PMP: the same (R19: free-form free in the window, marketing charged)
        ("e5-pmp-02", "template_in_open_window", 50_000, "USD", "PMP", "marketing_tpl", date(2025, 8, 12)),
        # E4: the free-form message after the 24 h window failed (131047): lost, never billed
        ("e4-pmp-04", "free_form_outside_window", 0, "USD", "PMP", None, date(2025, 8, 13)),
        # E4: the template at +72 h, outside every window, got no reply
        ("e4-pmp-06", "unanswered_re_engagement", 50_000, "USD", "PMP", "marketing_tpl", date(2025, 8, 15)),
        # not waste: waste-01 went to a contact who had never written (acquisition, not
        # re-engagement); waste-02 got a reply (waste-03); waste-04 is too recent to judge
    ]


def test_regime_c_does_not_count_a_template_in_the_window_as_waste(scenarios) -> None:
    con, threads, _ = scenarios
    assert con.execute("select count(*) from wasted_spend where contact_key = ?",
                       [threads["c-after"].contact]).fetchone()[0] == 0


def test_regime_whatif_reprices_a_month_under_every_regime(scenarios) -> None:
    con, _, _ = scenarios
    # June 2025 (CBP) on the Sao Paulo number. The examples' traffic, re-priced:
    got = con.execute(
        "select regime, pricing_model, cost_micros, actual_cost_micros, actual_regimes from regime_whatif "
        "where billing_month = date '2025-06-01' and phone_number_id = ? order by regime",
        [SAO_PAULO]).fetchall()
    actual = con.execute("select sum(cost_micros) from billable_units where billing_month = date '2025-06-01' "
                         "and phone_number_id = ?", [SAO_PAULO]).fetchone()[0]
    assert [row[0] for row in got] == ["A", "B", "C"]
    assert got[0][2] == actual and got[0][3] == actual and got[0][4] == "A"
    # Under B: E1 M+U+U (the June card has no tiers: 0.05 + 0.01 + 0.01), E2 M, E3 M+U
    # (h4 free in the window), E4 M at +72 h, E5 M; E6 and the others nothing; the
    # carry thread's June templates U 0.01 + M 0.05; sp-last-cbp M 0.05.
    b_cost = 70_000 + 50_000 + 60_000 + 50_000 + 50_000 + 60_000 + 50_000
    assert got[1][1:3] == ("PMP", b_cost)


# --------------------------------------------------------------------------
# Build output
# --------------------------------------------------------------------------

def test_build_prints_the_bill_and_the_agreement_lines(scenarios) -> None:
    _, _, summary = scenarios
    lines = [line for line in summary.checks if line.startswith(("bill:", "pricing", "wasted:", "what-if:"))]
    assert lines[0].startswith("bill: ") and " USD for " in lines[0]
    assert "pricing: no delivered message carries Meta's pricing object" in lines
    assert "pricing analytics: no pricing_analytics data to compare with" in lines
