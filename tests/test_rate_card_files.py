"""Meta's rate card files as downloaded (DOMAIN R23), several dated cards, the shipped
sourced card, and the share of a bill priced from sourced rates.

The fixtures are tiny, hand-written in the layout of Meta's ``Pricing.csv`` and
``Tier Pricing.csv``; every expected micro-amount is worked out by hand beside it.
"""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline import config, pricing, rates
from pipeline.cli import cli
from pipeline.config import Billing, ConfigError
from tests.helpers import BILLING_CONFIG, Thread, build_threads, local

# Meta's Pricing.csv: title and notes rows (one naming the date), the header with a
# quoted line break in the auth-international cell, $US, n/a.
PRICING = '''\
"Cost per message in USD on the WhatsApp Business Platform, effective October 1, 2026",,,,,,
"Rates are per delivered message, based on the recipient's country calling code.",,,,,,
,,,,,,
Market,Currency,Marketing,Utility,Authentication,"Authentication-
International",Service
Brazil,$US,0.0625,0.0068,0.0068,n/a,0.0068
India,$US,0.0118,0.0014,0.0014,"0.0304
(see note 2)",0.0014
United Arab Emirates,$US,0.0576,0.0157,0.0157,0.051,0.0157
'''
# micros: Brazil 62500 / 6800 / 6800 / (none) / 6800; India 11800 / 1400 / 1400 / 30400 / 1400;
# UAE 57600 / 15700 / 15700 / 51000 / 15700.

# Meta's Tier Pricing.csv: groups side by side; the market named on its first row only.
TIERS = '''\
"Volume tier rates in USD, effective October 1, 2026",,,,,,,,,,,,,,,,
"See developers.facebook.com/docs/whatsapp/pricing",,,,,,,,,,,,,,,,
,,Utility,,,,,Authentication,,,,,Authentication-International,,,,
,,Messages per month,,What we charge,,,Messages per month,,What we charge,,,Messages per month,,What we charge,,
"Market
(per rate card)",Currency,From,To,Rate type,Rate,vs. List rate,From,To,Rate type,Rate,vs. List rate,From,To,Rate type,Rate,vs. List rate
Brazil,$US,0,"100,000",List,0.0068,0%,0,"250,000",List,0.0068,0%,n/a,n/a,n/a,n/a,n/a
,,"100,001","500,000",Tier,0.0065,-5%,"250,001",--,Tier,0.0061,-10%,n/a,n/a,n/a,n/a,n/a
,,"500,001",--,Tier,0.0061,-10%,,,,,,,,,,
'''
# Brazil utility: 1-100000 at 6800, 100001-500000 at 6500, 500001+ at 6100;
# authentication: 1-250000 at 6800, 250001+ at 6100.


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def load(*paths: Path) -> rates.RateCard:
    return rates.load_cards(paths)


def table(card: rates.RateCard) -> set[tuple[object, ...]]:
    return {(rate.effective_from.isoformat(), rate.market, rate.category, rate.currency, rate.tier,
             rate.rate_micros) for rate in card.rates}


def test_pricing_csv_parses_to_exact_micros(tmp_path: Path) -> None:
    card = load(write(tmp_path, "Pricing.csv", PRICING))
    day = "2026-10-01"
    assert table(card) == {
        (day, "Brazil", "marketing", "USD", "1:", 62500), (day, "Brazil", "utility", "USD", "1:", 6800),
        (day, "Brazil", "authentication", "USD", "1:", 6800), (day, "Brazil", "service", "USD", "1:", 6800),
        (day, "India", "marketing", "USD", "1:", 11800), (day, "India", "utility", "USD", "1:", 1400),
        (day, "India", "authentication", "USD", "1:", 1400),
        (day, "India", "authentication-international", "USD", "1:", 30400),
        (day, "India", "service", "USD", "1:", 1400),
        (day, "United Arab Emirates", "marketing", "USD", "1:", 57600),
        (day, "United Arab Emirates", "utility", "USD", "1:", 15700),
        (day, "United Arab Emirates", "authentication", "USD", "1:", 15700),
        (day, "United Arab Emirates", "authentication-international", "USD", "1:", 51000),
        (day, "United Arab Emirates", "service", "USD", "1:", 15700),
    }
    # every row names the file and line it came from; the quoted line break in India's
    # auth-international cell keeps the record on the line it starts on (7)
    india = next(rate for rate in card.rates if rate.category == "authentication-international"
                 and rate.market == "India")
    assert (india.path, india.line) == (tmp_path / "Pricing.csv", 7)
    assert {(rate.source, rate.confidence) for rate in card.rates} == {("Meta's rate card file Pricing.csv", "high")}
    uae = next(rate for rate in card.rates if rate.market == "United Arab Emirates")
    assert uae.line == 9


