"""Rate cards: Meta's prices per market, category, currency and volume tier (DOMAIN R22-R25).

``[billing] rate_card`` names one or several files (or folders of them); each is one
of three layouts, recognised by its content:

**convo's own CSV**, one row per (effective_from, market, category, currency, tier)::

    effective_from,market,category,currency,tier_from,tier_to,rate_micros[,source[,confidence]]

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
* ``source`` (optional): where the figure comes from; ``confidence`` (optional):
  ``high``, ``medium``, ``low`` (a sourced figure) or ``illustrative`` (not Meta's).
  Lines starting with ``#`` are comments.

**Meta's ``Pricing.csv``** as downloaded (DOMAIN R23): a few rows of title and notes,
one naming the effective date ("... effective October 1, 2026"), then the header
``Market,Currency,Marketing,Utility,Authentication,Authentication-International,Service``
(a header cell may hold a quoted line break, ``"Authentication-\nInternational"``),
one row per market: the list rate of each category in the currency's units,
``$US`` for USD, ``n/a`` where the category has no rate. Each rate becomes a
single-tier row of that date.

**Meta's ``Tier Pricing.csv``**: title rows naming the date, a row naming the three
groups (Utility, Authentication, Authentication-International), then the header
``Market,Currency`` and, per group side by side, ``From,To,Rate type,Rate,vs. List
rate``; a market's name only on its first row. Each group's bands become the tiers of
that (market, category): ``From`` 0 or 1 is unit 1, an empty or ``--`` ``To`` is
open-ended. Given with the same date's ``Pricing.csv``, its tiers replace that file's
single rate, and its list rate must equal it.

A Meta file's rows carry ``source`` = the file's name and ``confidence`` = ``high``:
they are Meta's own figures. Meta's market names map onto convo's (``UAE`` ->
``United Arab Emirates``, ...); a name convo does not know is an error.

:func:`load_cards` checks each row and each key's tiers; :func:`check_coverage` checks
the card against the pricing rules: every market the card names has, in each
currency, every category that can be charged, from the card's first date (or the
first day the market map uses the market) on. Every problem is one line naming file
and line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

from pipeline import refdata
from pipeline.errors import ConvoError
from pipeline.markets import MARKETS

COLUMNS = ("effective_from", "market", "category", "currency", "tier_from", "tier_to", "rate_micros")
OPTIONAL_COLUMNS = ("source", "confidence")
CATEGORIES = ("marketing", "utility", "authentication", "authentication-international", "service")
QUARTER_START_MONTHS = (1, 4, 7, 10)   # DOMAIN R23
# How far a figure can be trusted; the first three are sourced (data/README.md).
CONFIDENCES = ("high", "medium", "low", "illustrative")
SOURCED = ("high", "medium", "low")
META_FILE_CONFIDENCE = "high"           # a file as Meta publishes it

# Names Meta's files may use for a convo market (compared case-insensitively).
META_MARKET_ALIASES = {
    "uae": "United Arab Emirates",
    "uk": "United Kingdom",
    "us & canada": "North America",
    "united states & canada": "North America",
    "rest of central and eastern europe": "Rest of Central & Eastern Europe",
}
# Meta's spelling of a currency in its files -> ISO 4217 (DOMAIN R23: USD is "$US").
META_CURRENCIES = {"$US": "USD", "US$": "USD", "A$": "AUD", "$AU": "AUD", "€": "EUR", "£": "GBP",
                   "₹": "INR", "RP": "IDR", "$MX": "MXN", "MX$": "MXN", "R$": "BRL"}
META_PRICING_HEADER = ("Market", "Currency", "Marketing", "Utility", "Authentication",
                       "Authentication-International", "Service")
META_TIER_GROUP = ("From", "To", "Rate type", "Rate", "vs. List rate")
META_TIER_CATEGORIES = ("utility", "authentication", "authentication-international")
_META_NO_RATE = ("n/a", "--")
_KNOWN_MARKETS = frozenset(MARKETS)
# Meta's names, lower case -> convo's: every convo name as it is, plus the aliases.
_META_MARKETS = {**{market.lower(): market for market in MARKETS}, **META_MARKET_ALIASES}
_MONTHS = {name: number for number, name in enumerate(
    ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
     "november", "december"), start=1)}

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_WHOLE = re.compile(r"\d+")
_DECIMAL = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?")
_VOLUME = re.compile(r"\d{1,3}(?:,\d{3})+|\d+")
_PERCENT = re.compile(r"[+-]?\d+(?:\.\d+)?\s*%")
_EFFECTIVE = re.compile(
    r"effective(?:\s+from)?\s+(?:(?P<iso>\d{4}-\d{2}-\d{2})"
    r"|(?P<month>[A-Za-z]+)\s+(?P<day>\d{1,2}),?\s+(?P<year>\d{4})"
    r"|(?P<day2>\d{1,2})\s+(?P<month2>[A-Za-z]+),?\s+(?P<year2>\d{4}))",
    re.IGNORECASE)

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
    ("confidence", pa.string()),
    ("file", pa.string()),
    ("line", pa.int64()),
])


class RateCardError(ConvoError, ValueError):
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
    confidence: str = ""
    path: Path | None = None      # the file the row comes from

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.market, self.category, self.currency)

    @property
    def tier(self) -> str:
        """The tier as Meta labels it: ``from:to`` (``from:`` when unbounded)."""
        return f"{self.tier_from}:{'' if self.tier_to is None else self.tier_to}"

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class RateCard:
    path: Path
    rates: tuple[Rate, ...]
    paths: tuple[Path, ...] = ()   # every file read (path is the first)

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
            "confidence": [r.confidence or None for r in rates],
            "file": [(r.path or self.path).name for r in rates],
            "line": [r.line for r in rates],
        }, schema=RATE_CARD_SCHEMA)


def known_markets() -> frozenset[str]:
    """The market names a card may use: DOMAIN R22's, as data/market_map.csv spells them."""
    return _KNOWN_MARKETS


