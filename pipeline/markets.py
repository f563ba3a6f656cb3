"""Country and Meta pricing market of a contact (DOMAIN R22, R2).

Two reference tables, both loadable into DuckDB by :func:`register`:

* **calling prefixes** (``ref_calling_prefixes``), generated from the installed
  ``phonenumbers`` metadata, never typed by hand: digit prefixes of E.164
  numbers (without ``+``) such that the *longest* prefix a number starts with
  names its country. A bare calling code maps to its main region; longer rows
  only exist where another region shares the calling code (``+1 876`` Jamaica,
  ``+7 7`` Kazakhstan, ``+44 1481`` Guernsey, ...).
* **market map** (``ref_market_map``), the effective-dated country -> market
  table shipped as ``data/market_map.csv``; a row is in force for
  ``effective_from <= date < effective_to`` (open-ended when ``effective_to``
  is empty).
"""

from __future__ import annotations

import csv
import datetime
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.paths import data_dir

MARKET_MAP_FILE = "market_map.csv"
MARKET_MAP_COLUMNS = ("country_code", "market", "effective_from", "effective_to")
OTHER = "Other"
# DOMAIN R22: the standalone markets, North America, the regional groups and Other.
MARKETS = (
    "Argentina", "Brazil", "Chile", "Colombia", "Egypt", "France", "Germany", "India",
    "Indonesia", "Israel", "Italy", "Malaysia", "Mexico", "Netherlands", "Nigeria",
    "Pakistan", "Peru", "Russia", "Saudi Arabia", "South Africa", "Spain", "Turkey",
    "United Arab Emirates", "United Kingdom",
    "North America",
    "Rest of Africa", "Rest of Asia Pacific", "Rest of Central & Eastern Europe",
    "Rest of Western Europe", "Rest of Latin America", "Rest of Middle East",
    OTHER,
)
# ITU-T E.164: a number has at most 15 digits, calling code included.
E164_MAX_DIGITS = 15
# DOMAIN R2: ISO country, a dot, up to 128 alphanumerics.
BSUID_PATTERN = re.compile(r"([A-Z]{2})\.[A-Za-z0-9]{1,128}")
# phonenumbers' pseudo-region of non-geographic calling codes (+800, +882, ...).
NON_GEOGRAPHIC_REGION = "001"

CALLING_PREFIXES_SCHEMA = pa.schema([("prefix", pa.string()), ("country_code", pa.string())])
MARKET_MAP_SCHEMA = pa.schema([
    ("country_code", pa.string()),
    ("market", pa.string()),
    ("effective_from", pa.date32()),
    ("effective_to", pa.date32()),
])
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class MarketMapError(ValueError):
    """A market map file that cannot be used; the message names file and line."""


# --------------------------------------------------------------------------
# Country from a phone number or a bsuid
# --------------------------------------------------------------------------

def known_regions() -> frozenset[str]:
    """ISO 3166-1 alpha-2 codes of every geographic region phonenumbers knows."""
    return frozenset(phonenumbers.SUPPORTED_REGIONS)


@functools.cache
def calling_prefixes() -> pa.Table:
    """Digit prefix -> country; the longest prefix a number starts with wins.

    Built from ``phonenumbers.COUNTRY_CODE_TO_REGION_CODE`` and, where regions
    share a calling code, from each region's leading-digits or number patterns,
    resolved in phonenumbers' own order (see :func:`_shared_code_rows`).
    Sorted by prefix, so deterministic.
    """
    rows: dict[str, str] = {}
    for calling_code, regions in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items():
        geographic = [region for region in regions if region != NON_GEOGRAPHIC_REGION]
        if not geographic:
            continue
        prefix = str(calling_code)
        rows[prefix] = geographic[0]
        if len(geographic) > 1:
            rows.update(_shared_code_rows(prefix, geographic))
    ordered = sorted(rows.items())
    return pa.table(
        {"prefix": [prefix for prefix, _ in ordered], "country_code": [code for _, code in ordered]},
        schema=CALLING_PREFIXES_SCHEMA,
    )


