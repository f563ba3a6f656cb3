"""Meta's analytics exports (DOMAIN R26): pricing_analytics for the PMP days,
conversation_analytics for the CBP days, as volume and cost per local day and month.

What Meta's Graph API answers for ``pricing_analytics`` with DAILY granularity and the
PHONE, COUNTRY, PRICING_TYPE, PRICING_CATEGORY and TIER dimensions, one response per WABA
and calendar month (``exports/pricing_analytics/pricing_analytics-YYYY-MM-<waba id>.json``)::

    {"pricing_analytics": {"data": [{"data_points": [
        {"start": 1756695600, "end": 1756782000, "phone_number": "5511955510101",
         "country": "BR", "tier": "1:100000", "pricing_type": "REGULAR",
         "pricing_category": "UTILITY", "volume": 12, "cost": 0.75}, ...]}]},
     "id": "waba-br"}

A data point is one (local day, business number, recipient country, pricing type,
pricing category, tier). ``start``/``end`` are the local midnights (Unix seconds) of
the business number's timezone (DOMAIN R1), so a DST day lasts 23 or 25 hours. A free
unit, or one of a key with a single tier, has no ``tier``; the open top tier is
``lower:MAX``. Beside it, ``pricing_analytics-monthly-<waba id>.json`` is the WABA-level
MONTHLY response for the whole period (no PHONE dimension, ``start``/``end`` the local
months). CBP conversations are written the same two ways as ``conversation_analytics``
(``conversation``, ``conversation_type``, ``conversation_category``; no tier), under
``exports/conversation_analytics/`` (:meth:`PricingAnalytics.write`).

Units, as Meta counts them (the pricing objects run.py sets, meta.py):
- PMP (regimes B and C): every delivered outbound message, free ones included, on
  its local delivery day, by its pricing object's type and category;
- CBP (regime A): one per conversation, on the day it opened (the message that
  opened it, :attr:`meta.MetaThread.opened`).

Cost: Meta's charge for REGULAR units only, in micro-units of USD summed exactly and
written as a decimal from integers (62500 micros -> ``0.0625``):
- the rate is the shipped rate card's (``data/rate_cards/meta_usd.csv``,
  read here with the csv module: the simulator never imports the billing engine)
  in force on the unit's local billing date (latest ``effective_from`` <= date) for
  the recipient's market (``data/market_map.csv``, effective-dated on the same
  date; a country with no row in force is ``Other``, as data/README.md says);
- rate category: the unit's category, except that a charged service message
  (regime C, R21) is priced from the card's ``utility`` rows; the card's
  ``service`` rows price CBP service conversations;
- volume tiers (R24): charged units are counted from 1 per tenant (the simulator
  has one) x market x pricing category x local month, in delivery order (ties by
  message id, as the free allowances), over charged units only, and each is priced
  at the rate of the tier its count falls in. A data point per tier used, ``tier``
  ``"from:to"`` (``"from:"`` for the open top tier) when the card has several
  tiers for the key, ``""`` when it has one. A charged regime C service message is
  untiered (R21; ``volume_tiers`` untiered in data/pricing_rules.csv): the utility
  list rate (the first tier's) in force on its day, ``tier`` ``""``, and it is
  counted nowhere, so it never moves a utility template up the tiers;
- a unit with no card row (before the card's first date, 2025-01-01, or an
  authentication-international unit in a market without such a row) costs 0:
  :attr:`PricingAnalytics.unrated` counts them.

Streaming, bounded memory: the data points are aggregated in a dict as units
arrive (at most days x numbers x countries x types x categories x tiers entries).
The tier of a charged unit depends on units of other contacts not generated yet,
and a free-allowance claim (R16, R21) is only settled at the end, so those units
(charged units of a tiered key, and every unit holding a claim) are kept compactly:
per (market, category, rate category, local month, counted) two ``array`` columns,
the delivery time packed with a (number, country) code (8 bytes) and the message id
(8 bytes): 16 bytes per such unit. Measured on 1.2 million messages all in regime C
(20,000 contacts, 60 days from 2026-10-01; the worst case, service messages being
charged), when charged service messages were still tiered and so all kept: 40% of
the messages are kept (7.7 MB), peak RSS +10 MB, time +4%, 1.7 s to settle (an upper
bound now: an untiered service message is kept only while it holds a claim). So for 10 million messages about 4 million units, 65 MB, plus a transient
~56 bytes per unit of the one key being sorted (the largest key held 2.3% of the
messages: about 13 MB at 10 million); under regime B only utility and
authentication templates are kept (6% of the messages, measured).
"""

