"""The HTML reports, one module each: the queries and figures its template shows.

Each module defines REPORT (a pipeline.report_types.Report); the index lists them in
the order below. A report whose tables are missing from the warehouse is skipped.
"""

from __future__ import annotations

from pipeline.pages import alerts, money, outcomes, overview
from pipeline.report_types import Report

REPORTS: list[Report] = [
    overview.REPORT,
    money.COSTS,
    outcomes.REPORT,
    money.WASTED,
    money.RECONCILIATION,
    alerts.REPORT,
]