@functools.cache
def _prefix_index() -> tuple[dict[str, str], tuple[int, ...]]:
    table = calling_prefixes()
    index = dict(zip(table["prefix"].to_pylist(), table["country_code"].to_pylist()))
    lengths = tuple(sorted({len(prefix) for prefix in index}, reverse=True))
    return index, lengths


def country_for_phone(phone: str) -> str | None:
    """ISO country of an E.164 number (``+`` optional) by the longest calling prefix.

    None when the text is not 1..15 ASCII digits after an optional ``+``, or when
    no prefix matches (calling codes starting with 0, unassigned codes).
    """
    digits = phone[1:] if phone.startswith("+") else phone
    if not (0 < len(digits) <= E164_MAX_DIGITS and digits.isascii() and digits.isdigit()):
        return None
    index, lengths = _prefix_index()
    for length in lengths:
        if length <= len(digits) and digits[:length] in index:
            return index[digits[:length]]
    return None


def country_for_bsuid(bsuid: str) -> str | None:
    """ISO country prefix of a business-scoped user ID (DOMAIN R2), else None."""
    match = BSUID_PATTERN.fullmatch(bsuid)
    if match is None or match.group(1) not in known_regions():
        return None
    return match.group(1)


# --------------------------------------------------------------------------
# Regions sharing a calling code: phonenumbers' patterns -> digit prefixes
# --------------------------------------------------------------------------
# phonenumbers gives a number of a shared calling code to the first region, in
# COUNTRY_CODE_TO_REGION_CODE order, whose leading-digits regex matches the start
# of the national number or, for a region without one, whose number patterns
# match it. We walk the national digits as a trie, depth-first: a prefix is
# settled once its first claimant owns it outright (leading digits fully
# matched) or nobody else can still claim numbers below it; otherwise it is
# split by the next digit, down to the longest leading-digits match.

_DIGITS = "0123456789"
_CLAIM_FULL = "full"        # every number with this prefix is the region's
_CLAIM_PARTIAL = "partial"  # some numbers with this prefix may be the region's


def _shared_code_rows(calling_code: str, regions: list[str]) -> dict[str, str]:
    claimants = [_Claimant.of(region) for region in regions]
    depth = max((c.leading.max_length() for c in claimants if c.leading), default=1)
    tree = _resolve(claimants, "", depth)
    rows: dict[str, str] = {}
    _emit(tree, calling_code, regions[0], rows)
    return rows


@dataclass(frozen=True)
class _Claimant:
    region: str
    leading: _Node | None                 # leading-digits regex, matched at the start
    general: _Node | None                 # general description, full match
    types: tuple[_Node, ...]              # number-type patterns, full match

    @staticmethod
    def of(region: str) -> _Claimant:
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
        descs = (
            metadata.premium_rate, metadata.toll_free, metadata.shared_cost, metadata.voip,
            metadata.personal_number, metadata.pager, metadata.uan, metadata.voicemail,
            metadata.fixed_line, metadata.mobile,
        )
        return _Claimant(
            region=region,
            leading=_parse(metadata.leading_digits) if metadata.leading_digits else None,
            general=_parse_desc(metadata.general_desc),
            types=tuple(node for node in map(_parse_desc, descs) if node is not None),
        )

    def claim(self, national_prefix: str) -> str | None:
        if self.leading is not None:
            ends = self.leading.consume({national_prefix})
            if any(end is not None for end in ends):
                return _CLAIM_FULL
            return _CLAIM_PARTIAL if None in ends else None
        if self.general is None or not _can_start(self.general, national_prefix):
            return None
        if any(_can_start(node, national_prefix) for node in self.types):
            return _CLAIM_PARTIAL
        return None


_Tree = str | None | dict[str, "_Tree"]   # a region, nobody, or a split by next digit