from __future__ import annotations

import csv
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import orjson

from pipeline.paths import data_dir
from pipeline.simulate.clock import epoch_day, month_of_day
from pipeline.simulate.meta import PMP, PMP_FIRST_DAY, Claim, Pricing
from pipeline.simulate.world import BusinessNumber

CURRENCY = "USD"
MARKET_WHEN_UNMAPPED = "Other"             # data/README.md: no row in force -> Other
_CODE_BITS = 16                            # (number, country) codes packed under the time
_CODE_MASK = (1 << _CODE_BITS) - 1
_KEY_BITS = 64
_KEY_MASK = (1 << _KEY_BITS) - 1
_MICROS = 1_000_000


def rate_card_file() -> Path:
    return data_dir() / "rate_cards" / "meta_usd.csv"


def market_map_file() -> Path:
    return data_dir() / "market_map.csv"


def _day(text: str) -> int:
    return epoch_day(date.fromisoformat(text))


def _rows(path: Path) -> Iterable[dict[str, str]]:
    """CSV rows as dicts; lines starting with # are comments."""
    with open(path, encoding="utf-8", newline="") as handle:
        yield from csv.DictReader(line for line in handle if not line.startswith("#"))


# --- reference data ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Tier:
    tier_from: int
    tier_to: int | None                   # None: no upper bound
    rate_micros: int


Ladder = tuple[Tier, ...]                 # the tiers of one key in force on a date, by tier_from