def load(path: Path) -> RateCard:
    """Read one rate card file or folder (see :func:`load_cards`)."""
    return load_cards((Path(path),))


def load_cards(paths: Iterable[Path]) -> RateCard:
    """Read every rate card file (a folder: each ``*.csv`` in it, by name), check every
    row, merge Meta's tier files into the same date's list rates, and check the tiers
    of every key."""
    files = card_files(paths)
    if not files:
        raise RateCardError("billing.rate_card in convo.toml names no rate card")
    by_kind: dict[str, list[Rate]] = {"convo": [], "pricing": [], "tier": []}
    for file in files:
        kind, rows = _read(file)
        by_kind[kind].extend(rows)
    merged = by_kind["convo"] + _merge(by_kind["pricing"], by_kind["tier"])
    _check_duplicates(merged)
    _check_tiers(merged)
    return RateCard(path=files[0], rates=tuple(merged), paths=tuple(files))


def card_files(paths: Iterable[Path]) -> list[Path]:
    """The files [billing] rate_card names: a folder stands for each ``*.csv`` in it, by
    name (what a build reads, so what an incremental build must fingerprint)."""
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(file for file in path.iterdir() if file.suffix.lower() == ".csv" and file.is_file())
            if not found:
                raise RateCardError(f"{path}: the folder holds no .csv rate card (billing.rate_card in convo.toml)")
            files += found
        else:
            files.append(path)
    return files


def _read(path: Path) -> tuple[str, list[Rate]]:
    """(kind, rows) of one file: kind is ``convo``, ``pricing`` or ``tier``."""
    text = refdata.read_text(path, RateCardError, missing="rate card not found (billing.rate_card in convo.toml)",
                             encoding="utf-8-sig")
    records = list(refdata.records(text, comments=True))
    if not records:
        raise RateCardError(f"{path}:1: empty rate card: the columns must be {','.join(COLUMNS)}")
    first_line, first = records[0]
    if tuple(_cell(field) for field in first[:2]) == ("effective_from", "market"):
        return "convo", _convo(path, records)
    for index, (_line, fields) in enumerate(records):
        if [_header(field) for field in fields[:2]] == ["Market", "Currency"]:
            if any(_header(field) == "From" for field in fields):
                return "tier", _meta_tiers(path, records, index)
            return "pricing", _meta_pricing(path, records, index)
    header = ",".join(_cell(field) for field in first)
    raise RateCardError(f"{path}:{first_line}: the columns must be {','.join(COLUMNS)}[,source[,confidence]] "
                        f"(or Meta's Pricing.csv / Tier Pricing.csv), got {header}")


