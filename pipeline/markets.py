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
  is empty). Two optional trailing columns say how sure the row is:
  ``confidence`` (``high`` / ``medium`` / ``low``) and ``source``.
"""

from __future__ import annotations

import datetime
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import refdata
from pipeline.errors import ConvoError
from pipeline.paths import data_dir

MARKET_MAP_FILE = "market_map.csv"
MARKET_MAP_COLUMNS = ("country_code", "market", "effective_from", "effective_to")
MARKET_MAP_OPTIONAL_COLUMNS = ("confidence", "source")
CONFIDENCE_LEVELS = ("high", "medium", "low")
OTHER = "Other"
# DOMAIN R22: the standalone markets, North America, the regional groups and Other.
MARKETS = (
    "Argentina", "Brazil", "Chile", "Colombia", "Egypt", "France", "Germany", "India",
    "Indonesia", "Israel", "Italy", "Malaysia", "Mexico", "Netherlands", "Nigeria",
    "Pakistan", "Peru", "Russia", "Saudi Arabia", "South Africa", "Spain", "Turkey",
    "United Arab Emirates", "United Kingdom",
    # standalone from 2026-07-01 and from 2026-10-01 (data/market_map.csv has the dates)
    "Hong Kong", "Hungary", "Poland", "Qatar", "Romania", "Singapore",
    "Bangladesh", "Iraq", "Kazakhstan", "Kuwait", "Morocco", "Nepal", "Oman", "Sri Lanka", "Ukraine",
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
    ("confidence", pa.string()),
    ("source", pa.string()),
])


class MarketMapError(ConvoError, ValueError):
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
# split by the next digit.
#
# Why an automaton of our own (~150 lines with its regex parser) rather than less code:
# the table must follow phonenumbers' patterns exactly, so it cannot be typed by hand,
# and the alternatives measured on 2026-12-06 were too slow for a table built on every
# import: the `regex` package's partial matching gives the same 365 rows in ~60 lines
# but takes ~10 s (about 115,000 trie nodes for +44 and +61, each a fresh partial match
# of every region's patterns, with nothing to share between them) against 0.67 s here,
# where each node advances the regions' automaton states by one digit. Leading digits
# alone (phonenumbers' first test) would be smaller still but wrong: regions without
# them (Canada in +1) are told apart only by their number patterns.

_DIGITS = "0123456789"
# Six national digits separate every pair of regions phonenumbers tells apart
# (the deepest: +61 8 51001 Christmas Island vs Australia; a seventh adds no
# row); below that, numbers several regions' patterns accept go to the first,
# as in phonenumbers. tests/test_markets.py checks every region's example number.
_MAX_NATIONAL_PREFIX = 6


def _shared_code_rows(calling_code: str, regions: list[str]) -> dict[str, str]:
    claimants = [_Claimant.of(region) for region in regions]
    tree = _resolve([(claimant, claimant.start()) for claimant in claimants], 0, {})
    rows: dict[str, str] = {}
    _emit(tree, calling_code, regions[0], rows)
    return rows


_Tree = str | None | dict[str, "_Tree"]   # a region, nobody, or a split by next digit
_Cursor = tuple[bool, tuple[frozenset[int], ...]]   # (leading digits matched, automaton states)


def _resolve(live: list[tuple[_Claimant, _Cursor]], depth: int, seen: dict) -> _Tree:
    """Who gets the numbers below a national prefix of ``depth`` digits; ``live``
    are the regions, in phonenumbers' order, that can still claim some of them.

    The answer depends only on the claimants' automaton states and the depth,
    so ``seen`` memoizes it (\\d{n} tails make most subtrees identical).
    """
    if not live:
        return None
    first, cursor = live[0]
    if cursor[0] or len(live) == 1 or depth >= _MAX_NATIONAL_PREFIX:
        return first.region
    key = (tuple((claimant.region, cursor) for claimant, cursor in live), depth)
    if key not in seen:
        seen[key] = _split(live, depth, seen)
    return seen[key]


def _split(live: list[tuple[_Claimant, _Cursor]], depth: int, seen: dict) -> _Tree:
    children: dict[str, _Tree] = {}
    for digit in _DIGITS:
        advanced = ((claimant, claimant.advance(cursor, digit)) for claimant, cursor in live)
        children[digit] = _resolve([(c, cur) for c, cur in advanced if cur is not None], depth + 1, seen)
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


@dataclass(frozen=True)
class _Claimant:
    """A region of a shared calling code, as phonenumbers decides membership:
    by its leading-digits regex if it has one, else by its number patterns."""

    region: str
    leading: _Automaton | None       # matched at the start of the national number
    patterns: tuple[_Automaton, ...]  # general description, then each number type

    @staticmethod
    def of(region: str) -> _Claimant:
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
        if metadata.leading_digits:
            return _Claimant(region, _Automaton.of(metadata.leading_digits), ())
        descs = (
            metadata.general_desc, metadata.premium_rate, metadata.toll_free,
            metadata.shared_cost, metadata.voip, metadata.personal_number, metadata.pager,
            metadata.uan, metadata.voicemail, metadata.fixed_line, metadata.mobile,
        )
        patterns = [desc.national_number_pattern for desc in descs if desc is not None]
        return _Claimant(region, None, tuple(_Automaton.of(pattern) for pattern in patterns if pattern))

    def start(self) -> _Cursor:
        if self.leading is not None:
            return (False, (self.leading.initial,))
        return (False, tuple(automaton.initial for automaton in self.patterns))

    def advance(self, cursor: _Cursor, digit: str) -> _Cursor | None:
        """The cursor after one more digit; None when the region can claim no
        number with that prefix any more."""
        matched, states = cursor
        if matched:
            return cursor
        if self.leading is not None:
            after = self.leading.step(states[0], digit)
            return (self.leading.accepts(after), (after,)) if after else None
        general, *types = (automaton.step(s, digit) for automaton, s in zip(self.patterns, states))
        if not general or not any(types):
            return None
        return (False, (general, *types))


class _Automaton:
    """A Thompson NFA over digits for one phonenumbers pattern.

    phonenumbers' metadata uses a small regex subset: digits, \\d, [..] classes
    with ranges, (?:..) and (..) groups, |, ? and {n} / {n,m}. `re` cannot say
    whether any match starts with some digits; stepping this automaton digit by
    digit can (a non-empty state set).
    """

    def __init__(self, node: _Node) -> None:
        # State i reads one digit of chars[i] and goes to targets[i][0], or, when
        # chars[i] is None, moves to any of targets[i] without reading (the
        # accepting state has no targets).
        self.chars: list[frozenset[str] | None] = []
        self.targets: list[tuple[int, ...]] = []
        self.accept = self._add(None, ())
        self.initial = self._closure((self._compile(node, self.accept),))

    @staticmethod
    @functools.cache
    def of(pattern: str) -> _Automaton:
        return _Automaton(_parse(pattern))

    def step(self, states: frozenset[int], digit: str) -> frozenset[int]:
        chars = self.chars
        return self._closure(
            self.targets[state][0] for state in states
            if (reads := chars[state]) is not None and digit in reads
        )

    def accepts(self, states: frozenset[int]) -> bool:
        return self.accept in states

    def _add(self, chars: frozenset[str] | None, targets: tuple[int, ...]) -> int:
        self.chars.append(chars)
        self.targets.append(targets)
        return len(self.chars) - 1

    def _compile(self, node: _Node, following: int) -> int:
        """Add the states of ``node``, continuing at ``following``; return its entry."""
        if isinstance(node, _Chars):
            return self._add(node.chars, (following,))
        if isinstance(node, _Seq):
            for item in reversed(node.items):
                following = self._compile(item, following)
            return following
        if isinstance(node, _Alt):
            return self._add(None, tuple(self._compile(option, following) for option in node.options))
        current = following
        for _ in range(node.high - node.low):   # optional copies: x{0,2} = (x(x)?)?
            current = self._add(None, (self._compile(node.item, current), following))
        for _ in range(node.low):
            current = self._compile(node.item, current)
        return current

    def _closure(self, starts: Iterable[int]) -> frozenset[int]:
        """The reading and accepting states reachable without reading a digit."""
        seen: set[int] = set()
        result: set[int] = set()
        pending = list(starts)
        while pending:
            state = pending.pop()
            if state in seen:
                continue
            seen.add(state)
            if self.chars[state] is not None or state == self.accept:
                result.add(state)
            else:
                pending.extend(self.targets[state])
        return frozenset(result)


@dataclass(frozen=True)
class _Chars:
    chars: frozenset[str]


@dataclass(frozen=True)
class _Seq:
    items: tuple[_Node, ...]


@dataclass(frozen=True)
class _Alt:
    options: tuple[_Node, ...]


@dataclass(frozen=True)
class _Repeat:
    item: _Node
    low: int
    high: int


_Node = _Chars | _Seq | _Alt | _Repeat


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

    Raises MarketMapError naming the file and line for: columns other than
    country_code,market,effective_from,effective_to[,confidence[,source]], bad dates,
    effective_to <= effective_from, an unknown market or country code, and
    overlapping periods of one country (pipeline/refdata.py words them).
    """
    if path is None:
        return _shipped_market_map()
    return _read_market_map(Path(path))