def _resolve(claimants: list[_Claimant], prefix: str, depth: int) -> _Tree:
    claims = [(c, kind) for c in claimants if (kind := c.claim(prefix)) is not None]
    if not claims:
        return None
    first, kind = claims[0]
    if kind == _CLAIM_FULL or len(claims) == 1 or len(prefix) >= depth:
        return first.region
    still = [c for c, _ in claims]
    children = {digit: _resolve(still, prefix + digit, depth) for digit in _DIGITS}
    if any(isinstance(child, dict) for child in children.values()):
        return children
    owners = {child for child in children.values() if child is not None}
    if len(owners) > 1:
        return children
    return owners.pop() if owners else None


def _emit(tree: _Tree, prefix: str, inherited: str, rows: dict[str, str]) -> None:
    if isinstance(tree, dict):
        for digit, child in tree.items():
            _emit(child, prefix + digit, inherited, rows)
    elif tree is not None and tree != inherited:
        rows[prefix] = tree


# A tiny regex engine for the subset phonenumbers' metadata uses: digits, \d,
# [..] classes with ranges, (?:..) and (..) groups, |, ?, {n} and {n,m}. It
# answers what `re` cannot: can a match start with these digits?

class _Node:
    def consume(self, states: set[str | None]) -> set[str | None]:
        """Feed each state (the digits still to match, or None once they ran out
        while the pattern wanted more) through this node; return the states after it."""
        raise NotImplementedError

    def max_length(self) -> int:
        raise NotImplementedError


@dataclass(frozen=True)
class _Chars(_Node):
    chars: frozenset[str]

    def consume(self, states: set[str | None]) -> set[str | None]:
        out: set[str | None] = set()
        for state in states:
            if not state:
                out.add(None)
            elif state[0] in self.chars:
                out.add(state[1:])
        return out

    def max_length(self) -> int:
        return 1


@dataclass(frozen=True)
class _Seq(_Node):
    items: tuple[_Node, ...]

    def consume(self, states: set[str | None]) -> set[str | None]:
        for item in self.items:
            if not states:
                break
            states = item.consume(states)
        return states

    def max_length(self) -> int:
        return sum(item.max_length() for item in self.items)


@dataclass(frozen=True)
class _Alt(_Node):
    options: tuple[_Node, ...]

    def consume(self, states: set[str | None]) -> set[str | None]:
        out: set[str | None] = set()
        for option in self.options:
            out |= option.consume(states)
        return out

    def max_length(self) -> int:
        return max(option.max_length() for option in self.options)


@dataclass(frozen=True)
class _Repeat(_Node):
    item: _Node
    low: int
    high: int

    def consume(self, states: set[str | None]) -> set[str | None]:
        out: set[str | None] = set()
        for count in range(self.high + 1):
            if count >= self.low:
                out |= states
            if count == self.high or not states:
                break
            states = self.item.consume(states)
        return out

    def max_length(self) -> int:
        return self.item.max_length() * self.high


def _can_start(node: _Node, digits: str) -> bool:
    """True when some full match of the pattern starts with ``digits``."""
    ends = node.consume({digits})
    return None in ends or "" in ends


def _parse_desc(desc: phonenumbers.PhoneNumberDesc | None) -> _Node | None:
    if desc is None or not desc.national_number_pattern:
        return None
    return _parse(desc.national_number_pattern)


@functools.cache
def _parse(pattern: str) -> _Node:
    parser = _Parser(pattern)
    node = parser.alternation()
    if parser.pos != len(pattern):
        raise ValueError(f"unsupported phonenumbers pattern {pattern!r} at {parser.pos}")
    return node


