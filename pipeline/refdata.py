"""Effective-dated reference data: the CSV files of data/ and the user's copies of them.

The policy (data/policy.csv, data/pricing_policy.csv), the pricing rules
(data/pricing_rules.csv, data/auth_international.csv), the rate cards
(pipeline/rates.py) and the market map (data/market_map.csv) are all rows that
hold from ``effective_from`` (inclusive) to ``effective_to`` (exclusive; empty:
open-ended). This module is what they share, so each loader keeps only what is
its own (its columns, its values, its cross-row rules):

* :func:`read_csv`: the file read as UTF-8, the header checked, blank lines
  skipped, each record with the physical line it starts on;
* :func:`parse_date` and :func:`period`: ``YYYY-MM-DD`` dates and a row's period;
* :class:`Dated` (``in_force``, ``overlaps``) and :func:`check_overlaps`;
* :func:`replace_table`: an Arrow table -> a DuckDB table (the build's reference
  tables and phone numbers, ingest's batches of records).

Every problem is one line naming the file and the line (``data/policy.csv:4:
value: ...``), raised as the loader's own error class (a ConvoError), so the
command line shows it as it is.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

from pipeline.errors import ConvoError

ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

Record = tuple[int, list[str]]     # (the physical line a record starts on, its fields)


class Dated:
    """A row in force from ``effective_from`` (inclusive) to ``effective_to`` (exclusive, None: open-ended)."""

    effective_from: date
    effective_to: date | None
    line: int

    def in_force(self, day: date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day < self.effective_to)

    def overlaps(self, start: date, end: date | None) -> bool:
        """Is the row in force on some day of [start, end)?"""
        return (end is None or self.effective_from < end) and (self.effective_to is None or start < self.effective_to)


def read_text(source: Path, error: type[ConvoError], missing: str = "file not found", encoding: str = "utf-8") -> str:
    try:
        return source.read_text(encoding=encoding)
    except FileNotFoundError:
        raise error(f"{source}: {missing}") from None
    except IsADirectoryError:
        raise error(f"{source}: a folder, not a file") from None
    except UnicodeDecodeError:
        raise error(f"{source}: not UTF-8 text") from None


def records(text: str, comments: bool = False) -> Iterator[Record]:
    """CSV records with the line each starts on (a quoted field may span lines); blank
    records left out, and ``#`` comment lines when ``comments``."""
    reader = csv.reader(io.StringIO(text))
    start = 1
    for fields in reader:
        line, start = start, reader.line_num + 1
        if not any(field.strip() for field in fields):
            continue
        if comments and fields[0].lstrip().startswith("#"):
            continue
        yield line, fields


def read_csv(source: Path, columns: tuple[str, ...], error: type[ConvoError],
             optional: tuple[str, ...] = ()) -> tuple[tuple[str, ...], list[Record]]:
    """The header and the records of a reference CSV, fields stripped.

    The header is ``columns``, then optionally the first, the first two, ... of
    ``optional`` (trailing columns a file may leave out); every record has as many
    fields as the header.
    """
    rows = records(read_text(source, error))
    header_line, header = next(rows, (1, []))
    names = tuple(column.strip() for column in header)
    allowed = [columns + optional[:count] for count in range(len(optional) + 1)]
    if names not in allowed:
        shown = ",".join(columns) + "".join(f"[,{column}" for column in optional) + "]" * len(optional)
        raise error(f"{source}:{header_line}: the columns must be {shown}, got {','.join(names)}")
    result = []
    for line, fields in rows:
        if len(fields) != len(names):
            raise error(f"{source}:{line}: expected {len(names)} fields ({','.join(names)}), got {len(fields)}")
        result.append((line, [field.strip() for field in fields]))
    return names, result


def parse_date(where: str, column: str, text: str, error: type[ConvoError], required: bool = False) -> date | None:
    """A ``YYYY-MM-DD`` cell; None when empty (an error when ``required``)."""
    if not text:
        if required:
            raise error(f"{where}: {column}: required (YYYY-MM-DD)")
        return None
    try:
        if not ISO_DATE.fullmatch(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise error(f"{where}: {column}: not a date YYYY-MM-DD: {text!r}") from None


def period(where: str, start: str, end: str, error: type[ConvoError]) -> tuple[date, date | None]:
    """A row's (effective_from, effective_to): the first required, the second after it or empty."""
    effective_from = parse_date(where, "effective_from", start, error, required=True)
    assert effective_from is not None
    effective_to = parse_date(where, "effective_to", end, error)
    if effective_to is not None and effective_to <= effective_from:
        raise error(f"{where}: effective_to: {effective_to} is not after effective_from {effective_from}")
    return effective_from, effective_to


def check_overlaps(source: Path, rows: Iterable[Dated], key: Callable[[Dated], Hashable],
                   error: type[ConvoError]) -> None:
    """No two rows of one key are in force on the same day: the later line is named."""
    by_key: dict[Hashable, list[Dated]] = {}
    for row in rows:
        by_key.setdefault(key(row), []).append(row)
    for name, periods in by_key.items():
        periods.sort(key=lambda row: row.effective_from)
        for earlier, later in zip(periods, periods[1:]):
            if earlier.effective_to is None or later.effective_from < earlier.effective_to:
                first, second = sorted((earlier, later), key=lambda row: row.line)
                raise error(f"{source}:{second.line}: {name}: its period overlaps the row on line {first.line}")


def rows_in_force(rows: Iterable[Dated], day: date) -> list[Dated]:
    return [row for row in rows if row.in_force(day)]


def replace_table(con: duckdb.DuckDBPyConnection, name: str, data: pa.Table | pa.RecordBatch,
                  columns: str = "*", parameters: Sequence[object] = (), temporary: bool = False) -> None:
    """Create or replace the table ``name`` of ``con`` with the rows of an Arrow table.

    ``columns`` is the select list over the Arrow table's columns (``?`` in it bound to
    ``parameters``); ``temporary`` makes a temporary table. The Arrow data is visible to
    DuckDB under a view of its own for this one statement only.
    """
    view = f"_{name}_arrow"
    kind = "temp table" if temporary else "table"
    con.register(view, data)
    try:
        con.execute(f"create or replace {kind} {name} as select {columns} from {view}", list(parameters))
    finally:
        con.unregister(view)