class RateCard:
    """Rates per (market, category) in force on a date: a key's rows dated d replace its
    earlier rows from d on (DOMAIN R23)."""

    def __init__(self, rows: Iterable[tuple[str, str, str, str, int, int | None, int]]) -> None:
        """rows: (effective_from, market, category, currency, tier_from, tier_to, rate_micros)."""
        editions: dict[tuple[str, str], dict[int, list[Tier]]] = {}
        for effective_from, market, category, currency, low, high, rate in rows:
            if currency != CURRENCY:
                continue
            edition = editions.setdefault((market, category), {}).setdefault(_day(effective_from), [])
            edition.append(Tier(low, high, rate))
        self._editions: dict[tuple[str, str], list[tuple[int, Ladder]]] = {
            key: [(day, tuple(sorted(tiers, key=lambda tier: tier.tier_from)))
                  for day, tiers in sorted(by_day.items())]
            for key, by_day in editions.items()
        }
        self._cache: dict[tuple[str, str, int], Ladder | None] = {}
        self._tiered: dict[tuple[str, str, tuple[int, int]], bool] = {}

    @classmethod
    def load(cls, path: Path | None = None) -> RateCard:
        return cls(
            (row["effective_from"], row["market"], row["category"], row["currency"], int(row["tier_from"]),
             int(row["tier_to"]) if row["tier_to"] else None, int(row["rate_micros"]))
            for row in _rows(path or rate_card_file())
        )

    def ladder(self, market: str, category: str, day: int) -> Ladder | None:
        """The tiers in force on a local day (epoch days), or None without a row."""
        key = (market, category, day)
        if key in self._cache:
            return self._cache[key]
        found = None
        for since, ladder in self._editions.get((market, category), ()):
            if since > day:
                break
            found = ladder
        self._cache[key] = found
        return found

    def tiered(self, market: str, category: str, month: tuple[int, int]) -> bool:
        """Has any ladder in force during the month several tiers?"""
        key = (market, category, month)
        found = self._tiered.get(key)
        if found is None:
            year, number = month
            first = epoch_day(date(year, number, 1))
            after = epoch_day(date(year + number // 12, number % 12 + 1, 1))
            days = [first] + [since for since, _ in self._editions.get((market, category), ())
                              if first < since < after]
            found = any(len(self.ladder(market, category, day) or ()) > 1 for day in days)
            self._tiered[key] = found
        return found


class MarketMap:
    """Recipient country -> Meta market on a local date (DOMAIN R22, data/market_map.csv)."""

    def __init__(self, rows: Iterable[tuple[str, str, str, str]]) -> None:
        """rows: (country_code, market, effective_from, effective_to or '')."""
        self._periods: dict[str, list[tuple[int, int | None, str]]] = {}
        for country, market, since, until in rows:
            self._periods.setdefault(country, []).append((_day(since), _day(until) if until else None, market))
        self._cache: dict[tuple[str, int], str] = {}

    @classmethod
    def load(cls, path: Path | None = None) -> MarketMap:
        return cls((row["country_code"], row["market"], row["effective_from"], row["effective_to"])
                   for row in _rows(path or market_map_file()))

    def market(self, country: str, day: int) -> str:
        key = (country, day)
        found = self._cache.get(key)
        if found is None:
            found = MARKET_WHEN_UNMAPPED
            for since, until, market in self._periods.get(country, ()):
                if since <= day and (until is None or day < until):
                    found = market
                    break
            self._cache[key] = found
        return found


# --- the export --------------------------------------------------------------------------------
PointKey = tuple[int, int, str, str, str, str]   # (local day, number index, country, type, category, tier)


def cost_text(micros: int) -> str:
    """Micro-units as an exact decimal number: 62500 -> '0.0625', 3000000 -> '3'."""
    sign = "-" if micros < 0 else ""
    whole, fraction = divmod(abs(micros), _MICROS)
    if not fraction:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{fraction:06d}".rstrip("0")


def tier_label(ladder: Ladder, tier: Tier) -> str:
    """'' for a single-tier key, else 'from:to' ('from:' for the open top tier)."""
    if len(ladder) == 1:
        return ""
    return f"{tier.tier_from}:{'' if tier.tier_to is None else tier.tier_to}"


class PricingAnalytics:
    """Aggregates the billing units of a run into Meta's pricing_analytics data points.

    Call :meth:`add` for every delivered outbound message that opened a billing unit
    (in any order across threads), then :meth:`finish` once with the free-allowance
    claims granted, then :meth:`write`.
    """

    def __init__(self, numbers: tuple[BusinessNumber, ...], card: RateCard | None = None,
                 markets: MarketMap | None = None) -> None:
        self.numbers = numbers
        self.card = card if card is not None else RateCard.load()
        self.markets = markets if markets is not None else MarketMap.load()
        self.points: dict[PointKey, list[int]] = {}           # key -> [volume, cost micros]
        self.unrated = 0                                     # charged units without a card row
        self._codes: dict[tuple[int, str], int] = {}
        self._code_list: list[tuple[int, str]] = []
        # (market, category, rate category, month, counted) -> (time << 16 | code, message id);
        # counted: False for untiered units (regime C service, R21), priced without a count
        self._deferred: dict[tuple[str, str, str, tuple[int, int], bool], tuple[array, array]] = {}
        self._finished = False
        self.written = {PRICING: 0, CONVERSATION: 0}             # per-number DAILY data points written

    # --- while generating --------------------------------------------------------------------
    def add(self, number_index: int, country: str, t: int, message_key: int, pricing: Pricing,
            claim: Claim | None) -> None:
        """A billing unit opened at t (delivery time) by the message with id message_key."""
        day = self.numbers[number_index].clock.local_day(t)
        category = pricing.category
        if pricing.type != "regular":
            self._point((day, number_index, country, pricing.type, category, ""), 0)
            return
        market = self.markets.market(country, day)
        # R21: a charged regime C service message is priced at the utility list rate,
        # has no tier and is not counted (volume_tiers untiered, data/pricing_rules.csv).
        untiered = pricing.pricing_model == PMP and category == "service"
        rate_category = "utility" if untiered else category
        month = month_of_day(day)
        if claim is None and (untiered or not self.card.tiered(market, rate_category, month)):
            ladder = self.card.ladder(market, rate_category, day)
            if ladder is None:
                self.unrated += 1
                self._point((day, number_index, country, "regular", category, ""), 0)
            else:
                label = "" if untiered else tier_label(ladder, ladder[0])
                self._point((day, number_index, country, "regular", category, label), ladder[0].rate_micros)
            return
        code = self._codes.get((number_index, country))
        if code is None:
            code = self._codes[(number_index, country)] = len(self._code_list)
            if code > _CODE_MASK:
                raise RuntimeError("too many (number, country) pairs for pricing analytics")
            self._code_list.append((number_index, country))
        group = (market, category, rate_category, month, not untiered)
        columns = self._deferred.get(group)
        if columns is None:
            columns = self._deferred[group] = (array("q"), array("Q"))
        columns[0].append(t << _CODE_BITS | code)
        columns[1].append(message_key)

    def _point(self, key: PointKey, cost_micros: int) -> None:
        found = self.points.get(key)
        if found is None:
            self.points[key] = [1, cost_micros]
        else:
            found[0] += 1
            found[1] += cost_micros

    # --- at the end ------------------------------------------------------------------------------
    def finish(self, granted: Iterable[Claim]) -> None:
        """Settle the kept units: granted claims are free_tier (R16, R21), the others are
        counted in delivery order and priced by tier (R24), or, untiered (R21), at the
        first tier's rate without a count."""
        if self._finished:
            raise RuntimeError("finish() was already called")
        self._finished = True
        free = {claim[2] for claim in granted}   # the tiebreak of a claim is its message id
        for group in sorted(self._deferred):
            times, keys = self._deferred.pop(group)
            self._settle(group, times, keys, free)

    def _settle(self, group: tuple[str, str, str, tuple[int, int], bool], times: array, keys: array,
                free: set[int]) -> None:
        market, category, rate_category, _, counted = group
        numbers = self.numbers
        # Delivery order, ties by message id: (time, id, code) packed in one integer.
        ordered = sorted((packed >> _CODE_BITS) << (_KEY_BITS + _CODE_BITS) | key << _CODE_BITS
                         | (packed & _CODE_MASK) for packed, key in zip(times, keys))
        del times, keys
        position = 0
        for value in ordered:
            number_index, country = self._code_list[value & _CODE_MASK]
            key = (value >> _CODE_BITS) & _KEY_MASK
            t = value >> (_KEY_BITS + _CODE_BITS)
            day = numbers[number_index].clock.local_day(t)
            if key in free:
                self._point((day, number_index, country, "free_tier", category, ""), 0)
                continue
            if counted:
                position += 1
            ladder = self.card.ladder(market, rate_category, day)
            tier = None if ladder is None else _tier_of(ladder, position) if counted else ladder[0]
            if ladder is None or tier is None:
                self.unrated += 1
                self._point((day, number_index, country, "regular", category, ""), 0)
            else:
                label = tier_label(ladder, tier) if counted else ""
                self._point((day, number_index, country, "regular", category, label), tier.rate_micros)

    def write(self, folder: Path, start: int, end: int, conversation_folder: Path | None = None) -> list[Path]:
        """Meta's responses for the period [start, end) (Unix seconds), as Meta's API answers
        them (README "Meta's analytics files"): the PMP units (local days from 2025-07-01) as
        pricing_analytics, the CBP conversations (before) as conversation_analytics (written
        only with conversation_folder). Each API has one per-number DAILY response per WABA
        and calendar month of its number's local days that fall in the API's years
        (``<api>-YYYY-MM-<waba id>.json``; a month without units has no data points, as Meta
        answers it), and one WABA-level MONTHLY response per WABA for the whole period
        (``<api>-monthly-<waba id>.json``, no PHONE dimension)."""
        if not self._finished:
            raise RuntimeError("finish() must be called before write()")
        paths = self._write_api(PRICING, folder, start, end)
        if conversation_folder is not None:
            paths += self._write_api(CONVERSATION, conversation_folder, start, end)
        return paths

    def _write_api(self, api: str, folder: Path, start: int, end: int) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        pmp = api == PRICING

        def in_api(day: int) -> bool:
            return (day >= _PMP_FIRST) == pmp

        daily: dict[tuple[str, tuple[int, int]], dict[tuple, list[int]]] = {}
        monthly: dict[str, dict[tuple, list[int]]] = {}
        for number in self.numbers:
            for day in range(number.clock.local_day(start), number.clock.local_day(end - 1) + 1):
                if in_api(day):
                    daily.setdefault((number.waba_id, month_of_day(day)), {})
                    monthly.setdefault(number.waba_id, {})
        for (day, number_index, country, pricing_type, category, tier), (volume, cost) in self.points.items():
            if not in_api(day):
                continue
            number = self.numbers[number_index]
            meta_type, meta_category = _meta_labels(api, pricing_type, category)
            month = month_of_day(day)
            key = (number.clock.local_to_utc(day, 0), number.clock.local_to_utc(day + 1, 0),
                   number.display_phone_number, country, _meta_tier(tier), meta_type, meta_category)
            _add(daily.setdefault((number.waba_id, month), {}), key, volume, cost)
            first, after = _month_days(month)
            key = (number.clock.local_to_utc(first, 0), number.clock.local_to_utc(after, 0), None, country,
                   _meta_tier(tier), meta_type, meta_category)
            _add(monthly.setdefault(number.waba_id, {}), key, volume, cost)
        paths = []
        for (waba_id, (year, month)), points in sorted(daily.items(), key=lambda item: (item[0][1], item[0][0])):
            path = folder / f"{api}-{year:04d}-{month:02d}-{waba_id}.json"
            path.write_bytes(_response(api, waba_id, points))
            self.written[api] += len(points)
            paths.append(path)
        for waba_id, points in sorted(monthly.items()):
            path = folder / f"{api}-monthly-{waba_id}.json"
            path.write_bytes(_response(api, waba_id, points))
            paths.append(path)
        return paths

    @property
    def data_points(self) -> int:
        return len(self.points)


PRICING, CONVERSATION = "pricing_analytics", "conversation_analytics"
_PMP_FIRST = epoch_day(PMP_FIRST_DAY)
# conversation_analytics labels (README "Meta's analytics files"): a CBP free entry point
# conversation is FREE_ENTRY_POINT / SERVICE, as in Meta's example; a free service
# conversation from 2024-11-01 (free_customer_service, R16) is a REGULAR one that costs 0.
_CONVERSATION_TYPES = {"regular": "REGULAR", "free_tier": "FREE_TIER", "free_entry_point": "FREE_ENTRY_POINT",
                       "free_customer_service": "REGULAR"}


def _meta_labels(api: str, pricing_type: str, category: str) -> tuple[str, str]:
    if api == PRICING:
        return pricing_type.upper(), category.replace("-", "_").upper()
    meta_category = "SERVICE" if category == "referral_conversion" else category.replace("-", "_").upper()
    return _CONVERSATION_TYPES[pricing_type], meta_category


def _meta_tier(tier: str) -> str:
    """Meta's tier text: 'lower:upper', 'lower:MAX' for the open top tier; '' (no tier
    field) for a free unit or a key with a single tier."""
    return tier + "MAX" if tier.endswith(":") else tier


def _month_days(month: tuple[int, int]) -> tuple[int, int]:
    year, number = month
    return epoch_day(date(year, number, 1)), epoch_day(date(year + number // 12, number % 12 + 1, 1))


def _add(points: dict[tuple, list[int]], key: tuple, volume: int, cost: int) -> None:
    found = points.get(key)
    if found is None:
        points[key] = [volume, cost]
    else:
        found[0] += volume
        found[1] += cost


def _response(api: str, waba_id: str, points: dict[tuple, list[int]]) -> bytes:
    """One response: data points in (start, number, country, type, category, tier) order."""
    texts = []
    for key in sorted(points, key=lambda key: (key[0], key[2] or "", key[3], key[5], key[6], _tier_order(key[4]))):
        start, end, phone, country, tier, meta_type, meta_category = key
        volume, cost = points[key]
        phone_field = "" if phone is None else f'"phone_number":"{phone}",'
        if api == PRICING:
            tier_field = f'"tier":"{tier}",' if tier else ""
            texts.append(f'{{"start":{start},"end":{end},{phone_field}"country":"{country}",{tier_field}'
                         f'"pricing_type":"{meta_type}","pricing_category":"{meta_category}",'
                         f'"volume":{volume},"cost":{cost_text(cost)}}}')
        else:
            texts.append(f'{{"start":{start},"end":{end},"conversation":{volume},{phone_field}"country":"{country}",'
                         f'"conversation_type":"{meta_type}","conversation_category":"{meta_category}",'
                         f'"cost":{cost_text(cost)}}}')
    body = ",".join(texts).encode()
    return (b'{"' + api.encode() + b'":{"data":[{"data_points":[' + body + b']}]},"id":'
            + orjson.dumps(waba_id) + b"}")


def _tier_of(ladder: Ladder, position: int) -> Tier | None:
    for tier in ladder:
        if tier.tier_from <= position and (tier.tier_to is None or position <= tier.tier_to):
            return tier
    return None


def _tier_order(tier: str) -> tuple[int, str]:
    """Tiers in numeric order ('' first)."""
    head = tier.split(":", 1)[0]
    return (int(head) if head else 0, tier)


__all__ = ["MarketMap", "PricingAnalytics", "RateCard", "Tier", "cost_text", "market_map_file",
           "rate_card_file", "tier_label"]
