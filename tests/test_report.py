"""HTML reports: self-contained, escaped, masked, identical on re-run, and what
Chromium shows equals the warehouse."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from pipeline.build import build
from pipeline.cli import cli
from pipeline.config import Settings
from pipeline.ingest import ingest
from pipeline.report import mask_contact, render
from tests.browser import dom, screenshot
from tests.helpers import message, parse, write_jsonl

EVIL = "<script>alert(1)</script>"


@pytest.fixture
def warehouse(settings: Settings, tmp_path: Path) -> Settings:
    records = [
        message(message_id="in1", contact_phone="+5511987654321", contact_name=EVIL, timestamp="2026-09-01T12:00:00Z"),
        message(message_id="out1", direction="outbound", status="delivered", contact_phone="+5511987654321",
                contact_name=EVIL,
                timestamp="2026-09-01T12:05:00Z", delivered_at="2026-09-01T12:05:02Z"),
        message(message_id="out2", direction="outbound", status="failed", error_code=131047, contact_name=EVIL,
                contact_phone="+5511987654321", timestamp="2026-09-03T12:05:00Z"),
        message(message_id="in2", contact_phone="+447400123456", contact_name="Zoë \"Z\" O'Neil",
                timestamp="2026-09-02T08:00:00Z"),
        "{not json",
    ]
    ingest(settings.lake, [write_jsonl(tmp_path / "exports" / "m.jsonl", records)])
    build(settings)
    return settings




def test_masking() -> None:
    assert mask_contact("+5511987654321") == "+551•••••••321"
    assert mask_contact("BR.a1b2c3d4") == "BR.a1••••••"
    assert mask_contact("+12") == "•••"
    assert mask_contact(None) == ""


def test_reports_are_self_contained_escaped_and_masked(warehouse: Settings) -> None:
    summary = render(warehouse)
    assert [p.name for p in summary.files] == ["index.html", "overview.html", "costs.html", "outcomes.html",
                                              "wasted.html", "reconciliation.html", "alerts.html"]
    html = (warehouse.reports / "overview.html").read_text()
    # No network, no script: everything inline.
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<script" not in html.replace("&lt;script", "")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Zoë &#34;Z&#34; O&#39;Neil" in html
    assert "+5511987654321" not in html and "+551•••••••321" in html
    shown = render(warehouse, show_phones=True)
    assert "+5511987654321" in (shown.folder / "overview.html").read_text()


def test_rendering_twice_writes_identical_files(warehouse: Settings) -> None:
    first = {p.name: p.read_bytes() for p in render(warehouse).files}
    second = {p.name: p.read_bytes() for p in render(warehouse).files}
    assert first == second


def test_chromium_shows_the_warehouse_figures(warehouse: Settings) -> None:
    render(warehouse)
    page = warehouse.reports / "overview.html"
    shown = parse(dom(page))
    assert shown.scripts == 0                 # the evil name stayed text in the browser's DOM too
    assert EVIL in "".join(shown.parts)
    con = duckdb.connect(str(warehouse.warehouse), read_only=True)
    messages, inbound, delivered, failed = con.execute("""
        select count(*), count(*) filter (where direction = 'inbound'),
            count(*) filter (where direction = 'outbound' and is_delivered),
            count(*) filter (where error_code = 131047) from messages""").fetchall()[0]
    assert (messages, inbound, delivered, failed) == (4, 2, 1, 1)
    assert shown.kpis == {"messages": "4", "contacts": "2", "inbound": "2", "delivered": "1", "failed_window": "1"}
    screenshot(page, "overview")
    index = parse(dom(warehouse.reports / "index.html"))
    assert "Messages and input quality" in "".join(index.parts)


def test_report_command(warehouse: Settings) -> None:
    result = CliRunner().invoke(cli, ["report", "--config", str(warehouse.config_path)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == f"open {warehouse.reports / 'index.html'}"
    bad = CliRunner().invoke(cli, ["report", "--month", "2026-13", "--config", str(warehouse.config_path)])
    assert bad.exit_code == 2 and "expected YYYY-MM" in bad.output


def test_no_warehouse_is_a_one_line_error(settings: Settings) -> None:
    result = CliRunner().invoke(cli, ["report", "--config", str(settings.config_path)])
    assert result.exit_code == 1
    assert result.output == f"Error: no warehouse at {settings.warehouse}: run `convo build` first\n"


# Chromium measures every drawn text of the charts: none may reach past its SVG's edges.
MEASURE = """<script>
const clipped = [];
for (const svg of document.querySelectorAll("svg")) {
  const box = svg.viewBox.baseVal;
  for (const text of svg.querySelectorAll("text")) {
    const drawn = text.getBBox();
    if (drawn.x < box.x - 0.5 || drawn.x + drawn.width > box.x + box.width + 0.5) clipped.push(text.textContent);
  }
}
document.body.setAttribute("data-clipped", clipped.join("|"));
document.body.setAttribute("data-texts", String(document.querySelectorAll("svg text").length));
</script>"""


def test_chart_labels_are_drawn_whole(tmp_path: Path) -> None:
    """The longest market name and the last date of a month of columns stay inside the chart."""
    from pipeline import charts
    from pipeline.report import environment

    markets = ["Rest of Central & Eastern Europe", "United Arab Emirates", "Rest of Latin America", "India"]
    bars = charts.bar_chart("Cost by market", [(name, 1000.0 / (rank + 1), f"USD {1000.0 / (rank + 1):,.2f}")
                                               for rank, name in enumerate(markets)])
    days = [f"2026-10-{day:02d}" for day in range(1, 32)]
    columns = charts.column_chart("Close rate", days, {"closed": [1.0] * 31}, every=5)
    assert [label.text for label in columns.x_labels][-1] == "2026-10-31"
    page = environment().from_string(
        '{% import "_charts.html" as draw %}<!doctype html><html><head><style>{% include "style.css" %}</style>'
        '</head><body>{{ draw.bars(bars) }}{{ draw.columns(columns) }}' + MEASURE + "</body></html>"
    ).render(bars=bars, columns=columns)
    path = tmp_path / "charts.html"
    path.write_text(page, encoding="utf-8")
    body = re.search(r"<body[^>]*>", dom(path)).group(0)
    assert 'data-texts="' + str(2 * len(markets) + 1 + len(columns.x_labels)) + '"' in body
    assert 'data-clipped=""' in body


@pytest.mark.parametrize("contacts", [3, 40])
def test_recent_contacts_as_grouping_every_message_would(contacts: int) -> None:
    """The overview's last contacts, found from the latest messages only, are those of a
    group-by over every message: here the 400 latest messages are one contact's, and with
    3 contacts there are fewer than ten."""
    import duckdb

    from pipeline.pages.overview import _recent_contacts

    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    con.execute(f"""
        create table messages as
        select 'c' || (i % {contacts}) as contact_key, 'name ' || i as contact_name,
            timestamptz '2026-01-01 00:00:00+00' + to_minutes(i) as sent_at,
            'BR' as country_code, 'Brazil' as market
        from range(2000) as numbers(i)
        union all
        select 'busy', 'busy ' || i, timestamptz '2026-03-01 00:00:00+00' + to_minutes(i), 'IN', 'India'
        from range(400) as numbers(i)
    """)
    grouped = con.execute("""
        select contact_key, arg_max(contact_name, sent_at), any_value(country_code), any_value(market), count(*)
        from messages group by contact_key order by max(sent_at) desc, contact_key limit 10
    """).fetchall()
    assert _recent_contacts(con, 10) == grouped
    assert grouped[0] == ("busy", "busy 399", "IN", "India", 400)
    assert len(grouped) == min(10, contacts + 1)
