"""Rate cards and pricing rules as data: the shipped files, and every one-line error a
user can cause (file and line named)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline import markets, pricing, rates
from pipeline.build import BuildError, build
from pipeline.cli import cli
from pipeline.config import Billing, default_rate_card
from tests.helpers import CARD, project

HEADER = "effective_from,market,category,currency,tier_from,tier_to,rate_micros"
BASE = [
    "2025-01-01,Brazil,marketing,USD,1,,50000",
    "2025-01-01,Brazil,utility,USD,1,,10000",
    "2025-01-01,Brazil,authentication,USD,1,,20000",
]


class _Settings:
    def __init__(self, card: Path, eligible: bool = False) -> None:
        self.billing = Billing(rate_card=card, business_country="BR", auth_international_eligible=eligible)


def check(tmp_path: Path, *rows: str, header: str = HEADER, eligible: bool = False) -> rates.RateCard:
    card = tmp_path / "card.csv"
    card.write_text("\n".join([header, *rows]) + "\n")
    return pricing.load_rate_card(_Settings(card, eligible))   # type: ignore[arg-type]


def error(tmp_path: Path, *rows: str, header: str = HEADER, eligible: bool = False) -> str:
    with pytest.raises(rates.RateCardError) as caught:
        check(tmp_path, *rows, header=header, eligible=eligible)
    return str(caught.value)


def test_the_shipped_card_is_labelled_illustrative_and_covers_every_market(tmp_path: Path) -> None:
    text = default_rate_card().read_text()
    assert text.startswith("# ILLUSTRATIVE rate card, USD: NOT Meta's published rates.")
    card = pricing.load_rate_card(_Settings(default_rate_card(), eligible=True))   # type: ignore[arg-type]
    assert {rate.source for rate in card.rates} == {"illustrative estimate, not Meta's rate (data/README.md)"}
    assert {rate.effective_from.isoformat() for rate in card.rates} >= {
        "2025-01-01", "2025-04-01", "2025-07-01", "2025-10-01", "2026-01-01"}
    in_force = rates.keys_in_force(card.rates, pricing.date(2026, 10, 1))
    for market in markets.MARKETS:
        for category in ("marketing", "utility", "authentication", "service"):
            assert (market, category, "USD") in in_force, (market, category)
        # R24: utility and authentication have volume tiers, marketing a single one
        assert len(in_force[(market, "utility", "USD")]) == 5
        assert len(in_force[(market, "marketing", "USD")]) == 1
    auth_markets = {market for market, category, _ in in_force if category == "authentication-international"}
    assert auth_markets == {"Egypt", "India", "Indonesia", "Malaysia", "Nigeria", "Pakistan", "Saudi Arabia",
                            "South Africa", "United Arab Emirates"}


def test_a_small_card_covering_some_markets_is_enough(tmp_path: Path) -> None:
    card = check(tmp_path, *BASE, "2025-07-01,Brazil,utility,USD,1,100,9000", "2025-07-01,Brazil,utility,USD,101,,8000")
    assert [rate.tier for rate in card.rates] == ["1:", "1:", "1:", "1:100", "101:"]


@pytest.mark.parametrize(("rows", "problem"), [
    (["2025-02-01,Brazil,marketing,USD,1,,50000"],
     "2: effective_from: 2025-02-01 is not a quarter start (Meta changes rates only on Jan 1, Apr 1, Jul 1 and "
     "Oct 1, DOMAIN R23)"),
    (["2025-13-01,Brazil,marketing,USD,1,,50000"], "2: effective_from: not a date YYYY-MM-DD: '2025-13-01'"),
    (["2025-01-01,Brasil,marketing,USD,1,,50000"],
     "2: market: unknown market 'Brasil' (the DOMAIN R22 names of data/market_map.csv)"),
    (["2025-01-01,Brazil,promotion,USD,1,,50000"],
     "2: category: unknown category 'promotion' (one of marketing, utility, authentication, "
     "authentication-international, service)"),
    (["2025-01-01,Brazil,marketing,usd,1,,50000"], "2: currency: must be an ISO 4217 code like USD, got 'usd'"),
    (["2025-01-01,Brazil,marketing,USD,0,,50000"], "2: tier_from: must be a whole number from 1, got '0'"),
    (["2025-01-01,Brazil,marketing,USD,5,3,50000"],
     "2: tier_to: must be empty (no upper bound) or a whole number >= tier_from 5, got '3'"),
    (["2025-01-01,Brazil,marketing,USD,1,,0.05"],
     "2: rate_micros: must be a whole number of millionths of the currency (0.0625 USD = 62500), got '0.05'"),
    (["2025-01-01,Brazil,marketing,USD,1,,-5"],
     "2: rate_micros: must be a whole number of millionths of the currency (0.0625 USD = 62500), got '-5'"),
    (["2025-01-01,Brazil,marketing,USD,1,"], "2: expected 7 fields, got 6"),
    ([*BASE, "2025-07-01,Brazil,utility,USD,1,100,9000", "2025-07-01,Brazil,utility,USD,50,,8000"],
     "6: tiers overlap: Brazil utility USD from 2025-07-01: tier 50: overlaps tier 1:100 on line 5"),
    ([*BASE, "2025-07-01,Brazil,utility,USD,1,100,9000", "2025-07-01,Brazil,utility,USD,1,100,9000",
      "2025-07-01,Brazil,utility,USD,101,,8000"],
     "6: tiers overlap: Brazil utility USD from 2025-07-01: tier 1:100 overlaps tier 1:100 on line 5"),
    ([*BASE, "2025-07-01,Brazil,utility,USD,1,100,9000", "2025-07-01,Brazil,utility,USD,200,,8000"],
     "6: tiers leave a gap: Brazil utility USD from 2025-07-01: units 101 to 199 have no rate"),
    ([*BASE, "2025-07-01,Brazil,utility,USD,2,,9000"],
     "5: tiers of Brazil utility USD from 2025-07-01 must start at 1, the first starts at 2"),
    ([*BASE, "2025-07-01,Brazil,utility,USD,1,100,9000"],
     "5: the last tier of Brazil utility USD from 2025-07-01 must be open-ended (empty tier_to), got 1:100"),
    (BASE[:2], "2: missing category: Brazil has no authentication rate in USD in force on 2025-01-01"),
    ([*BASE, "2025-04-01,India,marketing,USD,1,,10000", "2025-04-01,India,utility,USD,1,,1000",
      "2025-04-01,India,authentication,USD,1,,2000"],
     "5: gap in dates: India has no USD rates in force from 2025-01-01 (its first rates start 2025-04-01)"),
])
def test_rate_card_errors_name_file_and_line(tmp_path: Path, rows: list[str], problem: str) -> None:
    assert error(tmp_path, *rows) == f"{tmp_path / 'card.csv'}:{problem}"


def test_rate_card_header_and_empty_files(tmp_path: Path) -> None:
    assert error(tmp_path, header="effective_from,market,rate") == (
        f"{tmp_path / 'card.csv'}:1: the columns must be {HEADER}[,source[,confidence]], got effective_from,market,rate")
    assert error(tmp_path, header="day,country,price") == (
        f"{tmp_path / 'card.csv'}:1: the columns must be {HEADER}[,source[,confidence]] (or Meta's Pricing.csv / "
        "Tier Pricing.csv), got day,country,price")
    assert error(tmp_path, header=HEADER + ",source,note") == (
        f"{tmp_path / 'card.csv'}:1: the columns must be {HEADER}[,source[,confidence]], got {HEADER},source,note")
    assert error(tmp_path) == f"{tmp_path / 'card.csv'}:1: the rate card has no rates"
    missing = tmp_path / "nowhere.csv"
    with pytest.raises(rates.RateCardError, match=r"nowhere.csv: rate card not found \(billing.rate_card in convo.toml\)"):
        pricing.load_rate_card(_Settings(missing))   # type: ignore[arg-type]


def test_categories_become_required_when_the_rules_can_charge_them(tmp_path: Path) -> None:
    # Before 2024-11-01 CBP service conversations were charged (R16): a card covering
    # October 2024 needs a service rate; from November on it does not.
    october = [row.replace("2025-01-01", "2024-10-01") for row in BASE]
    assert error(tmp_path, *october) == (
        f"{tmp_path / 'card.csv'}:2: missing category: Brazil has no service rate in USD in force on 2024-10-01")
    # An eligible business needs authentication-international rates for the listed
    # markets the card names (R25): India from 2024-07-01.
    india = [row.replace("Brazil", "India") for row in BASE]
    assert error(tmp_path, *india, eligible=True) == (
        f"{tmp_path / 'card.csv'}:2: missing category: India has no authentication-international rate "
        "in USD in force on 2025-01-01")
    check(tmp_path, *india)


def test_a_bad_card_stops_the_build_with_one_line(tmp_path: Path) -> None:
    settings = project(tmp_path, card=CARD.replace("2025-07-01,Brazil,utility,USD,3,4,8000",
                                                   "2025-07-01,Brazil,utility,USD,3,4,0.008"))
    with pytest.raises(BuildError, match=r"card.csv:13: rate_micros: must be a whole number"):
        build(settings)
    result = CliRunner().invoke(cli, ["build", "--config", str(tmp_path / "convo.toml")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1].startswith("Error: ")
    assert "card.csv:13: rate_micros: must be a whole number of millionths" in result.output
    assert "Traceback" not in result.output


# --------------------------------------------------------------------------
# pricing_rules.csv, pricing_policy.csv, auth_international.csv
# --------------------------------------------------------------------------

def test_the_shipped_rules_switch_regimes_on_the_domain_dates() -> None:
    rules = pricing.load_rules()
    assert pricing.regime_in_force(rules, pricing.date(2025, 6, 30)) == ("A", "CBP")
    assert pricing.regime_in_force(rules, pricing.date(2025, 7, 1)) == ("B", "PMP")
    assert pricing.regime_in_force(rules, pricing.date(2026, 9, 30)) == ("B", "PMP")
    assert pricing.regime_in_force(rules, pricing.date(2026, 10, 1)) == ("C", "PMP")
    assert pricing.load_policy(since=pricing.date(2023, 6, 1))
    assert {row.country_code for row in pricing.load_auth_international()} == {
        "EG", "IN", "ID", "MY", "NG", "PK", "SA", "ZA", "AE"}


RULES_HEADER = ",".join(pricing.RULE_COLUMNS)


def rules_file(tmp_path: Path, edit: callable) -> Path:   # type: ignore[valid-type]
    lines = pricing.rules_path().read_text().splitlines()
    path = tmp_path / "rules.csv"
    path.write_text("\n".join(edit(lines)) + "\n")
    return path


@pytest.mark.parametrize(("edit", "problem"), [
    (lambda lines: [line.replace("2026-10-01,,", "2026-11-01,,") if line.startswith("C,") else line for line in lines],
     "14: gap in dates: no rule in force on 2026-10-01"),
    (lambda lines: [line.replace("B,PMP,2025-07-01,2026-10-01,utility", "B,PMP,2025-07-01,2026-10-02,utility")
                    for line in lines],
     "20: utility: its period overlaps the row on line 15 on 2026-10-01"),
    (lambda lines: [line.replace("C,PMP,2026-10-01,,marketing", "D,PMP,2026-10-01,,marketing") for line in lines],
     "19: two regimes in force on 2026-10-01: C, D"),
    (lambda lines: [line.replace("C,PMP,2026-10-01,,marketing", "A,PMP,2026-10-01,,marketing") for line in lines],
     "19: regime A is CBP on line 2, not PMP"),
    (lambda lines: [line.replace(",free_customer_service,regular,utility,", ",free,regular,utility,") for line in lines],
     "15: in_service_window: must be regular, free_customer_service or free_entry_point (free_tier comes from "
     "free_allowance), got 'free'"),
    (lambda lines: [line for line in lines if not line.startswith("C,PMP,2026-10-01,,authentication,")],
     "19: missing category: no authentication rule in force on 2026-10-01"),
    (lambda lines: [line.replace("1000,phone_number_month", "1000,contact_month") for line in lines],
     "23: free_allowance_per: must be waba_month or phone_number_month, got 'contact_month'"),
    (lambda lines: [line.replace("regular,regular,utility,1000", "regular,regular,,1000") for line in lines],
     "23: rate_category: required when a unit can be charged (regular)"),
])
def test_rule_errors_name_file_and_line(tmp_path: Path, edit, problem: str) -> None:
    path = rules_file(tmp_path, edit)
    with pytest.raises(pricing.PricingDataError) as caught:
        pricing.load_rules(path)
    assert str(caught.value) == f"{path}:{problem}"


def test_policy_errors_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "pricing_policy.csv"
    shipped = pricing.policy_path().read_text()
    path.write_text(shipped.replace("cbp_conversation_hours,24,", "cbp_conversation_hours,96,"))
    with pytest.raises(pricing.PricingDataError) as caught:
        pricing.load_policy(path)
    assert str(caught.value) == (
        f"{path}:4: cbp_conversation_hours (96) must not exceed entry_point_window_hours (72) on 2023-06-01: "
        "billing assumes a conversation never outlives the entry point window that closed it")
    path.write_text(shipped.replace("entry_point_window_hours,72,", "entry_point_window_hours,72.5,"))
    with pytest.raises(pricing.PricingDataError, match=r"pricing_policy.csv:4: entry_point_window_hours: must be a "
                                                        r"whole number of hours, got 72.5"):
        pricing.load_policy(path)
    path.write_text("\n".join(line for line in shipped.splitlines() if not line.startswith("analytics_tolerance_ratio")))
    with pytest.raises(pricing.PricingDataError, match=r"analytics_tolerance_ratio: missing"):
        pricing.load_policy(path)
