"""Meta's pricing_analytics export written by the simulator (DOMAIN R26).

Checked three ways: data points written by hand for units fed one by one (tiers,
local months, claims, DST); DOMAIN's worked examples under CBP (one unit per
conversation); and, on whole runs, everything recomputed independently from the
message JSONL, the shipped market map and a rate card read here with csv.
"""

from __future__ import annotations

import csv
import re
import tomllib
from collections import Counter, defaultdict
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import orjson
import phonenumbers
import pytest

from pipeline.build import build
from pipeline.config import load
from pipeline.ingest import ingest
from pipeline.paths import data_dir
from pipeline.simulate import SimulateSettings, SimulateSummary, simulate
from pipeline.simulate import analytics as analytics_module
from pipeline.simulate import meta as meta_module
from pipeline.simulate.analytics import MarketMap, PricingAnalytics, RateCard, cost_text
from pipeline.simulate.clock import HOUR, epoch_day
from pipeline.simulate.meta import FreeAllowances, MetaThread, Pricing
from pipeline.simulate.world import NUMBERS

FOLDER = "exports/pricing_analytics"
# Meta's order; "tier" only on charged units of a key with several tiers (free units have none)
POINT_FIELDS = ["start", "end", "phone_number", "country", "tier", "pricing_type", "pricing_category",
                "volume", "cost"]
CONVERSATION_FIELDS = ["start", "end", "conversation", "phone_number", "country", "conversation_type",
                       "conversation_category", "cost"]
COUNTRY_OF_ZONE = {"America/Sao_Paulo": "BR", "Asia/Kolkata": "IN", "Europe/Madrid": "ES",
                   "America/New_York": "US"}


def utc(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=timezone.utc).timestamp())


def micros(value: object) -> int:
    return int(Decimal(str(value)) * 1_000_000)


# --- units fed by hand ------------------------------------------------------------------------

SP, MADRID = 0, 1   # indexes into the numbers given to PricingAnalytics below
TINY_CARD = [
    # effective_from, market, category, currency, tier_from, tier_to, rate_micros
    ("2026-07-01", "Brazil", "utility", "USD", 1, 2, 1000),
    ("2026-07-01", "Brazil", "utility", "USD", 3, 4, 900),
    ("2026-07-01", "Brazil", "utility", "USD", 5, None, 800),
    ("2026-07-01", "Brazil", "marketing", "USD", 1, None, 62500),
    ("2026-07-01", "Spain", "utility", "USD", 1, None, 20000),
    ("2026-10-01", "Brazil", "utility", "USD", 1, 2, 1100),     # a new quarter's ladder
    ("2026-10-01", "Brazil", "utility", "USD", 3, None, 1000),
    ("2026-10-01", "Brazil", "utility", "EUR", 1, None, 1),     # another currency: ignored
]
TINY_MARKETS = [("BR", "Brazil", "2020-01-01", ""), ("ES", "Spain", "2020-01-01", "")]   # AR: unmapped -> Other

U = Pricing(True, "PMP", "regular", "utility")
M = Pricing(True, "PMP", "regular", "marketing")
SERVICE_CHARGED = Pricing(True, "PMP", "regular", "service")          # regime C (R21), before its claim settles
SERVICE_FREE = Pricing(False, "PMP", "free_customer_service", "service")