def _cell(field: str) -> str:
    return field.strip()


def _header(field: str) -> str:
    """A header cell: a quoted line break after a hyphen joins the word
    ("Authentication-\nInternational"); any other line break starts a note."""
    parts = [part.strip() for part in field.strip().splitlines()]
    text = parts[0] if parts else ""
    for part in parts[1:]:
        if not text.endswith("-"):
            break
        text += part
    return text


# --------------------------------------------------------------------------
# convo's own CSV
# --------------------------------------------------------------------------

def _convo(path: Path, records: list[tuple[int, list[str]]]) -> list[Rate]:
    header_line, header_fields = records[0]
    header = tuple(_cell(column) for column in header_fields)
    allowed = [COLUMNS + OPTIONAL_COLUMNS[:count] for count in range(len(OPTIONAL_COLUMNS) + 1)]
    if header not in allowed:
        raise RateCardError(f"{path}:{header_line}: the columns must be {','.join(COLUMNS)}[,source[,confidence]], "
                            f"got {','.join(header)}")
    rates = [_rate(path, number, fields, len(header)) for number, fields in records[1:]]
    if not rates:
        raise RateCardError(f"{path}:{header_line}: the rate card has no rates")
    return rates


def _rate(path: Path, line: int, fields: list[str], width: int) -> Rate:
    where = f"{path}:{line}"
    if len(fields) != width:
        raise RateCardError(f"{where}: expected {width} fields, got {len(fields)}")
    start, market, category, currency, low, high, rate, *rest = (field.strip() for field in fields)
    effective_from = refdata.parse_date(where, "effective_from", start, RateCardError, required=True)
    assert effective_from is not None
    _quarter_start(where, "effective_from: ", effective_from)
    if market not in known_markets():
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
    source = rest[0] if rest else ""
    confidence = rest[1] if len(rest) > 1 else ""
    if confidence and confidence not in CONFIDENCES:
        raise RateCardError(f"{where}: confidence: must be empty or one of {', '.join(CONFIDENCES)}, "
                            f"got {confidence!r}")
    return Rate(effective_from=effective_from, market=market, category=category, currency=currency,
                tier_from=int(low), tier_to=int(high) if high else None, rate_micros=int(rate),
                source=source, line=line, confidence=confidence, path=path)


def _quarter_start(where: str, prefix: str, day: date) -> None:
    if day.day != 1 or day.month not in QUARTER_START_MONTHS:
        raise RateCardError(f"{where}: {prefix}{day} is not a quarter start "
                            "(Meta changes rates only on Jan 1, Apr 1, Jul 1 and Oct 1, DOMAIN R23)")


# --------------------------------------------------------------------------
# Meta's Pricing.csv and Tier Pricing.csv
# --------------------------------------------------------------------------

def _effective_date(path: Path, title: list[tuple[int, list[str]]], header_line: int) -> date:
    """The date named in the title rows ("effective October 1, 2026"), a quarter start."""
    for line, fields in title:
        for field in fields:
            found = _EFFECTIVE.search(" ".join(field.split()))
            if found is None:
                continue
            where = f"{path}:{line}"
            try:
                if found["iso"]:
                    day = date.fromisoformat(found["iso"])
                else:
                    month = (found["month"] or found["month2"]).lower()
                    day = date(int(found["year"] or found["year2"]), _MONTHS[month], int(found["day"] or found["day2"]))
            except (KeyError, ValueError):
                raise RateCardError(f"{where}: effective date: not a date: {found.group(0)!r}") from None
            _quarter_start(where, "effective date ", day)
            return day
    raise RateCardError(f"{path}:{title[0][0] if title else header_line}: Meta's rate card names no effective "
                        "date in its title rows (e.g. \"effective October 1, 2026\")")


