"""Monthly free allowances (DOMAIN R16, R21), authentication-international (R25) and
the property that a bill is the sum of its units at the rate of their tier (R24)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st
from tests.helpers import CARD, KOLKATA, SAO_PAULO, Thread, build_threads, local, project


UTC = timezone.utc


def test_r21_regime_c_first_1000_service_messages_per_number_and_month_are_free(tmp_path: Path) -> None:
    # October 2026 (regime C): non-template messages are charged at the market's
    # utility rate, after 1,000 free per business phone number per local month (the
    # allowance is unconfirmed; the shipped data assumes it: tests/test_regime_c.py
    # builds both assumptions). Service has no volume tiers and is not counted with
    # utility (R21).
    busy = Thread("busy", "+5511980000001")
    start = local("2026-10-05 08:00")
    busy.user(start)
    for index in range(1002):
        busy.text(start + timedelta(seconds=10 * (index + 1)))
    busy.template(start + timedelta(hours=4), "utility")        # in the window, charged in C
    other = Thread("other", "+5511980000002", phone_number_id=KOLKATA)
    other.user(local("2026-10-05 08:00", KOLKATA))
    for index in range(3):
        other.text(local("2026-10-05 08:00", KOLKATA) + timedelta(minutes=index + 1))
    con, _ = build_threads(project(tmp_path), [busy, other], tmp_path)
    assert con.execute(
        "select phone_number_id, category, pricing_type, tier, rate_micros, count(*), sum(cost_micros) "
        "from billable_units group by all order by all").fetchall() == [
        # the 1,001st and 1,002nd service messages: Brazil's utility list rate (0.01), no
        # tier; the utility template is the month's first utility unit (tier 1-2, 0.01)
        (SAO_PAULO, "service", "free_tier", None, 0, 1000, 0),
        (SAO_PAULO, "service", "regular", None, 10_000, 2, 20_000),
        (SAO_PAULO, "utility", "regular", "1:2", 10_000, 1, 10_000),
        # the other number has its own allowance
        (KOLKATA, "service", "free_tier", None, 0, 3, 0),
    ]


def test_r16_first_1000_service_conversations_per_waba_and_month_are_free(tmp_path: Path) -> None:
    # October 2024 (CBP): both numbers belong to waba-1; the first 1,000 service
    # conversations of the month are FREE_TIER, the rest charged at the service rate;
    # from 2024-11-01 every service conversation is free.
    threads = []
    for index in range(1001):
        phone = SAO_PAULO if index < 600 else KOLKATA
        contact = f"+55119{index:07d}" if index < 1000 else "+919812345678"    # the last: India
        thread = Thread(f"s{index:04d}", contact, phone_number_id=phone)
        opened = datetime(2024, 10, 2, 12, 0, tzinfo=UTC) + timedelta(minutes=30 * index)
        thread.user(opened)
        thread.text(opened + timedelta(minutes=1))
        threads.append(thread)
    november = Thread("nov", "+5511988888888")
    november.user(local("2024-11-01 00:10"))
    november.text(local("2024-11-01 00:11"))
    con, _ = build_threads(project(tmp_path), [*threads, november], tmp_path)
    assert con.execute(
        "select billing_month, category, pricing_type, market, rate_micros, count(*), sum(cost_micros) "
        "from billable_units group by all order by all").fetchall() == [
        (datetime(2024, 10, 1).date(), "service", "free_tier", "Brazil", 0, 1000, 0),
        (datetime(2024, 10, 1).date(), "service", "regular", "India", 500, 1, 500),
        (datetime(2024, 11, 1).date(), "service", "free_customer_service", "Brazil", 0, 1, 0),
    ]


def test_r25_authentication_international(tmp_path: Path) -> None:
    def threads() -> list[Thread]:
        india, brazil = Thread("in", "+919876543210"), Thread("br", "+5511987650000")
        india.template(local("2025-08-05 10:00"), "authentication")
        brazil.template(local("2025-08-05 10:00"), "authentication")
        return [india, brazil]

    eligible, _ = build_threads(project(tmp_path / "eligible", eligible=True), threads(), tmp_path / "eligible")
    # a business in Brazil, eligible: an OTP to India (listed since 2024-07-01) is
    # authentication-international; one to Brazil, its own country, is not
    assert eligible.execute("select market, category, cost_micros from billable_units order by market").fetchall() == [
        ("Brazil", "authentication", 20_000),
        ("India", "authentication-international", 30_000),
    ]
    plain, _ = build_threads(project(tmp_path / "plain"), threads(), tmp_path / "plain")
    assert plain.execute("select market, category, cost_micros from billable_units order by market").fetchall() == [
        ("Brazil", "authentication", 20_000),
        ("India", "authentication", 2_000),
    ]


# --------------------------------------------------------------------------
# Property: cost = sum over units of the rate of the tier each falls in (R24)
# --------------------------------------------------------------------------

def tiered_card(tiers: dict[str, list[tuple[int, int | None, int]]]) -> str:
    lines = [line for line in CARD.splitlines()
             if not line.startswith(("2025-07-01,Brazil,utility", "2025-07-01,Brazil,authentication"))]
    for category, rows in tiers.items():
        for low, high, rate in rows:
            lines.append(f"2025-07-01,Brazil,{category},USD,{low},{'' if high is None else high},{rate},test")
    return "\n".join(lines) + "\n"


@st.composite
def tier_tables(draw: st.DrawFn) -> list[tuple[int, int | None, int]]:
    cuts = sorted(draw(st.sets(st.integers(min_value=1, max_value=9), max_size=3)))
    rates = draw(st.lists(st.integers(min_value=0, max_value=90_000), min_size=len(cuts) + 1,
                          max_size=len(cuts) + 1))
    lows = [1] + [cut + 1 for cut in cuts]
    highs: list[int | None] = [*cuts, None]
    return list(zip(lows, highs, rates))


def rate_for(tiers: list[tuple[int, int | None, int]], position: int) -> int:
    return next(rate for low, high, rate in tiers if low <= position and (high is None or position <= high))


@hypothesis_settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(utility=tier_tables(), authentication=tier_tables(),
       counts=st.tuples(st.integers(0, 12), st.integers(0, 12), st.integers(0, 4)))
def test_cost_is_the_sum_of_units_at_the_rate_of_their_tier(tmp_path_factory, utility, authentication, counts) -> None:
    root = tmp_path_factory.mktemp("tiers")
    settings = project(root, card=tiered_card({"utility": utility, "authentication": authentication}))
    threads = []
    moment = local("2025-09-01 00:00")
    # n utility and n authentication templates outside any window in September, the
    # last k utility ones of which fall in October (a new count), to distinct contacts
    for index in range(counts[0] + counts[1] + counts[2]):
        category = "authentication" if counts[0] <= index < counts[0] + counts[1] else "utility"
        when = moment + timedelta(hours=7 * index) if index < counts[0] + counts[1] \
            else local("2025-10-01 00:00") + timedelta(hours=index)
        thread = Thread(f"t{index:03d}", f"+5511970{index:06d}")
        thread.template(when, category)
        threads.append(thread)
    if not threads:
        return
    con, _ = build_threads(settings, threads, root)
    got = con.execute("select billing_month, category, rate_micros, cost_micros from billable_units "
                      "order by started_at").fetchall()
    expected = []
    positions: dict[tuple[object, str], int] = {}
    for month, category, _, _ in got:
        positions[(month, category)] = positions.get((month, category), 0) + 1
        rate = rate_for(utility if category == "utility" else authentication, positions[(month, category)])
        expected.append((month, category, rate, rate))
    assert got == expected
    assert con.execute("select sum(cost_micros) from costs_monthly").fetchone()[0] == sum(row[3] for row in expected)
