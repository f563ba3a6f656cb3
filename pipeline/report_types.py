"""What a report page is, and the small formatters the pages share.

pipeline/report.py renders and publishes the reports; pipeline/pages/ holds one
module per report (its queries and figures). Both need the types below, so they
live here, beside neither: report.py imports pages, pages import this module,
and nothing imports report.py back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb

MASK = "•"

# What a page's build returns: the names its template reads (figures, rows, chart geometry).
Figures = dict[str, Any]


@dataclass(frozen=True)
class ReportContext:
    con: duckdb.DuckDBPyConnection
    show_phones: bool
    month: str | None            # YYYY-MM, or None for the newest month in the data

    def mask(self, value: str | None) -> str:
        return (value or "") if self.show_phones else mask_contact(value)


@dataclass(frozen=True)
class Report:
    name: str                    # file stem
    title: str
    template: str
    build: Callable[[ReportContext], Figures]
    summary: Callable[[Figures], str]
    needs: tuple[str, ...] = ()  # warehouse tables it reads


def mask_contact(value: str | None) -> str:
    """+5511987654321 -> +551•••••••321; BR.a1b2c3d4 -> BR.a1••••••. Masks PII in reports."""
    if not value:
        return ""
    if "." in value and not value.startswith("+"):
        prefix, _, rest = value.partition(".")
        return f"{prefix}.{rest[:2]}{MASK * max(len(rest) - 2, 3)}"
    keep_head = 4 if value.startswith("+") else 3
    if len(value) <= keep_head + 3:
        return MASK * len(value)
    return value[:keep_head] + MASK * (len(value) - keep_head - 3) + value[-3:]


def number(value: float | int | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def bar_rows(rows: list[tuple[str, float]], fmt: Callable[[float], str] = number) -> list[tuple[str, float, str]]:
    return [(label, value, fmt(value)) for label, value in rows]
