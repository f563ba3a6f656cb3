"""Rate cards: Meta's prices per market, category, currency and volume tier (DOMAIN R22-R25).

A rate card is a CSV file, one row per (effective_from, market, category, currency,
tier)::

    effective_from,market,category,currency,tier_from,tier_to,rate_micros[,source]

* ``effective_from``: ``YYYY-MM-DD``, a quarter start (Jan 1, Apr 1, Jul 1, Oct 1):
  Meta changes rates on no other day (R23). The rows of one (market, category,
  currency) dated ``d`` replace, from ``d`` on, every earlier row of that key, so a
  card lists changes only: a key keeps its rates until a later edition names it.
* ``market``: a DOMAIN R22 market, spelled as in ``data/market_map.csv``;
* ``category``: ``marketing``, ``utility``, ``authentication``,
  ``authentication-international`` or ``service`` (the rate a category is priced at
  is chosen by ``data/pricing_rules.csv``: in regime C service is priced at the
  utility rate, R21);
* ``currency``: ISO 4217 (the WABA's currency picks the rows, R1);
* ``tier_from`` / ``tier_to``: the charged units of a month this rate covers, counted
  from 1 per tenant x market x category x local month (R24); ``tier_to`` empty = no
  upper bound. The tiers of one key and date start at 1, leave no gap, do not overlap
  and end open-ended; a category without volume tiers has the single tier ``1,``;
* ``rate_micros``: the price of one unit (a message, or a CBP conversation) in
  millionths of the currency, a whole number;
* ``source`` (optional): where the figure comes from. Lines starting with ``#`` are
  comments.

:func:`load` checks each row and each key's tiers; :func:`check_coverage` checks the
card against the pricing rules: every market the card names has, in each currency,
every category that can be charged, from the card's first date (or the first day the
market map uses the market) on. Every problem is one line naming file and line.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow as pa

from pipeline.markets import MARKETS

COLUMNS = ("effective_from", "market", "category", "currency", "tier_from", "tier_to", "rate_micros")
OPTIONAL_COLUMNS = ("source",)
CATEGORIES = ("marketing", "utility", "authentication", "authentication-international", "service")
QUARTER_START_MONTHS = (1, 4, 7, 10)   # DOMAIN R23

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_WHOLE = re.compile(r"\d+")

RATE_CARD_SCHEMA = pa.schema([
    ("effective_from", pa.date32()),
    ("market", pa.string()),
    ("category", pa.string()),
    ("currency", pa.string()),
    ("tier_from", pa.int64()),
    ("tier_to", pa.int64()),
    ("rate_micros", pa.int64()),
    ("tier", pa.string()),
    ("source", pa.string()),
    ("line", pa.int64()),
])


class RateCardError(ValueError):
    """A rate card that cannot be used; the message names file and line."""


@dataclass(frozen=True)
class Rate:
    effective_from: date
    market: str
    category: str
    currency: str
    tier_from: int
    tier_to: int | None
    rate_micros: int
    source: str
    line: int

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.market, self.category, self.currency)

    @property
    def tier(self) -> str:
        """The tier as Meta labels it: ``from:to`` (``from:`` when unbounded)."""
        return f"{self.tier_from}:{'' if self.tier_to is None else self.tier_to}"


@dataclass(frozen=True)
class RateCard:
    path: Path
    rates: tuple[Rate, ...]

    def currencies(self) -> tuple[str, ...]:
        return tuple(sorted({rate.currency for rate in self.rates}))

    def table(self) -> pa.Table:
        rates = self.rates
        return pa.table({
            "effective_from": [r.effective_from for r in rates],
            "market": [r.market for r in rates],
            "category": [r.category for r in rates],
            "currency": [r.currency for r in rates],
            "tier_from": [r.tier_from for r in rates],
            "tier_to": [r.tier_to for r in rates],
            "rate_micros": [r.rate_micros for r in rates],
            "tier": [r.tier for r in rates],
            "source": [r.source or None for r in rates],
            "line": [r.line for r in rates],
        }, schema=RATE_CARD_SCHEMA)


def load(path: Path) -> RateCard:
    """Read a rate card and check every row and the tiers of every key."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RateCardError(f"{path}: rate card not found (billing.rate_card in convo.toml)") from None
    except UnicodeDecodeError:
        raise RateCardError(f"{path}: not UTF-8 text") from None
    lines = [(number, line) for number, line in enumerate(text.splitlines(), start=1)
             if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise RateCardError(f"{path}:1: empty rate card: the columns must be {','.join(COLUMNS)}")
    header_line, header_text = lines[0]
    header = tuple(column.strip() for column in next(csv.reader([header_text])))
    if header not in (COLUMNS, COLUMNS + OPTIONAL_COLUMNS):
        raise RateCardError(f"{path}:{header_line}: the columns must be {','.join(COLUMNS)}[,source], "
                            f"got {','.join(header)}")
    rates = tuple(_rate(path, number, next(csv.reader([line])), len(header)) for number, line in lines[1:])
    if not rates:
        raise RateCardError(f"{path}:{header_line}: the rate card has no rates")
    _check_tiers(path, rates)
    return RateCard(path=Path(path), rates=rates)


def _rate(path: Path, line: int, fields: list[str], width: int) -> Rate:
    where = f"{path}:{line}"
    if len(fields) != width:
        raise RateCardError(f"{where}: expected {width} fields, got {len(fields)}")
    start, market, category, currency, low, high, rate, *rest = (field.strip() for field in fields)
    if not _ISO_DATE.fullmatch(start):
        raise RateCardError(f"{where}: effective_from: not a date YYYY-MM-DD: {start!r}")
    try:
        effective_from = date.fromisoformat(start)
    except ValueError:
        raise RateCardError(f"{where}: effective_from: not a date YYYY-MM-DD: {start!r}") from None
    if effective_from.day != 1 or effective_from.month not in QUARTER_START_MONTHS:
        raise RateCardError(f"{where}: effective_from: {start} is not a quarter start "
                            "(Meta changes rates only on Jan 1, Apr 1, Jul 1 and Oct 1, DOMAIN R23)")
    if market not in MARKETS:
        raise RateCardError(f"{where}: market: unknown market {market!r} (the DOMAIN R22 names of data/market_map.csv)")
    if category not in CATEGORIES:
        raise RateCardError(f"{where}: category: unknown category {category!r} (one of {', '.join(CATEGORIES)})")
    if not _CURRENCY.fullmatch(currency):
        raise RateCardError(f"{where}: currency: must be an ISO 4217 code like USD, got {currency!r}")
    if not _WHOLE.fullmatch(low) or int(low) < 1:
        raise RateCardError(f"{where}: tier_from: must be a whole number from 1, got {low!r}")
    if high and (not _WHOLE.fullmatch(high) or int(high) < int(low)):
        raise RateCardError(f"{where}: tier_to: must be empty (no upper bound) or a whole number "
                            f">= tier_from {low}, got {high!r}")
    if not _WHOLE.fullmatch(rate):
        raise RateCardError(f"{where}: rate_micros: must be a whole number of millionths of the currency "
                            f"(0.0625 USD = 62500), got {rate!r}")
    return Rate(effective_from=effective_from, market=market, category=category, currency=currency,
                tier_from=int(low), tier_to=int(high) if high else None, rate_micros=int(rate),
                source=rest[0] if rest else "", line=line)


def _check_tiers(path: Path, rates: tuple[Rate, ...]) -> None:
    groups: dict[tuple[date, str, str, str], list[Rate]] = {}
    for rate in rates:
        groups.setdefault((rate.effective_from, *rate.key), []).append(rate)
    for (day, market, category, currency), tiers in groups.items():
        name = f"{market} {category} {currency} from {day}"
        tiers.sort(key=lambda rate: (rate.tier_from, rate.line))
        if tiers[0].tier_from != 1:
            raise RateCardError(f"{path}:{tiers[0].line}: tiers of {name} must start at 1, "
                                f"the first starts at {tiers[0].tier_from}")
        for earlier, later in zip(tiers, tiers[1:]):
            if earlier.tier_to is None or later.tier_from <= earlier.tier_to:
                first, second = sorted((earlier, later), key=lambda rate: rate.line)
                raise RateCardError(f"{path}:{second.line}: tiers overlap: {name}: tier {second.tier} "
                                    f"overlaps tier {first.tier} on line {first.line}")
            if later.tier_from > earlier.tier_to + 1:
                raise RateCardError(f"{path}:{later.line}: tiers leave a gap: {name}: units "
                                    f"{earlier.tier_to + 1} to {later.tier_from - 1} have no rate")
        if tiers[-1].tier_to is not None:
            raise RateCardError(f"{path}:{tiers[-1].line}: the last tier of {name} must be open-ended "
                                f"(empty tier_to), got {tiers[-1].tier}")


Requirement = Callable[[date, date | None], dict[str, set[str]]]


def check_coverage(card: RateCard, required: Requirement, market_since: dict[str, date]) -> None:
    """Every market the card names has every chargeable category in each currency.

    ``required(start, end)`` gives, per market, the rate categories that can be
    charged on some day of ``[start, end)`` (end None = open-ended);
    ``market_since[market]`` is the first day the market map uses the market. A
    market is checked from the later of the currency's first date and that day.
    """
    path = card.path
    for currency in card.currencies():
        rates = [rate for rate in card.rates if rate.currency == currency]
        editions = sorted({rate.effective_from for rate in rates})
        first_line = {day: min(rate.line for rate in rates if rate.effective_from == day) for day in editions}
        for market in sorted({rate.market for rate in rates}):
            own = [rate for rate in rates if rate.market == market]
            needed_from = max(editions[0], market_since.get(market, editions[0]))
            first = min(own, key=lambda rate: (rate.effective_from, rate.line))
            if first.effective_from > needed_from:
                raise RateCardError(f"{path}:{first.line}: gap in dates: {market} has no {currency} rates "
                                    f"in force from {needed_from} (its first rates start {first.effective_from})")
            days = sorted({needed_from, *(day for day in editions if day > needed_from)})
            for index, day in enumerate(days):
                end = days[index + 1] if index + 1 < len(days) else None
                in_force = {rate.category for rate in own if rate.effective_from <= day}
                for category in sorted(required(day, end).get(market, set()) - in_force):
                    line = first_line.get(day, first.line)
                    raise RateCardError(f"{path}:{line}: missing category: {market} has no {category} rate "
                                        f"in {currency} in force on {day}")


def keys_in_force(rates: Iterable[Rate], day: date) -> dict[tuple[str, str, str], list[Rate]]:
    """The tiers in force on ``day`` of every (market, category, currency)."""
    latest: dict[tuple[str, str, str], date] = {}
    for rate in rates:
        if rate.effective_from <= day and rate.effective_from > latest.get(rate.key, date.min):
            latest[rate.key] = rate.effective_from
    result: dict[tuple[str, str, str], list[Rate]] = {}
    for rate in rates:
        if latest.get(rate.key) == rate.effective_from:
            result.setdefault(rate.key, []).append(rate)
    for tiers in result.values():
        tiers.sort(key=lambda rate: rate.tier_from)
    return result