def test_metas_market_names_and_notes_below_the_table(tmp_path: Path) -> None:
    text = PRICING.replace("United Arab Emirates,$US", "UAE,$US") + '"* Rates exclude taxes.",,,,,,\n'
    card = load(write(tmp_path, "Pricing.csv", text))
    assert {rate.market for rate in card.rates} == {"Brazil", "India", "United Arab Emirates"}
    assert len(card.rates) == 14


def test_tier_pricing_replaces_the_same_dates_list_rate(tmp_path: Path) -> None:
    card = load(write(tmp_path, "Pricing.csv", PRICING), write(tmp_path, "Tier Pricing.csv", TIERS))
    brazil = sorted((rate.category, rate.tier_from, rate.tier_to, rate.rate_micros, rate.line)
                    for rate in card.rates if rate.market == "Brazil")
    assert brazil == [
        ("authentication", 1, 250000, 6800, 7), ("authentication", 250001, None, 6100, 8),
        ("marketing", 1, None, 62500, 6), ("service", 1, None, 6800, 6),
        ("utility", 1, 100000, 6800, 7), ("utility", 100001, 500000, 6500, 8),
        ("utility", 500001, None, 6100, 9),
    ]
    assert {rate.source for rate in card.rates if rate.path == tmp_path / "Tier Pricing.csv"} == {
        "Meta's rate card file Tier Pricing.csv (list rate)", "Meta's rate card file Tier Pricing.csv (tier rate)"}


def test_several_dated_cards_choose_by_date(tmp_path: Path) -> None:
    # DOMAIN R23: a card dated 2026-07-01 rules until the one dated 2026-10-01 takes over;
    # a market the later card leaves out keeps its earlier rates.
    july = PRICING.replace("October 1, 2026", "July 1, 2026").replace("0.0625", "0.0600")
    july = july.replace("United Arab Emirates,$US,0.0576", "United Arab Emirates,$US,0.0499")
    october = PRICING.replace("United Arab Emirates,$US,0.0576,0.0157,0.0157,0.051,0.0157\n", "")
    folder = tmp_path / "cards"
    write(folder, "2026-07 Pricing.csv", july)
    write(folder, "2026-10 Pricing.csv", october)
    card = load(folder)
    def rate(day: date, market: str, category: str) -> int:
        [tier] = rates.keys_in_force(card.rates, day)[(market, category, "USD")]
        return tier.rate_micros
    assert rate(date(2026, 9, 30), "Brazil", "marketing") == 60000
    assert rate(date(2026, 10, 1), "Brazil", "marketing") == 62500
    assert rate(date(2026, 12, 31), "United Arab Emirates", "marketing") == 49900
    assert ("Brazil", "marketing", "USD") not in rates.keys_in_force(card.rates, date(2026, 6, 30))