def _meta_market(where: str, text: str) -> str:
    name = " ".join(_header(text).split())
    market = _META_MARKETS.get(name.lower())
    if market is None:
        raise RateCardError(f"{where}: market: unknown market {name!r} (the DOMAIN R22 names of "
                            "data/market_map.csv)")
    return market


def _meta_currency(where: str, text: str) -> str:
    value = text.strip()
    currency = {alias.upper(): code for alias, code in META_CURRENCIES.items()}.get(value.upper())
    if currency is None and _CURRENCY.fullmatch(value):
        currency = value
    if currency is None:
        raise RateCardError(f"{where}: currency: {value!r} is neither an ISO 4217 code nor Meta's spelling of one "
                            f"({', '.join(sorted(META_CURRENCIES))})")
    return currency


def _micros(where: str, column: str, text: str) -> int | None:
    """A rate in the currency's units -> whole micro-units; None for ``n/a``. A
    quoted line break in the cell starts a note after the figure."""
    value = _header(text)
    if value.lower() in _META_NO_RATE:
        return None
    if not _DECIMAL.fullmatch(value):
        raise RateCardError(f"{where}: {column}: not a rate: {value!r} (a number like 0.0625, or n/a)")
    micros = Decimal(value.replace(",", "")) * 1_000_000
    if micros != micros.to_integral_value():
        raise RateCardError(f"{where}: {column}: {value} has more than 6 decimal places "
                            "(convo keeps whole millionths of the currency)")
    return int(micros)


def _meta_pricing(path: Path, records: list[tuple[int, list[str]]], index: int) -> list[Rate]:
    header_line, header_fields = records[index]
    header = tuple(_header(field) for field in header_fields)
    while header and not header[-1]:
        header = header[:-1]
    if header != META_PRICING_HEADER:
        raise RateCardError(f"{path}:{header_line}: Meta's Pricing.csv header must be "
                            f"{','.join(META_PRICING_HEADER)}, got {','.join(header)}")
    day = _effective_date(path, records[:index], header_line)
    source = f"Meta's rate card file {path.name}"
    rates = []
    for line, fields in records[index + 1:]:
        where = f"{path}:{line}"
        cells = list(fields)
        if not any(cell.strip() for cell in cells[1:]):
            continue   # a note below the table
        while len(cells) > len(header) and not cells[-1].strip():
            cells.pop()
        if len(cells) != len(header):
            raise RateCardError(f"{where}: expected {len(header)} fields, got {len(cells)}")
        market = _meta_market(where, cells[0])
        currency = _meta_currency(where, cells[1])
        for category, column, cell in zip(CATEGORIES, header[2:], cells[2:]):
            micros = _micros(where, column, cell)
            if micros is not None:
                rates.append(Rate(effective_from=day, market=market, category=category, currency=currency,
                                  tier_from=1, tier_to=None, rate_micros=micros, source=source, line=line,
                                  confidence=META_FILE_CONFIDENCE, path=path))
    if not rates:
        raise RateCardError(f"{path}:{header_line}: the rate card has no rates")
    return rates


def _volume(where: str, column: str, text: str, empty_ok: bool) -> int | None:
    value = text.strip()
    if empty_ok and value.lower() in ("", *_META_NO_RATE):
        return None
    if not _VOLUME.fullmatch(value):
        raise RateCardError(f"{where}: {column}: not a whole number of messages: {value!r}")
    return int(value.replace(",", ""))