def test_data_points_by_hand(tmp_path: Path) -> None:
    analytics = PricingAnalytics((NUMBERS[0], NUMBERS[2]), RateCard(TINY_CARD), MarketMap(TINY_MARKETS))
    granted_claim = (("number", NUMBERS[0].phone_number_id, (2026, 10)), utc(2026, 10, 5, 15), 70)
    lost_claim = (("number", NUMBERS[0].phone_number_id, (2026, 10)), utc(2026, 10, 5, 16), 71)
    # Fed out of delivery order, as contacts come one by one: (number, country, t, message id, pricing, claim).
    units = [
        (SP, "BR", utc(2026, 9, 10, 12), 50, U, None),       # Sep 10 09:00 local
        (MADRID, "BR", utc(2026, 9, 10, 11), 60, U, None),   # Sep 10 13:00 local: the first of September
        (SP, "BR", utc(2026, 9, 10, 12), 40, U, None),       # same second as id 50: id 40 comes first
        (SP, "BR", utc(2026, 9, 30, 23), 12, U, None),       # Sep 30 20:00 local
        (SP, "BR", utc(2026, 9, 11, 2), 10, U, None),        # Sep 10 23:00 local
        (MADRID, "BR", utc(2026, 9, 11, 2), 11, U, None),    # Sep 11 04:00 local
        (SP, "BR", utc(2026, 10, 1, 2), 13, U, None),        # Sep 30 23:00 local: still September's count
        (MADRID, "BR", utc(2026, 9, 30, 23), 14, U, None),   # Oct 1 01:00 local: October counts from 1
        (SP, "BR", utc(2026, 10, 5, 15), 70, SERVICE_CHARGED, granted_claim),   # -> free_tier
        (SP, "BR", utc(2026, 10, 5, 16), 71, SERVICE_CHARGED, lost_claim),      # charged at the utility rate
        # R21: service is untiered. Had it a counter of its own, 78 and 79 would be its
        # 3rd and 4th units (tier 3:, 1,000); had it counted with utility, 80 and 81
        # would be October's 6th and 7th utility units (tier 3:) instead of the 2nd and 3rd.
        (SP, "BR", utc(2026, 10, 5, 20), 80, U, None),
        (SP, "BR", utc(2026, 10, 5, 19, 1), 77, SERVICE_CHARGED, None),   # no claim: the allowance is not assumed
        (SP, "BR", utc(2026, 10, 5, 19, 2), 78, SERVICE_CHARGED, None),
        (SP, "BR", utc(2026, 10, 5, 19, 3), 79, SERVICE_CHARGED, None),
        (SP, "BR", utc(2026, 10, 5, 21), 81, U, None),
        (SP, "ES", utc(2026, 10, 5, 16), 72, U, None),       # Spain: one tier
        (SP, "AR", utc(2026, 10, 5, 16), 73, M, None),       # Other: no card row, cost 0
        (SP, "BR", utc(2026, 10, 5, 17), 74, SERVICE_FREE, None),
        (SP, "BR", utc(2026, 10, 5, 18), 75, SERVICE_FREE, None),
        (MADRID, "BR", utc(2026, 10, 25, 12), 76, M, None),  # Madrid's 25-hour day (CEST -> CET)
    ]
    for unit in units:
        analytics.add(*unit)
    analytics.finish({granted_claim})
    files = analytics.write(tmp_path, utc(2026, 9, 1), utc(2026, 11, 1))
    assert analytics.unrated == 1
    assert [path.name for path in files] == [
        "pricing_analytics-2026-08-waba-br.json",   # São Paulo's Aug 31 starts at 03:00 UTC on Aug 31
        "pricing_analytics-2026-09-waba-br.json",
        "pricing_analytics-2026-09-waba-eu.json",
        "pricing_analytics-2026-10-waba-br.json",
        "pricing_analytics-2026-10-waba-eu.json",
        "pricing_analytics-2026-11-waba-eu.json",   # the period ends at 01:00 on Nov 1 in Madrid
        "pricing_analytics-monthly-waba-br.json",   # one WABA-level MONTHLY response per WABA
        "pricing_analytics-monthly-waba-eu.json",
    ]
    documents = {path.name[len("pricing_analytics-"):-len(".json")]: orjson.loads(path.read_bytes())
                 for path in files}
    assert {name: document["id"] for name, document in documents.items()} == {
        "2026-08-waba-br": "waba-br", "2026-09-waba-br": "waba-br", "2026-10-waba-br": "waba-br",
        "2026-09-waba-eu": "waba-eu", "2026-10-waba-eu": "waba-eu", "2026-11-waba-eu": "waba-eu",
        "monthly-waba-br": "waba-br", "monthly-waba-eu": "waba-eu"}

    def points(name: str) -> list[tuple]:
        # (start, end, phone, country, type, category, tier, volume, cost); no tier field: ''
        [block] = documents[name]["pricing_analytics"]["data"]
        return [(point["start"], point["end"], point.get("phone_number"), point["country"], point["pricing_type"],
                 point["pricing_category"], point.get("tier", ""), point["volume"], point["cost"])
                for point in block["data_points"]]

    sp, md = "5511955510101", "34612503303"
    assert points("2026-08-waba-br") == []
    assert points("2026-11-waba-eu") == []
    # September in São Paulo (UTC-3): positions 2 (id 40), 3 (id 50), 4 (id 10); 6 and 7 on Sep 30.
    assert points("2026-09-waba-br") == [
        (utc(2026, 9, 10, 3), utc(2026, 9, 11, 3), sp, "BR", "REGULAR", "UTILITY", "1:2", 1, 0.001),
        (utc(2026, 9, 10, 3), utc(2026, 9, 11, 3), sp, "BR", "REGULAR", "UTILITY", "3:4", 2, 0.0018),
        (utc(2026, 9, 30, 3), utc(2026, 10, 1, 3), sp, "BR", "REGULAR", "UTILITY", "5:MAX", 2, 0.0016),
    ]
    # September in Madrid (UTC+2): positions 1 (id 60) and 5 (id 11, after id 10 in the same second).
    assert points("2026-09-waba-eu") == [
        (utc(2026, 9, 9, 22), utc(2026, 9, 10, 22), md, "BR", "REGULAR", "UTILITY", "1:2", 1, 0.001),
        (utc(2026, 9, 10, 22), utc(2026, 9, 11, 22), md, "BR", "REGULAR", "UTILITY", "5:MAX", 1, 0.0008),
    ]
    assert points("2026-10-waba-eu") == [
        (utc(2026, 9, 30, 22), utc(2026, 10, 1, 22), md, "BR", "REGULAR", "UTILITY", "1:2", 1, 0.0011),
        (utc(2026, 10, 24, 22), utc(2026, 10, 25, 23), md, "BR", "REGULAR", "MARKETING", "", 1, 0.0625),
    ]
    # Charged service messages (71, whose claim was lost, and 77-79) are untiered (R21):
    # the utility list rate 1,100, no tier, none of them counted. The utility templates
    # 80 and 81 are October's 2nd and 3rd Brazilian utility units (after id 14).
    day = (utc(2026, 10, 5, 3), utc(2026, 10, 6, 3), sp)
    assert points("2026-10-waba-br") == [
        (*day, "AR", "REGULAR", "MARKETING", "", 1, 0),
        (*day, "BR", "FREE_CUSTOMER_SERVICE", "SERVICE", "", 2, 0),
        (*day, "BR", "FREE_TIER", "SERVICE", "", 1, 0),
        (*day, "BR", "REGULAR", "SERVICE", "", 4, 0.0044),
        (*day, "BR", "REGULAR", "UTILITY", "1:2", 1, 0.0011),
        (*day, "BR", "REGULAR", "UTILITY", "3:MAX", 1, 0.001),
        (*day, "ES", "REGULAR", "UTILITY", "", 1, 0.02),
    ]
    assert analytics.data_points == 14
    # The WABA-level MONTHLY responses: the same units summed per local month, no phone_number.
    september, october = (utc(2026, 9, 1, 3), utc(2026, 10, 1, 3)), (utc(2026, 10, 1, 3), utc(2026, 11, 1, 3))
    assert points("monthly-waba-br") == [
        (*september, None, "BR", "REGULAR", "UTILITY", "1:2", 1, 0.001),
        (*september, None, "BR", "REGULAR", "UTILITY", "3:4", 2, 0.0018),
        (*september, None, "BR", "REGULAR", "UTILITY", "5:MAX", 2, 0.0016),
        (*october, None, "AR", "REGULAR", "MARKETING", "", 1, 0),
        (*october, None, "BR", "FREE_CUSTOMER_SERVICE", "SERVICE", "", 2, 0),
        (*october, None, "BR", "FREE_TIER", "SERVICE", "", 1, 0),
        (*october, None, "BR", "REGULAR", "SERVICE", "", 4, 0.0044),
        (*october, None, "BR", "REGULAR", "UTILITY", "1:2", 1, 0.0011),
        (*october, None, "BR", "REGULAR", "UTILITY", "3:MAX", 1, 0.001),
        (*october, None, "ES", "REGULAR", "UTILITY", "", 1, 0.02),
    ]
    # Madrid: September's two days, October's two (its month ends at 23:00 UTC, after the DST change)
    assert points("monthly-waba-eu") == [
        (utc(2026, 8, 31, 22), utc(2026, 9, 30, 22), None, "BR", "REGULAR", "UTILITY", "1:2", 1, 0.001),
        (utc(2026, 8, 31, 22), utc(2026, 9, 30, 22), None, "BR", "REGULAR", "UTILITY", "5:MAX", 1, 0.0008),
        (utc(2026, 9, 30, 22), utc(2026, 10, 31, 23), None, "BR", "REGULAR", "MARKETING", "", 1, 0.0625),
        (utc(2026, 9, 30, 22), utc(2026, 10, 31, 23), None, "BR", "REGULAR", "UTILITY", "1:2", 1, 0.0011),
    ]
    assert analytics.written == {"pricing_analytics": 14, "conversation_analytics": 0}
    # Meta's response shape, compact, costs as exact decimals.
    assert (tmp_path / "pricing_analytics-2026-10-waba-eu.json").read_bytes() == (
        b'{"pricing_analytics":{"data":[{"data_points":['
        b'{"start":1790805600,"end":1790892000,"phone_number":"34612503303","country":"BR","tier":"1:2",'
        b'"pricing_type":"REGULAR","pricing_category":"UTILITY","volume":1,"cost":0.0011},'
        b'{"start":1792879200,"end":1792969200,"phone_number":"34612503303","country":"BR",'
        b'"pricing_type":"REGULAR","pricing_category":"MARKETING","volume":1,"cost":0.0625}'
        b']}]},"id":"waba-eu"}')