class _Parser:
    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.pos = 0

    def peek(self) -> str:
        return self.pattern[self.pos] if self.pos < len(self.pattern) else ""

    def take(self, text: str) -> bool:
        if self.pattern.startswith(text, self.pos):
            self.pos += len(text)
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.take(text):
            raise ValueError(f"unsupported phonenumbers pattern {self.pattern!r}: expected {text!r} at {self.pos}")

    def alternation(self) -> _Node:
        options = [self.sequence()]
        while self.take("|"):
            options.append(self.sequence())
        return options[0] if len(options) == 1 else _Alt(tuple(options))

    def sequence(self) -> _Node:
        items: list[_Node] = []
        while self.peek() not in ("", "|", ")"):
            items.append(self.quantified(self.atom()))
        return items[0] if len(items) == 1 else _Seq(tuple(items))

    def atom(self) -> _Node:
        if self.take("(?:") or self.take("("):
            node = self.alternation()
            self.expect(")")
            return node
        if self.take("\\d"):
            return _Chars(frozenset(_DIGITS))
        if self.take("["):
            return self.char_class()
        char = self.peek()
        if char in _DIGITS and char:
            self.pos += 1
            return _Chars(frozenset(char))
        raise ValueError(f"unsupported phonenumbers pattern {self.pattern!r} at {self.pos}")

    def char_class(self) -> _Node:
        chars: set[str] = set()
        while not self.take("]"):
            if self.take("\\d"):
                chars |= set(_DIGITS)
                continue
            low = self.peek()
            if low not in _DIGITS or not low:
                raise ValueError(f"unsupported phonenumbers pattern {self.pattern!r} at {self.pos}")
            self.pos += 1
            high = low
            if self.take("-"):
                high = self.peek()
                self.pos += 1
            chars |= {digit for digit in _DIGITS if low <= digit <= high}
        return _Chars(frozenset(chars))

    def quantified(self, node: _Node) -> _Node:
        if self.take("?"):
            return _Repeat(node, 0, 1)
        if self.take("{"):
            end = self.pattern.index("}", self.pos)
            low, _, high = self.pattern[self.pos:end].partition(",")
            self.pos = end + 1
            return _Repeat(node, int(low), int(high) if high else int(low))
        return node


# --------------------------------------------------------------------------
# The market map
# --------------------------------------------------------------------------

def default_market_map_path() -> Path:
    return data_dir() / MARKET_MAP_FILE


def load_market_map(path: Path | None = None) -> pa.Table:
    """Read and validate a market map CSV (default: the shipped one).

    Raises MarketMapError naming the file and line for: missing or extra
    columns, bad dates, effective_to <= effective_from, an unknown market or
    country code, and overlapping periods of one country.
    """
    if path is None:
        return _shipped_market_map()
    return _read_market_map(Path(path))


@functools.cache
def _shipped_market_map() -> pa.Table:
    return _read_market_map(default_market_map_path())


@dataclass(frozen=True)
class _MarketRow:
    line: int
    country_code: str
    market: str
    effective_from: datetime.date
    effective_to: datetime.date | None


def _read_market_map(path: Path) -> pa.Table:
    rows = list(_market_rows(path))
    _check_overlaps(path, rows)
    rows.sort(key=lambda row: (row.country_code, row.effective_from))
    return pa.table(
        {
            "country_code": [row.country_code for row in rows],
            "market": [row.market for row in rows],
            "effective_from": [row.effective_from for row in rows],
            "effective_to": [row.effective_to for row in rows],
        },
        schema=MARKET_MAP_SCHEMA,
    )


def _market_rows(path: Path) -> Iterator[_MarketRow]:
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as error:
        raise MarketMapError(f"{path}: cannot read the market map ({error.strerror})") from error
    with handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        _check_header(path, header)
        regions = known_regions()
        for record in reader:
            line = reader.line_num
            if not record:
                continue
            if len(record) != len(MARKET_MAP_COLUMNS):
                _fail(path, line, f"expected {len(MARKET_MAP_COLUMNS)} fields, found {len(record)}")
            country_code, market, start_text, end_text = (field.strip() for field in record)
            if country_code not in regions:
                _fail(path, line, f"unknown country code {country_code!r} (not an ISO region of phonenumbers)")
            if market not in MARKETS:
                _fail(path, line, f"unknown market {market!r}")
            start = _parse_date(path, line, "effective_from", start_text)
            end = _parse_date(path, line, "effective_to", end_text) if end_text else None
            if start is None:
                _fail(path, line, "effective_from is empty")
            if end is not None and end <= start:
                _fail(path, line, f"effective_to {end} is not after effective_from {start}")
            yield _MarketRow(line, country_code, market, start, end)


