"""The report "Close rates and response times" in real headless Chromium: the figures
it shows equal the warehouse's (queried here) and the hand-computed ones, contacts are
masked, and a screenshot is written."""

from __future__ import annotations

from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest

from pipeline.config import Settings, load
from pipeline.pages.outcomes import duration, percent
from pipeline.report import render
from tests.browser import dom, screenshot
from tests.helpers import EVENTS, HOUR, KOLKATA, MADRID, MESSAGES, SAO_PAULO, at, build_warehouse, inbound

WAITING = "+5511999990000"
# 25 h 01 min after T0: the slow conversations and both Kolkata ones are still open.
AS_OF = at(25 * HOUR + 60)


class Page(HTMLParser):
    """KPIs (data-kpi: data-value and text), table cells by table id, SVG titles."""

    def __init__(self) -> None:
        super().__init__()
        self.kpis: dict[str, tuple[str, str]] = {}
        self.tables: dict[str, list[list[str]]] = {}
        self.titles: list[str] = []
        self.text: list[str] = []
        self._kpi: tuple[str, str] | None = None
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if attributes.get("data-kpi"):
            self._kpi = (attributes["data-kpi"] or "", attributes.get("data-value") or "")
        if tag == "table":
            self._table = attributes.get("id") or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []
        elif tag == "title":
            self._title = True
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._table is not None and self._cell is not None:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._kpi is not None:
            self.kpis[self._kpi[0]] = (self._kpi[1], data.strip())
            self._kpi = None
        if self._cell is not None:
            self._cell.append(data)
        if self._title:
            self.titles.append(data)
            self._title = False

    def body(self, table: str) -> list[list[str]]:
        """The rows of a table that hold td cells (header rows dropped)."""
        return [row for row in self.tables[table] if row][self._header_rows(table):]

    def _header_rows(self, table: str) -> int:
        return 2 if table == "numbers" else 1


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("outcomes-report")
    waiting = [inbound("w1", WAITING, at(20 * HOUR)), inbound("w2", WAITING, at(22 * HOUR))]
    con, _ = build_warehouse(root, MESSAGES + waiting, as_of=AS_OF, events=EVENTS)
    con.close()
    return load(root / "convo.toml")


@pytest.fixture(scope="module")
def page(settings: Settings) -> Path:
    render(settings)
    return settings.reports / "outcomes.html"


@pytest.fixture(scope="module")
def shown(page: Path) -> Page:
    parsed = Page()
    parsed.feed(dom(page))
    return parsed


def warehouse(settings: Settings) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(settings.warehouse), read_only=True)


def test_kpis_equal_the_warehouse(settings: Settings, shown: Page) -> None:
    with warehouse(settings) as con:
        expected = con.execute("""
            select
                count(*),
                count(*) filter (where inbound_count > 0 and ended_reason in ('agent_close', 'manual_close'))
                    / count(*) filter (where inbound_count > 0),
                median(first_response_seconds), quantile_cont(first_response_seconds, 0.9),
                avg(first_response_seconds),
                (select median(r) from (select unnest(reply_seconds) as r from conversation_outcomes)),
                (select quantile_cont(r, 0.9) from (select unnest(reply_seconds) as r from conversation_outcomes)),
                count(*) filter (where inbound_count > 0 and first_response_seconds is null),
                count(*) filter (where is_reopen)
            from conversation_outcomes""").fetchone()
        daily = con.execute("select sum(conversations_started), sum(engaged_agent_closes + engaged_manual_closes) "
                            "/ sum(engaged_conversations) from close_rates_daily").fetchone()
    keys = ("conversations", "close_rate", "first_response_median", "first_response_p90", "first_response_mean",
            "reply_median", "reply_p90", "unanswered", "reopens")
    assert list(shown.kpis) == list(keys)
    for key, value in zip(keys, expected):
        raw, text = shown.kpis[key]
        assert float(raw) == pytest.approx(value), key
        if key in ("conversations", "unanswered", "reopens"):
            assert text == f"{value:,}"
        elif key == "close_rate":
            assert text == percent(value)
        else:
            assert text == duration(value), key
    assert (float(shown.kpis["conversations"][0]), float(shown.kpis["close_rate"][0])) == pytest.approx(daily)
    # By hand: 19 conversations, 18 engaged, 2 closed by an operator; first responses
    # 5, 60, 61, 120, 120, 180, 240, 300, 600, 1200, 3600, 18000, 28800, 90000 s (p90 at
    # 0.9 * 13 = 11.7: 18000 + 0.7 * 10800 = 25560); replies add 600 and 1800 s (median
    # of 16: (300 + 600) / 2; p90 at 13.5: 23400).
    assert {key: text for key, (_, text) in shown.kpis.items()} == {
        "conversations": "19", "close_rate": "11.1%", "first_response_median": "4m 30s",
        "first_response_p90": "7h 06m", "first_response_mean": "2h 50m", "reply_median": "7m 30s",
        "reply_p90": "6h 30m", "unanswered": "4", "reopens": "1"}