@pytest.mark.parametrize(("edit", "problem"), [
    (lambda text: text.replace("effective October 1, 2026", "effective November 1, 2026"),
     "Pricing.csv:1: effective date 2026-11-01 is not a quarter start (Meta changes rates only on Jan 1, "
     "Apr 1, Jul 1 and Oct 1, DOMAIN R23)"),
    (lambda text: text.replace("effective October 1, 2026", "as published"),
     "Pricing.csv:1: Meta's rate card names no effective date in its title rows (e.g. \"effective October 1, 2026\")"),
    (lambda text: text.replace("effective October 1, 2026", "effective Octember 1, 2026"),
     "Pricing.csv:1: effective date: not a date: 'effective Octember 1, 2026'"),
    (lambda text: text.replace("United Arab Emirates,$US", "Atlantis,$US"),
     "Pricing.csv:9: market: unknown market 'Atlantis' (the DOMAIN R22 names of data/market_map.csv)"),
    (lambda text: text.replace("Brazil,$US", "Brazil,US dollars"),
     "Pricing.csv:6: currency: 'US dollars' is neither an ISO 4217 code nor Meta's spelling of one "
     "($AU, $MX, $US, A$, MX$, R$, RP, US$, £, €, ₹)"),
    (lambda text: text.replace("Brazil,$US,0.0625", "Brazil,$US,0,0625"),
     "Pricing.csv:6: expected 7 fields, got 8"),
    (lambda text: text.replace("0.0625", "free"),
     "Pricing.csv:6: Marketing: not a rate: 'free' (a number like 0.0625, or n/a)"),
    (lambda text: text.replace("0.0625", "0.06251234"),
     "Pricing.csv:6: Marketing: 0.06251234 has more than 6 decimal places (convo keeps whole millionths of "
     "the currency)"),
    (lambda text: text.replace(",Service", ",Services"),
     "Pricing.csv:4: Meta's Pricing.csv header must be Market,Currency,Marketing,Utility,Authentication,"
     "Authentication-International,Service, got Market,Currency,Marketing,Utility,Authentication,"
     "Authentication-International,Services"),
])
def test_pricing_csv_errors_name_file_and_line(tmp_path: Path, edit, problem: str) -> None:
    path = write(tmp_path, "Pricing.csv", edit(PRICING))
    with pytest.raises(rates.RateCardError) as caught:
        load(path)
    assert str(caught.value) == f"{tmp_path}/{problem}"
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("edit", "problem"), [
    (lambda text: text.replace("0,\"250,000\",List,0.0068", "0,\"250,000\",List,0.0070"),
     "Tier Pricing.csv:7: Brazil authentication USD from 2026-10-01: the list rate 0.007 differs from "
     "0.0068 on {pricing}:6"),
    (lambda text: text.replace("Tier,0.0065", "Discount,0.0065"),
     "Tier Pricing.csv:8: Rate type (utility): must be List or Tier, got 'Discount'"),
    (lambda text: text.replace('"100,001","500,000"', '"100,001","50,000"'),
     "Tier Pricing.csv:8: To (utility): 50000 is below From 100001"),
    (lambda text: text.replace('"100,001","500,000"', '"100,101","500,000"'),
     "Tier Pricing.csv:8: tiers leave a gap: Brazil utility USD from 2026-10-01: units 100001 to 100100 "
     "have no rate"),
    (lambda text: text.replace('"500,001",--,Tier', '"500,001","900,000",Tier'),
     "Tier Pricing.csv:9: the last tier of Brazil utility USD from 2026-10-01 must be open-ended (empty "
     "tier_to), got 500001:900000"),
    (lambda text: text.replace(',,Utility,,,,,Authentication', ',,Authentication,,,,,Utility'),
     "Tier Pricing.csv:3: Meta's Tier Pricing.csv groups must be Utility, Authentication, "
     "Authentication-International side by side, got authentication, utility, authentication-international"),
    (lambda text: text.replace("Brazil,$US,0,", ",$US,0,"),
     "Tier Pricing.csv:7: market: the first row names no market"),
])
def test_tier_pricing_errors_name_file_and_line(tmp_path: Path, edit, problem: str) -> None:
    pricing_file = write(tmp_path, "Pricing.csv", PRICING)
    path = write(tmp_path, "Tier Pricing.csv", edit(TIERS))
    with pytest.raises(rates.RateCardError) as caught:
        load(pricing_file, path)
    assert str(caught.value) == f"{tmp_path}/{problem.format(pricing=pricing_file)}"


def test_the_same_rate_in_two_files_is_an_error(tmp_path: Path) -> None:
    first = write(tmp_path, "a.csv", PRICING)
    second = write(tmp_path, "b.csv", PRICING)
    with pytest.raises(rates.RateCardError) as caught:
        load(first, second)
    assert str(caught.value) == (f"{second}:6: Brazil marketing USD from 2026-10-01 is also given on {first}:6")


def test_rate_card_in_convo_toml_may_be_a_list_or_a_folder(tmp_path: Path) -> None:
    base = BILLING_CONFIG.format(eligible="false")
    def settings(line: str) -> config.Settings:
        (tmp_path / "convo.toml").write_text(base.replace('rate_card = "card.csv"', line))
        return config.load(tmp_path / "convo.toml")
    listed = settings('rate_card = ["cards/Pricing.csv", "meta_usd"]')
    assert listed.billing.card_paths == (tmp_path / "cards" / "Pricing.csv",
                                         config.shipped_rate_card("meta_usd"))
    assert config.shipped_rate_card("meta_usd").name == "meta_usd.csv"
    assert settings('rate_card = "cards/"').billing.card_paths == (tmp_path / "cards",)
    with pytest.raises(ConfigError, match=r"billing.rate_card: an empty list names no rate card"):
        settings("rate_card = []")
    with pytest.raises(ConfigError, match=r"billing.rate_card\[1\]: must be a path \(file or folder\)"):
        settings('rate_card = ["a.csv", 3]')
    with pytest.raises(rates.RateCardError, match=r"cards: the folder holds no .csv rate card"):
        (tmp_path / "cards").mkdir()
        rates.load_cards((tmp_path / "cards",))


SOURCED = config.shipped_rate_card("meta_usd")