def test_cost_text_is_exact() -> None:
    assert [cost_text(value) for value in (0, 62500, 1_000_000, 1_230_000, 7, 123_456_789_012_345_678, -62500)] == [
        "0", "0.0625", "1", "1.23", "0.000007", "123456789012.345678", "-0.0625"]


def test_cbp_counts_conversations_on_the_day_they_open() -> None:
    # DOMAIN E3 and E4 under CBP (2025-03, the shipped card's 2025-01-01 single-tier rates).
    number = NUMBERS[0]                                   # São Paulo, UTC-3
    analytics = PricingAnalytics((number,))
    midnight = utc(2025, 3, 10, 3)
    key = iter(range(1, 100))

    def send(meta: MetaThread, hours: float, category: str | None) -> None:
        # what run.price does for each delivered outbound message
        t = midnight + int(hours * HOUR)
        message_key = next(key)
        pricing = meta.outbound(t, category, message_key)
        if meta.opened:
            analytics.add(0, meta.recipient_country, t, message_key, pricing, meta.last_claim)

    # E3: M h0; user h2; text h3; U h4; U h30 -> M(h0) + U(h4) + U(h30).
    e3 = MetaThread(number.meta, "BR", FreeAllowances.counting())
    send(e3, 0, "marketing")
    e3.inbound(midnight + 2 * HOUR)
    send(e3, 3, None)                        # absorbed by the marketing conversation
    send(e3, 4, "utility")
    send(e3, 30, "utility")                  # Mar 11, 06:00 local
    # E4 (Argentina): arrival via an ad 10:00, template 22:00 -> one free entry point conversation
    # of 72 h; nothing inside it is a unit; a marketing template at its end opens one.
    e4 = MetaThread(number.meta, "AR", FreeAllowances.counting())
    e4.inbound(midnight + 10 * HOUR, referral=True)
    send(e4, 22, "marketing")
    send(e4, 30, None)
    send(e4, 93.9, "utility")
    send(e4, 94, "marketing")                # Mar 13, 22:00 local
    analytics.finish(set())
    day = epoch_day(date(2025, 3, 10))
    assert analytics.points == {
        (day, 0, "BR", "regular", "marketing", ""): [1, 62500],
        (day, 0, "BR", "regular", "utility", ""): [1, 8000],
        (day + 1, 0, "BR", "regular", "utility", ""): [1, 8000],
        (day, 0, "AR", "free_entry_point", "referral_conversion", ""): [1, 0],
        (day + 3, 0, "AR", "regular", "marketing", ""): [1, 61800],
    }