def _check_header(path: Path, header: list[str]) -> None:
    columns = [column.strip() for column in header]
    missing = [column for column in MARKET_MAP_COLUMNS if column not in columns]
    extra = [column for column in columns if column not in MARKET_MAP_COLUMNS]
    if missing:
        _fail(path, 1, f"missing column(s) {', '.join(missing)}")
    if extra:
        _fail(path, 1, f"unexpected column(s) {', '.join(extra)}")
    if tuple(columns) != MARKET_MAP_COLUMNS:
        _fail(path, 1, f"columns must be in the order {','.join(MARKET_MAP_COLUMNS)}")


def _parse_date(path: Path, line: int, column: str, text: str) -> datetime.date | None:
    if not text:
        return None
    if not _ISO_DATE.fullmatch(text):
        _fail(path, line, f"{column} {text!r} is not a date (YYYY-MM-DD)")
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        _fail(path, line, f"{column} {text!r} is not a date (YYYY-MM-DD)")


def _check_overlaps(path: Path, rows: list[_MarketRow]) -> None:
    by_country: dict[str, list[_MarketRow]] = {}
    for row in rows:
        by_country.setdefault(row.country_code, []).append(row)
    for country_rows in by_country.values():
        country_rows.sort(key=lambda row: row.effective_from)
        for earlier, later in zip(country_rows, country_rows[1:]):
            if earlier.effective_to is None or later.effective_from < earlier.effective_to:
                first, second = sorted((earlier, later), key=lambda row: row.line)
                _fail(
                    path, second.line,
                    f"period of {second.country_code} overlaps the one on line {first.line}",
                )


def _fail(path: Path, line: int, problem: str) -> None:
    raise MarketMapError(f"{path}:{line}: {problem}")


def market_for(country_code: str, on: datetime.date, table: pa.Table | None = None) -> str:
    """The market of a country on a date; "Other" when the map has no row for it."""
    table = load_market_map() if table is None else table
    in_force = pc.and_(
        pc.and_(
            pc.equal(table["country_code"], country_code),
            pc.less_equal(table["effective_from"], pa.scalar(on, pa.date32())),
        ),
        pc.or_kleene(
            pc.is_null(table["effective_to"]),
            pc.greater(table["effective_to"], pa.scalar(on, pa.date32())),
        ),
    )
    markets = table.filter(in_force)["market"].to_pylist()
    return markets[0] if markets else OTHER


# --------------------------------------------------------------------------
# DuckDB
# --------------------------------------------------------------------------

def register(con: duckdb.DuckDBPyConnection, market_map_path: Path | None = None) -> None:
    """Create or replace ``ref_calling_prefixes`` and ``ref_market_map`` in ``con``.

    Longest-prefix match in SQL: join ``left(digits, prefix_length) = prefix``
    for each distinct ``prefix_length`` and keep the longest match.
    """
    prefixes = calling_prefixes()
    market_map = load_market_map(market_map_path)
    _replace_table(con, "ref_calling_prefixes", prefixes, """
        select
            prefix::varchar as prefix,
            length(prefix)::integer as prefix_length,
            country_code::varchar as country_code
        from source
        order by prefix
    """)
    _replace_table(con, "ref_market_map", market_map, """
        select
            country_code::varchar as country_code,
            market::varchar as market,
            effective_from::date as effective_from,
            effective_to::date as effective_to
        from source
        order by country_code, effective_from
    """)


def _replace_table(con: duckdb.DuckDBPyConnection, name: str, data: pa.Table, select: str) -> None:
    view = f"_markets_source_{name}"
    con.register(view, data)
    try:
        con.execute(f"create or replace table {name} as {select.replace('from source', f'from {view} as source')}")
    finally:
        con.unregister(view)
