"""The warehouse's alerts (sql/marts/alerts.sql): read, filter, and tell the new ones.

`convo alerts` lists them; `convo nightly --fail-on SEVERITY` compares the alerts of the
new warehouse with those of the one it replaced (by alert_key) and fails the run when a
new one is at least that severe.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import duckdb

from pipeline.errors import ConvoError

SEVERITIES = ("info", "warning", "critical")   # severity_level 1, 2, 3
COLUMNS = ("alert_key", "kind", "severity", "severity_level", "local_date", "tenant_id", "phone_number_id",
           "market", "country_code", "category", "template_name", "measure", "observed_value", "expected_value",
           "currency", "rule")


class AlertsError(ConvoError, RuntimeError):
    """The alerts cannot be read (no warehouse, or one built before alerts existed)."""


@dataclass(frozen=True)
class Alert:
    alert_key: str
    kind: str
    severity: str
    severity_level: int
    local_date: date
    tenant_id: int | None
    phone_number_id: int | None
    market: str | None
    country_code: str | None
    category: str | None
    template_name: str | None
    measure: str
    observed_value: float | None
    expected_value: float | None
    currency: str | None
    rule: str

    @property
    def scope(self) -> str:
        parts = [
            f"tenant {self.tenant_id}" if self.tenant_id is not None else None,
            f"number {self.phone_number_id}" if self.phone_number_id is not None else None,
            f"market {self.market}" if self.market else None,
            f"country {self.country_code}" if self.country_code else None,
            f"category {self.category}" if self.category else None,
            f"template {self.template_name}" if self.template_name else None,
        ]
        return ", ".join(part for part in parts if part) or "all input"

    def line(self) -> str:
        return f"{self.local_date} {self.severity:<8} {self.kind:<20} {self.scope}: {self.rule}"

    def as_json(self) -> dict[str, object]:
        found = asdict(self)
        found["local_date"] = self.local_date.isoformat()
        return found


def read(warehouse: Path, since: date | None = None) -> list[Alert]:
    """Every alert of the warehouse (from `since` on), by day, most severe first."""
    if not warehouse.is_file():
        raise AlertsError(f"no warehouse at {warehouse}: run `convo build` first")
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return _read(con, since)
    finally:
        con.close()


def _read(con: duckdb.DuckDBPyConnection, since: date | None) -> list[Alert]:
    tables = {row[0] for row in con.execute("select table_name from duckdb_tables()").fetchall()}
    if "alerts" not in tables:
        raise AlertsError("the warehouse has no alerts table (built by an older convo): run `convo build`")
    rows = con.execute(
        f"select {', '.join(COLUMNS)} from alerts where ?::date is null or local_date >= ?::date "
        "order by local_date, severity_level desc, kind, alert_key", [since, since]).fetchall()
    return [Alert(*row) for row in rows]


def keys(warehouse: Path) -> set[str] | None:
    """The alert keys of a warehouse; None when there is none, or it has no alerts table."""
    try:
        return {alert.alert_key for alert in read(warehouse)}
    except (AlertsError, duckdb.Error):
        return None


def at_least(alerts: list[Alert], severity: str) -> list[Alert]:
    level = SEVERITIES.index(severity) + 1
    return [alert for alert in alerts if alert.severity_level >= level]