def test_buckets_and_daily_chart(shown: Page) -> None:
    assert [title for title in shown.titles if title.split(":")[0] in
            ("0-1h", "1-4h", "4-8h", "8-24h", "over 24h", "no human reply")] == [
        "0-1h: 10 (55.6%)", "1-4h: 1 (5.6%)", "4-8h: 1 (5.6%)", "8-24h: 1 (5.6%)", "over 24h: 1 (5.6%)",
        "no human reply: 4 (22.2%)"]
    # Local day 2026-09-01: 16 engaged conversations (Sao Paulo 10, Madrid 5, Kolkata 1:
    # its second one starts on its Sep 2), one agent close, one manual close, 4 open.
    assert "2026-09-01 agent close: 6.2%" in shown.titles
    assert "2026-09-01 manual close: 6.2%" in shown.titles
    assert "2026-09-01 still open: 25.0%" in shown.titles


def test_per_number_table_equals_the_warehouse(settings: Settings, shown: Page) -> None:
    with warehouse(settings) as con:
        rows = con.execute("""
            select phone_number_id, count(*), count(*) filter (where inbound_count > 0),
                count(*) filter (where inbound_count > 0 and ended_reason = 'agent_close'),
                count(*) filter (where inbound_count > 0 and ended_reason = 'manual_close'),
                count(*) filter (where inbound_count > 0 and ended_reason is null),
                count(*) filter (where ended_reason in ('agent_close', 'manual_close'))
                    / count(*) filter (where inbound_count > 0),
                median(first_response_seconds), quantile_cont(first_response_seconds, 0.9),
                avg(first_response_seconds),
                count(*) filter (where inbound_count > 0 and first_response_seconds is null),
                count(*) filter (where is_reopen)
            from conversation_outcomes group by phone_number_id order by phone_number_id""").fetchall()
    table = shown.body("numbers")
    assert [row[0].split()[0] for row in table] == [str(SAO_PAULO), str(KOLKATA), str(MADRID)]
    for cells, (_, started, engaged, agent, manual, still_open, rate, median, p90, mean, unanswered, reopens) \
            in zip(table, rows):
        assert cells[1:10] == [f"{started:,}", f"{engaged:,}", str(agent), str(manual), str(still_open),
                               percent(rate), duration(median), duration(p90), duration(mean)]
        assert cells[12:] == [str(unanswered), str(reopens)]
    # Madrid by hand: 60, 120, 180, 240, 1200 s; replies add 600 s.
    assert table[2][1:] == ["5", "5", "0", "0", "0", "0.0%", "3m 00s", "13m 36s", "6m 00s", "3m 30s", "15m 00s",
                            "0", "0"]


def test_open_conversations_waiting_longest_are_masked(settings: Settings, page: Path, shown: Page) -> None:
    # IN.midnight wrote at Sep 1 18:30 UTC (18 h 31 min before the as-of), the phone
    # contact at +20 h (5 h 01 min); both open, no human reply yet.
    assert shown.body("slowest") == [
        ["IN.mi••••••", str(KOLKATA), "inactive", "2026-09-01 18:30 UTC", "2026-09-01 18:30 UTC", "18h 31m",
         "none yet", "1"],
        ["+551•••••••000", str(SAO_PAULO), "inactive", "2026-09-02 08:00 UTC", "2026-09-02 08:00 UTC", "5h 01m",
         "none yet", "2"],
    ]
    assert WAITING not in page.read_text() and "IN.midnight" not in page.read_text()
    screenshot(page, "outcomes")


def test_show_phones_and_a_month_without_conversations(settings: Settings) -> None:
    render(settings, show_phones=True)
    assert WAITING in (settings.reports / "outcomes.html").read_text()
    render(settings, month="2026-08")
    parsed = Page()
    parsed.feed((settings.reports / "outcomes.html").read_text())
    assert parsed.kpis == {}
    assert "Conversations started from 2026-08-01 to 2026-08-31" in " ".join("".join(parsed.text).split())
    assert parsed.body("numbers") == [["No conversation started in this period."]]
    render(settings)


def test_the_period_is_the_newest_local_days(settings: Settings, shown: Page) -> None:
    text = " ".join("".join(shown.text).split())
    assert f"Conversations started from {date(2026, 8, 4)} to {date(2026, 9, 2)}" in text