# --- whole runs, recomputed from the JSONL ------------------------------------------------------


def read_card(path: Path) -> dict[tuple[str, str], list[tuple[date, list[tuple[int, int | None, int]]]]]:
    editions: dict[tuple[str, str], dict[date, list]] = defaultdict(lambda: defaultdict(list))
    with open(path, encoding="utf-8") as handle:
        for row in csv.DictReader(line for line in handle if not line.startswith("#")):
            if row["currency"] == "USD":
                editions[(row["market"], row["category"])][date.fromisoformat(row["effective_from"])].append(
                    (int(row["tier_from"]), int(row["tier_to"]) if row["tier_to"] else None, int(row["rate_micros"])))
    return {key: sorted((day, sorted(tiers)) for day, tiers in by_day.items()) for key, by_day in editions.items()}


def read_markets() -> list[dict[str, str]]:
    with open(data_dir() / "market_map.csv", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def market_of(markets: list[dict[str, str]], country: str, day: date) -> str:
    for row in markets:
        if (row["country_code"] == country and date.fromisoformat(row["effective_from"]) <= day
                and (not row["effective_to"] or day < date.fromisoformat(row["effective_to"]))):
            return row["market"]
    return "Other"


def recipient_country(record: dict) -> str:
    if record["contact_phone"]:
        return phonenumbers.region_code_for_number(phonenumbers.parse("+" + record["contact_phone"].lstrip("+")))
    return record["contact_bsuid"].split(".", 1)[0]


def seconds(value: str | int) -> int:
    return value if isinstance(value, int) else int(datetime.fromisoformat(value).timestamp())


def billing_units(out: Path) -> list[dict]:
    """Meta's billing units from the messages alone: every delivered outbound message
    with a PMP pricing object; under CBP the first message of each conversation (a
    conversation lasts 24 h, 72 h for the free entry point one, and all its messages
    carry its pricing object)."""
    config = tomllib.loads((out / "convo.toml").read_text(encoding="utf-8"))
    numbers = {item["phone_number_id"]: item for item in config["phone_numbers"]}
    records = [orjson.loads(line) for path in sorted((out / "exports/messages").glob("*.jsonl"))
               for line in path.read_bytes().splitlines()]
    units, cbp = [], defaultdict(list)
    for record in records:
        pricing = record["pricing"]
        if record["direction"] != "outbound" or record["status"] not in ("delivered", "read"):
            assert pricing is None
            continue
        t = seconds(record["delivered_at"] or record["timestamp"])
        number = numbers[record["phone_number_id"]]
        unit = {
            "t": t, "id": int(record["message_id"][6:], 16), "number": number, "pricing": pricing,
            "day": datetime.fromtimestamp(t, ZoneInfo(number["timezone"])).date(),
            "country": recipient_country(record),
        }
        if pricing["pricing_model"] == "PMP":
            units.append(unit)
        else:
            contact = record["contact_bsuid"] or record["contact_phone"].lstrip("+")
            cbp[(record["phone_number_id"], contact, pricing["category"])].append(unit)
    for messages in cbp.values():
        messages.sort(key=lambda unit: (unit["t"], unit["id"]))
        opened = None
        for unit in messages:
            lasts = (72 if unit["pricing"]["category"] == "referral_conversion" else 24) * HOUR
            if opened is None or unit["t"] >= opened + lasts:
                opened = unit["t"]
                units.append(unit)
    return units


def expected_points(units: list[dict], card_path: Path) -> dict[tuple, list[int]]:
    """(start, phone, country, TYPE, CATEGORY, tier) -> [volume, cost micros], with the
    volume tiers (R24) counted per market x category x local month in delivery order;
    a charged regime C service message (PMP) is untiered (R21): the utility list rate,
    no tier, not counted."""
    card, markets = read_card(card_path), read_markets()
    points: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    positions: Counter[tuple] = Counter()
    for unit in sorted(units, key=lambda unit: (unit["t"], unit["id"])):
        pricing, number, day = unit["pricing"], unit["number"], unit["day"]
        zone = ZoneInfo(number["timezone"])
        start = int(datetime(day.year, day.month, day.day, tzinfo=zone).timestamp())
        category = pricing["category"]
        tier, cost = "", 0
        if pricing["type"] == "regular":
            market = market_of(markets, unit["country"], day)
            untiered = category == "service" and pricing["pricing_model"] == "PMP"
            rate_category = "utility" if untiered else category
            if not untiered:
                positions[(market, category, day.year, day.month)] += 1
            position = positions[(market, category, day.year, day.month)]
            ladders = [tiers for since, tiers in card.get((market, rate_category), []) if since <= day]
            if ladders:
                ladder = ladders[-1]
                if untiered:
                    cost = ladder[0][2]
                else:
                    low, high, cost = next(t for t in ladder
                                           if t[0] <= position and (t[1] is None or position <= t[1]))
                    tier = "" if len(ladder) == 1 else f"{low}:{'MAX' if high is None else high}"
        key = (start, number["display_phone_number"], unit["country"], pricing["type"].upper(),
               category.replace("-", "_").upper(), tier)
        points[key][0] += 1
        points[key][1] += cost
    return dict(points)


def written_points(out: Path, api: str = "pricing_analytics") -> list[tuple[str, str, dict]]:
    """(file name, response id, data point) of the per-number DAILY responses of one API."""
    found = []
    for path in sorted((out / "exports" / api).glob(f"{api}-[0-9]*.json")):
        document = orjson.loads(path.read_bytes())
        assert list(document) == [api, "id"]
        for block in document[api]["data"]:
            found += [(path.name, document["id"], point) for point in block["data_points"]]
    return found


def monthly_points(out: Path, api: str) -> list[tuple[str, str, dict]]:
    found = []
    for path in sorted((out / "exports" / api).glob(f"{api}-monthly-*.json")):
        document = orjson.loads(path.read_bytes())
        for block in document[api]["data"]:
            found += [(path.name, document["id"], point) for point in block["data_points"]]
    return found


# conversation_analytics labels of a CBP unit (README "Meta's analytics files").
CONVERSATION_TYPE = {"regular": "REGULAR", "free_tier": "FREE_TIER", "free_entry_point": "FREE_ENTRY_POINT",
                     "free_customer_service": "REGULAR"}


def conversation_key(start: int, phone: str, country: str, pricing: dict) -> tuple:
    category = "SERVICE" if pricing["category"] == "referral_conversion" else pricing["category"].upper()
    return (start, phone, country, CONVERSATION_TYPE[pricing["type"]], category)


TINY_TIERS_FROM = "2026-07-01"


def tiny_tier_card(shipped: Path, path: Path) -> Path:
    """The shipped card (the one the simulator prices with) whose utility and
    authentication rows from 2026-07-01 on are replaced by tiers of 3, 7 and the rest
    in every market, with rates distinct per market. (The shipped rows go: its own
    2026-07-01 and 2026-10-01 ladders would otherwise collide with these, or replace
    them from October, when regime C begins.)"""
    kept = [line for line in shipped.read_text(encoding="utf-8").splitlines()
            if not (line.split(",", 3)[2:3] in (["utility"], ["authentication"])
                    and line.split(",", 1)[0] >= TINY_TIERS_FROM)]
    markets = sorted({row["market"] for row in read_markets()})
    header = next(line for line in kept if not line.startswith("#")).split(",")
    labels = {"source": "tiny tiers of tests/test_simulate_analytics.py", "confidence": "illustrative"}
    more = "".join(f",{labels[column]}" for column in header[7:])   # a card the build reads too
    rows = [f"{TINY_TIERS_FROM},{market},{category},USD,{low},{high},{base + index}{more}"
            for index, market in enumerate(markets)
            for category, offset in (("utility", 0), ("authentication", 5000))
            for low, high, base in ((1, 3, 30000 + offset), (4, 10, 20000 + offset), (11, "", 10000 + offset))]
    path.write_text("\n".join(kept + rows) + "\n", encoding="utf-8")
    return path


RUNS = {
    # regimes B and C, with R21's allowance shrunk so service messages get charged
    "pmp": (dict(contacts=90, days=45, seed=11), {"REGIME_C_SERVICE_FREE_TIER": 40}, False),
    # the same with volume tiers small enough to be crossed
    "tiers": (dict(contacts=90, days=45, seed=11), {"REGIME_C_SERVICE_FREE_TIER": 40}, True),
    # CBP into PMP (2025-07-01): conversations, then messages
    "cbp": (dict(contacts=90, days=40, seed=5, start=date(2025, 6, 10)), {}, False),
    # CBP service free tier (R16, shrunk), then all service free from 2024-11-01; no card rows yet
    "cbp_free_tier": (dict(contacts=90, days=45, seed=5, start=date(2024, 10, 1)), {"CBP_SERVICE_FREE_TIER": 5}, False),
}


@pytest.fixture(scope="module", params=list(RUNS))
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[SimulateSummary, Path]:
    options, allowances, tiny = RUNS[request.param]
    out = tmp_path_factory.mktemp(request.param)
    card = analytics_module.rate_card_file()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in allowances.items():
            patch.setattr(meta_module, name, value)
        if tiny:
            card = tiny_tier_card(card, out / "card.csv")
            patch.setattr(analytics_module, "rate_card_file", lambda: card)
        return simulate(SimulateSettings(out=out / "sim", **options)), card  # type: ignore[arg-type]


def test_volumes_and_costs_equal_the_messages(run: tuple[SimulateSummary, Path]) -> None:
    summary, card = run
    units = billing_units(summary.out)
    pmp = [unit for unit in units if unit["pricing"]["pricing_model"] == "PMP"]
    cbp = [unit for unit in units if unit["pricing"]["pricing_model"] == "CBP"]
    found = {}
    for _, _, point in written_points(summary.out):
        key = (point["start"], point["phone_number"], point["country"], point["pricing_type"],
               point["pricing_category"], point.get("tier", ""))
        assert key not in found, key
        found[key] = [point["volume"], micros(point["cost"])]
    # Volumes per day x number x country x type x category (tiers summed): the PMP units counted.
    volumes: Counter[tuple] = Counter()
    for key, (volume, _) in found.items():
        volumes[key[:5]] += volume
    counted: Counter[tuple] = Counter()
    for unit in pmp:
        day, zone = unit["day"], ZoneInfo(unit["number"]["timezone"])
        counted[(int(datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()),
                 unit["number"]["display_phone_number"], unit["country"], unit["pricing"]["type"].upper(),
                 unit["pricing"]["category"].replace("-", "_").upper())] += 1
    assert volumes == counted
    # Every data point, tiers and costs included.
    assert found == expected_points(pmp, card)
    assert summary.pricing_analytics == len(found)
    # conversation_analytics: the CBP conversations, per day x number x country x type x category,
    # costs as pricing_analytics would have them (tiers summed).
    conversations = {}
    for _, _, point in written_points(summary.out, "conversation_analytics"):
        key = (point["start"], point["phone_number"], point["country"], point["conversation_type"],
               point["conversation_category"])
        assert key not in conversations, key
        conversations[key] = [point["conversation"], micros(point["cost"])]
    expected: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    by_unit = expected_points(cbp, card)
    for unit in cbp:
        day, zone = unit["day"], ZoneInfo(unit["number"]["timezone"])
        start = int(datetime(day.year, day.month, day.day, tzinfo=zone).timestamp())
        expected[conversation_key(start, unit["number"]["display_phone_number"], unit["country"],
                                  unit["pricing"])][0] += 1
    for (start, phone, country, pricing_type, category, _), (_, cost) in by_unit.items():
        pricing = {"type": pricing_type.lower(), "category": category.lower()}
        expected[conversation_key(start, phone, country, pricing)][1] += cost
    assert conversations == dict(expected)
    assert summary.conversation_analytics == len(conversations)
    # The WABA-level MONTHLY responses: the daily points of each local month summed, no phone.
    for api, volume_field, fields in (
            ("pricing_analytics", "volume", ("country", "pricing_type", "pricing_category", "tier")),
            ("conversation_analytics", "conversation", ("country", "conversation_type", "conversation_category"))):
        config = tomllib.loads(summary.config_path.read_text(encoding="utf-8"))
        zones = {item["waba_id"]: ZoneInfo(item["timezone"]) for item in config["phone_numbers"]}
        summed: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
        for _, waba_id, point in written_points(summary.out, api):
            month = datetime.fromtimestamp(point["start"], zones[waba_id]).replace(day=1)
            key = (waba_id, int(month.timestamp()), *(point.get(field, "") for field in fields))
            summed[key][0] += point[volume_field]
            summed[key][1] += micros(point["cost"])
        monthly = {}
        for _, waba_id, point in monthly_points(summary.out, api):
            assert "phone_number" not in point
            start = datetime.fromtimestamp(point["start"], zones[waba_id])
            end = datetime.fromtimestamp(point["end"], zones[waba_id])
            assert (start.day, start.hour, end.day, end.hour) == (1, 0, 1, 0)
            assert (end.year * 12 + end.month) - (start.year * 12 + start.month) == 1
            monthly[(waba_id, point["start"], *(point.get(field, "") for field in fields))] = [
                point[volume_field], micros(point["cost"])]
        assert monthly == {key: value for key, value in summed.items() if value[0]}


def test_the_build_prices_regime_c_as_meta_s_analytics_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # One simulated tenant through ingest and build, priced with the tiny tiers by both
    # sides and without regime C's unconfirmed allowance (the simulator's world and
    # [billing] assume_service_allowance = false), so October's service messages are
    # all charged while utility crosses its tiers: the build (billable_units) and the
    # simulated pricing_analytics agree on every data point to the micro. Had the
    # simulator tiered service (or counted it with utility), its costs would differ.
    monkeypatch.setattr(meta_module, "REGIME_C_SERVICE_ALLOWANCE_ASSUMED", False)
    card = tiny_tier_card(analytics_module.rate_card_file(), tmp_path / "card.csv")
    monkeypatch.setattr(analytics_module, "rate_card_file", lambda: card)
    summary = simulate(SimulateSettings(out=tmp_path / "sim", contacts=150, days=20, seed=11,
                                        start=date(2026, 9, 25)))
    text = summary.config_path.read_text(encoding="utf-8")
    assert text.count('\nrate_card = "meta_usd"\n') == 1
    summary.config_path.write_text(text.replace(
        'rate_card = "meta_usd"', f"rate_card = {str(card)!r}\nassume_service_allowance = false"), encoding="utf-8")
    settings = load(summary.config_path)
    ingest(settings.lake, [summary.out / "exports"])
    build(settings)
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        assert con.execute(
            "select count(*) from billable_units where billing_date >= date '2026-10-01' and category = 'utility' "
            "and pricing_type = 'regular' and tier <> '1:3'").fetchone()[0] > 0          # tiers crossed
        october = con.execute(
            "select category, sum(units), sum(meta_volume), sum(cost_micros), sum(meta_cost_micros) "
            "from analytics_reconciliation where billing_date >= date '2026-10-01' and pricing_type = 'regular' "
            "group by all order by all").fetchall()
        assert [row[0] for row in october] == ["authentication", "marketing", "service", "utility"]
        assert [(category, units, cost) for category, units, _, cost, _ in october] == [
            (category, volume, meta_cost) for category, _, volume, _, meta_cost in october]
        assert all(cost > 0 for *_, cost in october)
        assert con.execute(
            "select status, is_beyond_tolerance, count(*) from analytics_reconciliation group by all").fetchall() == [
            ("matched", False, con.execute("select count(*) from analytics_reconciliation").fetchone()[0])]


def test_runs_cover_what_they_are_for(run: tuple[SimulateSummary, Path]) -> None:
    points = [{**point, "tier": point.get("tier", "")} for _, _, point in written_points(run[0].out)]
    kinds = {(point["pricing_type"], point["pricing_category"]) for point in points}
    costs = sum(micros(point["cost"]) for point in points)
    conversations = [point for _, _, point in written_points(run[0].out, "conversation_analytics")]
    conversation_kinds = {(point["conversation_type"], point["conversation_category"]) for point in conversations}
    conversation_costs = sum(micros(point["cost"]) for point in conversations)
    name = run[0].out.parent.name
    if name.startswith("pmp") or name.startswith("tiers"):
        assert {("REGULAR", "SERVICE"), ("FREE_TIER", "SERVICE"), ("REGULAR", "UTILITY"),
                ("FREE_CUSTOMER_SERVICE", "UTILITY"), ("REGULAR", "MARKETING"), ("REGULAR", "AUTHENTICATION"),
                ("FREE_ENTRY_POINT", "SERVICE")} <= kinds
        assert costs > 0
    if name.startswith("tiers"):
        # volume tiers were crossed: several tiers of one market x category x month
        tiers = defaultdict(set)
        for point in points:
            if point["tier"]:
                month = datetime.fromtimestamp(point["start"], timezone.utc).strftime("%Y-%m")
                tiers[(point["country"], point["pricing_category"], month)].add(point["tier"])
        assert any(len(used) == 3 for used in tiers.values())
        # ... in regime C too, where charged service messages are untiered (R21): no
        # tier of their own, and (test_volumes_and_costs_equal_the_messages) none of
        # them counted with utility
        october = [point for point in points if point["start"] >= utc(2026, 10, 1, 12)]
        assert {"1:3", "4:10"} <= {point["tier"] for point in october if point["pricing_category"] == "UTILITY"}
        charged_service = [point for point in october
                           if (point["pricing_type"], point["pricing_category"]) == ("REGULAR", "SERVICE")]
        assert charged_service and {point["tier"] for point in charged_service} == {""}
    if name.startswith("cbp_free_tier"):
        # all CBP: conversation_analytics only; free service conversations from 2024-11-01 are REGULAR
        assert points == [] and conversation_costs == 0        # the shipped card starts on 2025-01-01
        assert {("REGULAR", "SERVICE"), ("FREE_TIER", "SERVICE"), ("FREE_ENTRY_POINT", "SERVICE")
                } <= conversation_kinds
    elif name.startswith("cbp"):
        # CBP in June 2025, PMP from July
        assert {("REGULAR", "MARKETING"), ("FREE_ENTRY_POINT", "SERVICE"), ("REGULAR", "SERVICE"),
                ("REGULAR", "UTILITY")} <= conversation_kinds
        assert {("FREE_CUSTOMER_SERVICE", "SERVICE"), ("REGULAR", "UTILITY"), ("FREE_CUSTOMER_SERVICE", "UTILITY"),
                ("REGULAR", "MARKETING")} <= kinds
        assert costs > 0 and conversation_costs > 0
        assert all(point["start"] >= utc(2025, 6, 30, 12) for point in points)
        assert all(point["start"] < utc(2025, 7, 1, 12) for point in conversations)
    else:
        assert conversations == []


def test_format_days_files_and_numbers(run: tuple[SimulateSummary, Path]) -> None:
    summary = run[0]
    config = tomllib.loads(summary.config_path.read_text(encoding="utf-8"))
    by_display = {item["display_phone_number"]: item for item in config["phone_numbers"]}
    for name, waba_id, point in written_points(summary.out):
        assert list(point) == [field for field in POINT_FIELDS if field != "tier" or "tier" in point]
        point = {**point, "tier": point.get("tier", "")}
        number = by_display[point["phone_number"]]
        zone = ZoneInfo(number["timezone"])
        start = datetime.fromtimestamp(point["start"], zone)
        end = datetime.fromtimestamp(point["end"], zone)
        assert (start.hour, start.minute, start.second) == (0, 0, 0) == (end.hour, end.minute, end.second)
        assert end.date() == date.fromordinal(start.date().toordinal() + 1)
        assert name == f"pricing_analytics-{start:%Y-%m}-{waba_id}.json" and waba_id == number["waba_id"]
        assert point["volume"] > 0 and re.fullmatch(r"[A-Z]{2}", point["country"])
        assert point["pricing_type"] in ("REGULAR", "FREE_CUSTOMER_SERVICE", "FREE_ENTRY_POINT", "FREE_TIER")
        assert point["pricing_category"] in ("MARKETING", "UTILITY", "AUTHENTICATION",
                                             "AUTHENTICATION_INTERNATIONAL", "SERVICE", "REFERRAL_CONVERSION")
        if point["pricing_type"] != "REGULAR":
            assert point["cost"] == 0 and point["tier"] == ""
        assert re.fullmatch(r"|[0-9]+:([0-9]+|MAX)", point["tier"])
    for name, waba_id, point in written_points(summary.out, "conversation_analytics"):
        assert list(point) == CONVERSATION_FIELDS
        number = by_display[point["phone_number"]]
        start = datetime.fromtimestamp(point["start"], ZoneInfo(number["timezone"]))
        assert name == f"conversation_analytics-{start:%Y-%m}-{waba_id}.json" and waba_id == number["waba_id"]
        assert point["conversation_type"] in ("REGULAR", "FREE_TIER", "FREE_ENTRY_POINT")
        assert point["conversation_category"] in ("MARKETING", "UTILITY", "AUTHENTICATION",
                                                  "AUTHENTICATION_INTERNATIONAL", "SERVICE")
    for path in [*(summary.out / FOLDER).glob("*.json"), *(summary.out / "exports/conversation_analytics").glob("*")]:
        # costs written from integers: at most 6 decimals, no float noise, no exponent
        for cost in re.findall(rb'"cost":([^,}]+)', path.read_bytes()):
            assert re.fullmatch(rb"(0|[1-9][0-9]*)(\.[0-9]{0,5}[1-9])?", cost), cost


def test_display_numbers_are_valid_for_each_numbers_country(run: tuple[SimulateSummary, Path]) -> None:
    config = tomllib.loads(run[0].config_path.read_text(encoding="utf-8"))
    displays = [item["display_phone_number"] for item in config["phone_numbers"]]
    assert len(set(displays)) == len(displays) == 4
    for item in config["phone_numbers"]:
        parsed = phonenumbers.parse("+" + item["display_phone_number"])
        assert item["display_phone_number"].isdigit() and phonenumbers.is_valid_number(parsed)
        assert phonenumbers.region_code_for_number(parsed) == COUNTRY_OF_ZONE[item["timezone"]]


def test_files_are_in_the_summary_and_deterministic(tmp_path: Path) -> None:
    first = simulate(SimulateSettings(out=tmp_path / "a", contacts=40, days=20, seed=3))
    again = simulate(SimulateSettings(out=tmp_path / "b", contacts=40, days=20, seed=3))
    written = sorted((first.out / FOLDER).glob("*.json"))
    assert written and set(written) <= set(first.files)
    for path in written:
        assert path.read_bytes() == (again.out / FOLDER / path.name).read_bytes()
    assert first.pricing_analytics == again.pricing_analytics == len(written_points(first.out)) > 0
    # Meta's costs come from the card the build prices the same tenant with (convo.toml's)
    assert load(first.config_path).billing.card_paths == (analytics_module.rate_card_file(),)
    # a second run into the same folder leaves no file of the first behind
    other = simulate(SimulateSettings(out=tmp_path / "a", contacts=40, days=20, seed=3, start=date(2026, 5, 3)))
    assert set((other.out / FOLDER).glob("*.json")) == {path for path in other.files if FOLDER in str(path)}
