"""Policy data: the limits of DOMAIN that are rules of Meta or of the platform, not code.

``data/policy.csv`` holds one row per key and period::

    key,value,unit,effective_from,effective_to,domain_rule,note

* ``key``: a snake_case name; it is also the name of the DuckDB variable that
  holds the value in force during a build (``getvariable('customer_service_window_hours')``);
* ``value``: a number (an integer stays an integer);
* ``unit``: what the number counts (``hours``, ``minutes``, ``messages``, ...), and
  the key's name ends in it when it is a duration, so SQL reads unambiguously;
* ``effective_from`` (inclusive) / ``effective_to`` (exclusive, empty = open-ended):
  ``YYYY-MM-DD``; the periods of one key must not overlap;
* ``domain_rule``: the rule of docs/RULES.md the value comes from (``R4``); ``note``: why.

SQL never writes these numbers: a build calls :func:`apply`, which loads every row
into the table ``ref_policy`` (for rules that must switch at a date inside the
data: join on the date) and sets one variable per key with the value in force on
the build's as-of date (UTC). Keys the windows and lifecycle models read
(:data:`REQUIRED`) must be in force then, and the keys they apply to every day of the
history at once (:data:`ONE_VALUE`) have one row only (billing reads its durations per
day, from ``data/pricing_policy.csv`` through int_bill_calendar).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa

from pipeline import refdata
from pipeline.errors import BuildError, ConvoError
from pipeline.paths import data_dir

POLICY_FILE = "policy.csv"
COLUMNS = ("key", "value", "unit", "effective_from", "effective_to", "domain_rule", "note")
# Read by sql/ (the customer service window, DOMAIN R4; the platform's timeout, R8).
REQUIRED = ("customer_service_window_hours", "platform_conversation_timeout_hours")
# Read by the per-thread models as ONE value for every day of the history (the windows,
# the lifecycle and the outcomes are cut with it across days): a second period would be
# applied to all history at once, so such a key has exactly one row.
ONE_VALUE = ("customer_service_window_hours", "platform_conversation_timeout_hours", "automated_reply_max_seconds")
# Variables the build sets from elsewhere (pipeline/build.py, convo.toml): a policy key may not take them.
RESERVED = ("as_of", "inactive_after_minutes")

_KEY = re.compile(r"[a-z][a-z0-9_]*")
_UNIT = re.compile(r"[a-z][a-z_]*")
_INTEGER = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")

POLICY_SCHEMA = pa.schema([
    ("key", pa.string()),
    ("value", pa.float64()),
    ("unit", pa.string()),
    ("effective_from", pa.date32()),
    ("effective_to", pa.date32()),
    ("domain_rule", pa.string()),
    ("note", pa.string()),
])


class PolicyError(ConvoError, ValueError):
    """A policy file that cannot be used; the message names file and line."""


@dataclass(frozen=True)
class PolicyRow(refdata.Dated):
    key: str
    value: int | float
    unit: str
    effective_from: date
    effective_to: date | None
    domain_rule: str
    note: str
    line: int


def default_path() -> Path:
    return data_dir() / POLICY_FILE


def load(path: Path | None = None) -> tuple[PolicyRow, ...]:
    """Read and validate a policy file (default: the shipped data/policy.csv)."""
    source = path or default_path()
    _header, records = refdata.read_csv(source, COLUMNS, PolicyError)
    rows = tuple(_row(source, line, fields) for line, fields in records)
    refdata.check_overlaps(source, rows, lambda row: row.key, PolicyError)
    _one_value(source, rows)
    return rows


def in_force(rows: tuple[PolicyRow, ...], day: date) -> dict[str, int | float]:
    """key -> value of every key with a row in force on `day`."""
    return {row.key: row.value for row in rows if row.in_force(day)}


def apply(con: duckdb.DuckDBPyConnection, as_of: datetime | None, path: Path | None = None) -> dict[str, int | float]:
    """Load ``ref_policy`` and set a DuckDB variable per key in force on as_of's UTC date.

    Without an as-of (an empty lake) the values in force today are set. A policy
    problem is a one-line BuildError naming the file and line.
    """
    try:
        rows = load(path)
        day = (as_of or datetime.now(timezone.utc)).astimezone(timezone.utc).date()
        values = in_force(rows, day)
        missing = [key for key in REQUIRED if key not in values]
        if missing:
            raise PolicyError(f"{path or default_path()}: no row in force on {day} for {', '.join(missing)}")
    except PolicyError as exc:
        raise BuildError(str(exc)) from None
    refdata.replace_table(con, "ref_policy", table(rows))
    for key, value in sorted(values.items()):
        kind = "bigint" if isinstance(value, int) else "double"
        con.execute(f"set variable {key} = ?::{kind}", [value])
    return values


def _row(source: Path, line: int, fields: list[str]) -> PolicyRow:
    where = f"{source}:{line}"
    key, value, unit, start, end, rule, note = fields
    if not _KEY.fullmatch(key):
        raise PolicyError(f"{where}: key: must be snake_case like customer_service_window_hours, got {key!r}")
    if key in RESERVED:
        raise PolicyError(f"{where}: key: {key} is set by the build itself, choose another name")
    if not _NUMBER.fullmatch(value):
        raise PolicyError(f"{where}: value: must be a number, got {value!r}")
    if not _UNIT.fullmatch(unit):
        raise PolicyError(f"{where}: unit: must be a lowercase word like hours, got {unit!r}")
    effective_from, effective_to = refdata.period(where, start, end, PolicyError)
    number: int | float = int(value) if _INTEGER.fullmatch(value) else float(value)
    return PolicyRow(key=key, value=number, unit=unit, effective_from=effective_from,
                     effective_to=effective_to, domain_rule=rule, note=note, line=line)


def _one_value(source: Path, rows: tuple[PolicyRow, ...]) -> None:
    seen: dict[str, PolicyRow] = {}
    for row in rows:
        if row.key in ONE_VALUE and row.key in seen:
            raise PolicyError(f"{source}:{row.line}: {row.key}: one row only (line {seen[row.key].line} has it): "
                              "windows and conversations are cut with one value for every day, so a value by "
                              "date would rewrite all history")
        seen.setdefault(row.key, row)


def table(rows: tuple[PolicyRow, ...]) -> pa.Table:
    """The rows as ``ref_policy`` holds them (also ``ref_pricing_policy``: same shape)."""
    return pa.table({
        "key": [row.key for row in rows],
        "value": [float(row.value) for row in rows],
        "unit": [row.unit for row in rows],
        "effective_from": [row.effective_from for row in rows],
        "effective_to": [row.effective_to for row in rows],
        "domain_rule": [row.domain_rule or None for row in rows],
        "note": [row.note or None for row in rows],
    }, schema=POLICY_SCHEMA)