def test_every_row_of_the_sourced_card_has_a_source_and_a_confidence() -> None:
    with SOURCED.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(line for line in handle if not line.startswith("#")))
    assert rows and all(row["source"].strip() for row in rows)
    assert {row["confidence"] for row in rows} == set(rates.CONFIDENCES)
    for row in rows:
        if row["confidence"] == "illustrative":
            assert "illustrative" in row["source"], row
    card = rates.load(SOURCED)
    in_force = rates.keys_in_force(card.rates, date(2026, 10, 1))
    # the 2026-10-01 card names all 47 markets, each with a sourced list rate
    markets = {market for market, category, _ in in_force
               if category == "marketing" and in_force[(market, category, "USD")][0].effective_from == date(2026, 10, 1)}
    assert len(markets) == 47
    for market in markets:
        for category in ("marketing", "utility", "authentication", "service"):
            first = in_force[(market, category, "USD")][0]
            assert first.confidence in rates.SOURCED, (market, category)
    # a few figures by hand: Brazil marketing 0.0625 USD, India utility 0.0014 USD
    assert in_force[("Brazil", "marketing", "USD")][0].rate_micros == 62500
    assert in_force[("India", "utility", "USD")][0].rate_micros == 1400


def test_the_sourced_card_passes_the_coverage_check() -> None:
    class Settings:
        billing = Billing(rate_card=SOURCED, business_country="BR", auth_international_eligible=True)
    card = pricing.load_rate_card(Settings())   # type: ignore[arg-type]
    assert card.currencies() == ("USD",)


# A card folder: convo's CSV for 2025-07-01 (one sourced and one illustrative rate) and
# Meta's Pricing.csv for 2025-10-01.
CONVO_CARD = """\
effective_from,market,category,currency,tier_from,tier_to,rate_micros,source,confidence
2025-07-01,Brazil,marketing,USD,1,,50000,a BSP's copy,medium
2025-07-01,Brazil,utility,USD,1,,10000,an estimate,illustrative
2025-07-01,Brazil,authentication,USD,1,,20000,,
"""
META_OCTOBER = """\
"Cost per message in USD on the WhatsApp Business Platform, effective October 1, 2025",,,,,,
Market,Currency,Marketing,Utility,Authentication,Authentication-International,Service
Brazil,$US,0.0600,0.0080,0.0200,n/a,n/a
"""


def test_a_build_says_what_share_of_the_bill_was_sourced(tmp_path: Path) -> None:
    write(tmp_path / "cards", "2025-07 convo.csv", CONVO_CARD)
    write(tmp_path / "cards", "2025-10 Pricing.csv", META_OCTOBER)
    (tmp_path / "convo.toml").write_text(
        BILLING_CONFIG.format(eligible="false").replace('rate_card = "card.csv"', 'rate_card = "cards/"'))
    settings = config.load(tmp_path / "convo.toml")
    thread = Thread("ana", "+5511999990001")
    # September 2025 (convo card): marketing 0.05 (medium) + utility 0.01 (illustrative)
    # + authentication 0.02 (no confidence)
    thread.template(local("2025-09-10 10:00"), "marketing")
    thread.template(local("2025-09-11 10:00"), "utility")
    thread.template(local("2025-09-12 10:00"), "authentication")
    # October 2025 (Meta's file, high): 2 marketing at 0.06, 1 utility at 0.008
    thread.template(local("2025-10-10 10:00"), "marketing")
    thread.template(local("2025-10-11 10:00"), "marketing")
    thread.template(local("2025-10-12 10:00"), "utility")
    con, summary = build_threads(settings, [thread], tmp_path)
    con.close()
    # charged 0.05 + 0.01 + 0.02 + 0.12 + 0.008 = 0.208; sourced 0.05 + 0.128 = 0.178
    # (85.6%): high 0.128 (61.5%), medium 0.05 (24.0%); illustrative or unlabelled 0.03 (14.4%)
    assert [line for line in summary.checks if line.startswith("pricing sources")] == [
        "pricing sources, USD: of the 0.21 charged, 85.6% priced from sourced rates (high 61.5%, medium 24.0%, "
        "low 0.0%), 14.4% from illustrative or unsourced rates (rate card: 2025-07 convo.csv, 2025-10 Pricing.csv)"]
    result = CliRunner().invoke(cli, ["report", "--config", str(tmp_path / "convo.toml"), "--month", "2025-10"])
    assert result.exit_code == 0, result.output
    html = (settings.reports / "costs.html").read_text(encoding="utf-8")
    assert "85.6% priced from sourced rates" in html
