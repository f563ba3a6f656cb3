"""The money reports (monthly cost with change and forecast, wasted spend,
reconciliation) show the warehouse's figures, in Chromium too."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from pipeline.build import build
from pipeline.config import Settings, load
from pipeline.ingest import ingest
from pipeline.report import render
from pipeline.simulate import SimulateSettings, simulate
from tests.browser import dom, screenshot
from tests.helpers import parse


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    out = tmp_path_factory.mktemp("money")
    # 2026-09-01 .. 2026-10-15: September complete, October running.
    summary = simulate(SimulateSettings(out=out, contacts=120, days=45, start=date(2026, 9, 1)))
    settings = load(summary.config_path)
    ingest(settings.lake, [out / "exports"])
    build(settings)
    render(settings)
    return settings


def test_costs_page_shows_the_bill_change_and_forecast(settings: Settings) -> None:
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    october, september = (con.execute(
        "select coalesce(sum(cost_micros), 0) from costs_monthly where billing_month = ?", [month]).fetchall()[0][0]
        for month in (date(2026, 10, 1), date(2026, 10, 1).replace(month=9)))
    last_day = con.execute("select max(billing_date) from costs_daily").fetchall()[0][0]
    assert date(2026, 10, 14) <= last_day <= date(2026, 10, 16)
    shown = parse(dom(settings.reports / "costs.html")).kpis
    assert shown["cost"] == f"USD {october / 1e6:,.2f}"
    assert shown["change"] == f"{october / september * 100 - 100:+.1f}%"
    # run-rate forecast: cost so far x 31 days / days with data
    assert shown["forecast"] == f"USD {october * 31 // last_day.day / 1e6:,.2f}"
    screenshot(settings.reports / "costs.html", "costs")


def test_wasted_and_reconciliation_pages(settings: Settings) -> None:
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    total = con.execute("select coalesce(sum(cost_micros), 0) from wasted_spend").fetchall()[0][0]
    assert parse(dom(settings.reports / "wasted.html")).kpis["wasted"] == f"USD {total / 1e6:,.2f}"
    messages, agreeing = con.execute(
        "select count(*), count(*) filter (where agrees) from pricing_reconciliation").fetchall()[0]
    shown = parse(dom(settings.reports / "reconciliation.html")).kpis
    assert shown["pricing_agreement"] == f"{agreeing / messages * 100:.2f}%"
    screenshot(settings.reports / "wasted.html", "wasted")
    index = "".join(parse(dom(settings.reports / "index.html")).parts)
    for title in ("Monthly cost", "Wasted spend", "Reconciliation with Meta", "Close rates and response times"):
        assert title in index