def _meta_tiers(path: Path, records: list[tuple[int, list[str]]], index: int) -> list[Rate]:
    header_line, header_fields = records[index]
    header = [_header(field) for field in header_fields]
    while header and not header[-1]:
        header.pop()
    expected = ["Market", "Currency", *META_TIER_GROUP * len(META_TIER_CATEGORIES)]
    if [column.lower() for column in header] != [column.lower() for column in expected]:
        raise RateCardError(f"{path}:{header_line}: Meta's Tier Pricing.csv header must be Market,Currency and "
                            f"{len(META_TIER_CATEGORIES)} groups of {','.join(META_TIER_GROUP)}, got {','.join(header)}")
    _check_groups(path, records[:index])
    day = _effective_date(path, records[:index], header_line)
    source = f"Meta's rate card file {path.name}"
    width = len(META_TIER_GROUP)
    rates: list[Rate] = []
    market = currency = ""
    for line, fields in records[index + 1:]:
        where = f"{path}:{line}"
        cells = list(fields)
        if cells[0].strip() and not any(cell.strip() for cell in cells[1:]):
            continue   # a note below the table
        while len(cells) > len(header) and not cells[-1].strip():
            cells.pop()
        if len(cells) != len(header):
            raise RateCardError(f"{where}: expected {len(header)} fields, got {len(cells)}")
        if cells[0].strip():
            market, currency = _meta_market(where, cells[0]), ""
        elif not market:
            raise RateCardError(f"{where}: market: the first row names no market")
        if cells[1].strip():
            currency = _meta_currency(where, cells[1])
        elif not currency:
            raise RateCardError(f"{where}: currency: the first row of {market} names no currency")
        for group, category in enumerate(META_TIER_CATEGORIES):
            start = 2 + group * width
            low, high, kind, rate, _versus = (cell.strip() for cell in cells[start:start + width])
            if all(cell.lower() in ("", *_META_NO_RATE) for cell in (low, high, kind, rate)):
                continue   # no such band (or no such category) in this market
            column = f"{META_TIER_GROUP[3]} ({category})"
            if kind.lower() not in ("list", "tier"):
                raise RateCardError(f"{where}: {META_TIER_GROUP[2]} ({category}): must be List or Tier, got {kind!r}")
            tier_from = _volume(where, f"From ({category})", low, empty_ok=False)
            tier_to = _volume(where, f"To ({category})", high, empty_ok=True)
            micros = _micros(where, column, rate)
            if micros is None:
                raise RateCardError(f"{where}: {column}: a band needs a rate, got {rate!r}")
            assert tier_from is not None
            tier_from = max(tier_from, 1)   # Meta counts the first band from 0
            if tier_to is not None and tier_to < tier_from:
                raise RateCardError(f"{where}: To ({category}): {tier_to} is below From {tier_from}")
            rates.append(Rate(effective_from=day, market=market, category=category, currency=currency,
                              tier_from=tier_from, tier_to=tier_to, rate_micros=micros,
                              source=f"{source} ({kind.lower()} rate)", line=line,
                              confidence=META_FILE_CONFIDENCE, path=path))
    if not rates:
        raise RateCardError(f"{path}:{header_line}: the rate card has no rates")
    return rates


def _check_groups(path: Path, title: list[tuple[int, list[str]]]) -> None:
    """The row naming the groups, when there is one, names them in convo's order."""
    for line, fields in title:
        names = [_header(field).lower() for field in fields if field.strip()]
        if "utility" in names and any(name.startswith("auth") for name in names):
            wanted = ["utility", "authentication", "authentication-international"]
            named = [{"auth-intl": "authentication-international"}.get(name, name) for name in names]
            if named != wanted:
                raise RateCardError(f"{path}:{line}: Meta's Tier Pricing.csv groups must be Utility, Authentication, "
                                    f"Authentication-International side by side, got {', '.join(names)}")
            return


def _merge(rates: list[Rate], tiered: list[Rate]) -> list[Rate]:
    """Tier bands replace the same date's list rate of their key in a Pricing.csv;
    the first band's rate must equal it."""
    if not tiered:
        return rates
    bands: dict[tuple[date, str, str, str], list[Rate]] = {}
    for rate in tiered:
        bands.setdefault((rate.effective_from, *rate.key), []).append(rate)
    kept = []
    for rate in rates:
        group = bands.get((rate.effective_from, *rate.key))
        if group is None:
            kept.append(rate)
            continue
        first = min(group, key=lambda band: band.tier_from)
        if first.rate_micros != rate.rate_micros:
            raise RateCardError(f"{first.where}: {rate.market} {rate.category} {rate.currency} from "
                                f"{rate.effective_from}: the list rate {_units(first.rate_micros)} differs from "
                                f"{_units(rate.rate_micros)} on {rate.where}")
    return kept + tiered