@functools.cache
def _shipped_market_map() -> pa.Table:
    return _read_market_map(default_market_map_path())


@dataclass(frozen=True)
class _MarketRow(refdata.Dated):
    line: int
    country_code: str
    market: str
    effective_from: datetime.date
    effective_to: datetime.date | None
    confidence: str | None = None
    source: str | None = None


def _read_market_map(path: Path) -> pa.Table:
    header, records = refdata.read_csv(path, MARKET_MAP_COLUMNS, MarketMapError, optional=MARKET_MAP_OPTIONAL_COLUMNS)
    rows = [_market_row(path, line, fields) for line, fields in records]
    refdata.check_overlaps(path, rows, lambda row: row.country_code, MarketMapError)
    rows.sort(key=lambda row: (row.country_code, row.effective_from))
    return pa.table(
        {
            "country_code": [row.country_code for row in rows],
            "market": [row.market for row in rows],
            "effective_from": [row.effective_from for row in rows],
            "effective_to": [row.effective_to for row in rows],
            "confidence": [row.confidence for row in rows],
            "source": [row.source for row in rows],
        },
        schema=MARKET_MAP_SCHEMA,
    )


def _market_row(path: Path, line: int, fields: list[str]) -> _MarketRow:
    where = f"{path}:{line}"
    country_code, market, start, end, *extra = fields
    confidence, source = (extra + ["", ""])[:2]
    if confidence and confidence not in CONFIDENCE_LEVELS:
        raise MarketMapError(f"{where}: confidence: must be empty or one of {', '.join(CONFIDENCE_LEVELS)}, "
                             f"got {confidence!r}")
    if country_code not in known_regions():
        raise MarketMapError(f"{where}: country_code: unknown country code {country_code!r} "
                             "(not an ISO region of phonenumbers)")
    if market not in MARKETS:
        raise MarketMapError(f"{where}: market: unknown market {market!r}")
    effective_from, effective_to = refdata.period(where, start, end, MarketMapError)
    return _MarketRow(line, country_code, market, effective_from, effective_to, confidence or None, source or None)


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

    ``ref_calling_prefixes(prefix varchar, prefix_length integer, country_code
    varchar)``: a phone's country is the row with the longest ``prefix`` that
    its digits (E.164 without ``+``, 1..15 digits) start with, found by an
    equi-join on ``left(digits, prefix_length) = prefix`` per distinct
    ``prefix_length``. ``ref_market_map(country_code varchar, market varchar,
    effective_from date, effective_to date, confidence varchar, source varchar)``: in force for ``effective_from
    <= day < effective_to`` (null ``effective_to``: open-ended).
    """
    prefixes = calling_prefixes()
    prefixes = prefixes.append_column(
        "prefix_length", pc.cast(pc.utf8_length(prefixes["prefix"]), pa.int32()),
    ).select(["prefix", "prefix_length", "country_code"])
    refdata.replace_table(con, "ref_calling_prefixes", prefixes)
    refdata.replace_table(con, "ref_market_map", load_market_map(market_map_path))