def _units(micros: int) -> str:
    return f"{Decimal(micros) / 1_000_000:f}"


def _check_duplicates(rates: list[Rate]) -> None:
    """Two files may not both give the same key and date."""
    files: dict[tuple[date, str, str, str], Rate] = {}
    for rate in rates:
        first = files.setdefault((rate.effective_from, *rate.key), rate)
        if first.path != rate.path:
            raise RateCardError(f"{rate.where}: {rate.market} {rate.category} {rate.currency} from "
                                f"{rate.effective_from} is also given on {first.where}")


def _check_tiers(rates: list[Rate]) -> None:
    groups: dict[tuple[date, str, str, str], list[Rate]] = {}
    for rate in rates:
        groups.setdefault((rate.effective_from, *rate.key), []).append(rate)
    for (day, market, category, currency), tiers in groups.items():
        name = f"{market} {category} {currency} from {day}"
        tiers.sort(key=lambda rate: (rate.tier_from, rate.line))
        if tiers[0].tier_from != 1:
            raise RateCardError(f"{tiers[0].where}: tiers of {name} must start at 1, "
                                f"the first starts at {tiers[0].tier_from}")
        for earlier, later in zip(tiers, tiers[1:]):
            if earlier.tier_to is None or later.tier_from <= earlier.tier_to:
                first, second = sorted((earlier, later), key=lambda rate: rate.line)
                raise RateCardError(f"{second.where}: tiers overlap: {name}: tier {second.tier} "
                                    f"overlaps tier {first.tier} on line {first.line}")
            if later.tier_from > earlier.tier_to + 1:
                raise RateCardError(f"{later.where}: tiers leave a gap: {name}: units "
                                    f"{earlier.tier_to + 1} to {later.tier_from - 1} have no rate")
        if tiers[-1].tier_to is not None:
            raise RateCardError(f"{tiers[-1].where}: the last tier of {name} must be open-ended "
                                f"(empty tier_to), got {tiers[-1].tier}")


Requirement = Callable[[date, date | None], dict[str, set[str]]]


def check_coverage(card: RateCard, required: Requirement, market_since: dict[str, date]) -> None:
    """Every market the card names has every chargeable category in each currency.

    ``required(start, end)`` gives, per market, the rate categories that can be
    charged on some day of ``[start, end)`` (end None = open-ended);
    ``market_since[market]`` is the first day the market map uses the market. A
    market is checked from the later of the currency's first date and that day; a
    market the map does not use (yet) prices nothing and is not checked.
    """
    for currency in card.currencies():
        rates = [rate for rate in card.rates if rate.currency == currency]
        editions = sorted({rate.effective_from for rate in rates})
        first_row = {day: min((rate for rate in rates if rate.effective_from == day),
                              key=lambda rate: (str(rate.path), rate.line)) for day in editions}
        for market in sorted({rate.market for rate in rates}):
            if market not in market_since:
                continue
            own = [rate for rate in rates if rate.market == market]
            needed_from = max(editions[0], market_since[market])
            first = min(own, key=lambda rate: (rate.effective_from, str(rate.path), rate.line))
            if first.effective_from > needed_from:
                raise RateCardError(f"{first.where}: gap in dates: {market} has no {currency} rates "
                                    f"in force from {needed_from} (its first rates start {first.effective_from})")
            days = sorted({needed_from, *(day for day in editions if day > needed_from)})
            for index, day in enumerate(days):
                end = days[index + 1] if index + 1 < len(days) else None
                in_force = {rate.category for rate in own if rate.effective_from <= day}
                for category in sorted(required(day, end).get(market, set()) - in_force):
                    where = first_row.get(day, first).where
                    raise RateCardError(f"{where}: missing category: {market} has no {category} rate "
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
