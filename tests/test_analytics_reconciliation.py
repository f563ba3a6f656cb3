"""analytics_reconciliation at the grain of Meta's files (DOMAIN R26): convo's own units rolled
up to the period and dimensions of each file, pricing_analytics against the PMP units and
conversation_analytics against the CBP conversations (R13-R17)."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from datetime import date, datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import orjson
import pytest

from pipeline.build import build
from pipeline.config import load
from pipeline.ingest import ingest
from pipeline.report import render
from pipeline.simulate import SimulateSettings, simulate
from tests.browser import dom
from tests.helpers import KOLKATA, SAO_PAULO, Thread, build_threads, local, project

UTC = timezone.utc
COLUMNS = ("api, granularity, billing_date, waba_id, phone_number_id, country_code, category, pricing_type, "
           "units, meta_volume, cost_micros, meta_cost_micros, status, is_beyond_tolerance, is_priced_by_convo")


def seconds(moment: datetime) -> int:
    return int(moment.timestamp())


def response(api: str, waba_id: str, points: list[dict]) -> str:
    return json.dumps({api: {"data": [{"data_points": points}]}, "id": waba_id})


class Cells(HTMLParser):
    """The text of each row (tr, li) under the element with the given id."""

    def __init__(self, element_id: str) -> None:
        super().__init__()
        self.element_id, self.depth, self.rows = element_id, 0, []
        self._cells: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if dict(attrs).get("id") == self.element_id:
            self.depth = 1
        elif self.depth and tag in ("tr", "li"):
            self._cells = []
        elif self.depth and tag in ("td", "th") and self._cells is not None:
            self._cells.append("")

    def handle_endtag(self, tag: str) -> None:
        if self.depth and tag in ("tr", "li") and self._cells is not None:
            self.rows.append(tuple(cell.strip() for cell in self._cells))
            self._cells = None
        elif self.depth and tag in ("table", "ul"):
            self.depth = 0

    def handle_data(self, data: str) -> None:
        if self._cells is not None:
            if self._cells and not data.isspace():
                self._cells[-1] += data
            elif not self._cells:
                self._cells.append(data)


def cells(html: str, element_id: str) -> list[tuple[str, ...]]:
    parser = Cells(element_id)
    parser.feed(html)
    return parser.rows


def test_a_waba_level_monthly_file_a_per_number_daily_file_and_the_cbp_months(tmp_path: Path) -> None:
    settings = project(tmp_path)
    # PMP, August 2025: a marketing template and a free reply in Brazil (São Paulo number), a
    # marketing template to India from the Kolkata number (no display_phone_number: a
    # WABA-level file needs none).
    sale = Thread("sale", "+5511955550001")
    sale.template(local("2025-08-12 09:00"), "marketing")
    sale.user(local("2025-08-12 10:00"))
    sale.text(local("2025-08-12 10:05"))
    india = Thread("india", "+919800000001", phone_number_id=KOLKATA)
    india.template(local("2025-08-13 09:00", KOLKATA), "marketing")
    # CBP, June 2025: a marketing conversation (the reply is absorbed, R14), then a utility one.
    cbp = Thread("cbp", "+5511955550002")
    cbp.template(local("2025-06-10 10:00"), "marketing")
    cbp.user(local("2025-06-10 11:00"))
    cbp.text(local("2025-06-10 11:05"))
    cbp.template(local("2025-06-11 09:00"), "utility")
    august, september = seconds(local("2025-08-01 00:00")), seconds(local("2025-09-01 00:00"))
    june_10, june_11, june_12 = (seconds(local(f"2025-06-{day} 00:00")) for day in (10, 11, 12))
    exports = tmp_path / "exports" / "analytics"
    exports.mkdir(parents=True)
    # WABA-level MONTHLY, dimensions(COUNTRY,PRICING_CATEGORY,PRICING_TYPE), a partner's credit
    # line (no cost), a category convo does not price.
    month = {"start": august, "end": september}
    (exports / "pricing-monthly.json").write_text(response("pricing_analytics", "waba-1", [
        {**month, "country": "BR", "pricing_type": "REGULAR", "pricing_category": "MARKETING", "volume": 1},
        {**month, "country": "BR", "pricing_type": "FREE_CUSTOMER_SERVICE", "pricing_category": "SERVICE",
         "volume": 1},
        {**month, "country": "IN", "pricing_type": "REGULAR", "pricing_category": "MARKETING", "volume": 1},
        {**month, "country": "US", "tier": "0:MAX", "pricing_type": "REGULAR", "pricing_category": "MARKETING_LITE",
         "volume": 3},
    ]))
    # a WABA convo.toml does not know
    (exports / "other-waba.json").write_text(response("pricing_analytics", "waba-other", [
        {**month, "country": "BR", "volume": 2, "cost": 0.1}]))
    # conversation_analytics, per number, DAILY
    phone = {"phone_number": "5511900000001", "country": "BR", "conversation_type": "REGULAR"}
    (exports / "conversations-daily.json").write_text(response("conversation_analytics", "waba-1", [
        {"start": june_10, "end": june_11, "conversation": 1, **phone, "conversation_category": "MARKETING",
         "conversation_direction": "BUSINESS_INITIATED", "cost": 0.05},
        {"start": june_11, "end": june_12, "conversation": 1, **phone, "conversation_category": "UTILITY",
         "cost": 0.01},
        {"start": june_11, "end": june_12, "conversation": 1, **phone, "conversation_category": "AUTHENTICATION",
         "cost": 0.02},
    ]))
    ingest(settings.lake, [exports])
    con, summary = build_threads(settings, [sale, india, cbp], tmp_path)
    assert con.execute(f"select {COLUMNS} from analytics_reconciliation "
                       "order by api, billing_date, waba_id, country_code, category").fetchall() == [
        ("conversation_analytics", "DAILY", date(2025, 6, 10), "waba-1", SAO_PAULO, "BR", "marketing", "regular",
         1, 1, 50_000, 50_000, "matched", False, True),
        ("conversation_analytics", "DAILY", date(2025, 6, 11), "waba-1", SAO_PAULO, "BR", "authentication",
         "regular", 0, 1, 0, 20_000, "only_meta", True, True),
        ("conversation_analytics", "DAILY", date(2025, 6, 11), "waba-1", SAO_PAULO, "BR", "utility", "regular",
         1, 1, 10_000, 10_000, "matched", False, True),
        ("pricing_analytics", "MONTHLY", date(2025, 8, 1), "waba-1", None, "BR", "marketing", "regular",
         1, 1, 50_000, None, "matched", False, True),
        ("pricing_analytics", "MONTHLY", date(2025, 8, 1), "waba-1", None, "BR", "service", "free_customer_service",
         1, 1, 0, None, "matched", False, True),
        ("pricing_analytics", "MONTHLY", date(2025, 8, 1), "waba-1", None, "IN", "marketing", "regular",
         1, 1, 10_000, None, "matched", False, True),
        ("pricing_analytics", "MONTHLY", date(2025, 8, 1), "waba-1", None, "US", "marketing_lite", "regular",
         0, 3, 0, None, "only_meta", True, False),
        ("pricing_analytics", "MONTHLY", date(2025, 8, 1), "waba-other", None, "BR", None, None,
         0, 2, 0, 100_000, "unknown_waba", True, True),
    ]
    assert con.execute("select meta_directions from analytics_reconciliation "
                       "where api = 'conversation_analytics' and category = 'marketing'").fetchall() == [
        ("business_initiated",)]
    lines = [line for line in summary.checks if "analytics" in line]
    assert lines == [
        "conversation analytics: 1 of 3 day x number x country x category x type rows beyond tolerance; "
        "volume ours 2 vs Meta 3, cost ours 0.06 vs Meta 0.08",
        "pricing analytics: 1 of 1 month x WABA x country rows beyond tolerance; volume ours 0 vs Meta 2, "
        "cost ours 0.00 vs Meta 0.10 (1 rows name a WABA id not in convo.toml)",
        "pricing analytics: 1 of 4 month x WABA x country x category x type rows beyond tolerance; volume ours 3 "
        "vs Meta 6, cost ours 0.06 vs Meta not given (volume only) (1 rows of categories convo does not price)",
    ]
    # The report's reconciliation page, in Chromium: both APIs, the months each covers, each grain.
    render(settings)
    html = dom(settings.reports / "reconciliation.html")
    apis = [" ".join(" ".join(row).split()) for row in cells(html, "analytics-apis")]
    assert apis == [
        "pricing_analytics (per-message pricing: messages delivered from 2025-07-01): 2025-08 (month x WABA x "
        "country); 2025-08 (month x WABA x country x category x type)",
        "conversation_analytics (conversation-based pricing: conversations opened before 2025-07-01): 2025-06 "
        "(day x number x country x category x type)",
    ]
    assert cells(html, "analytics")[1:] == [
        ("conversation_analytics", "day x number x country x category x type", "2025-06", "3", "1", "2", "3",
         "USD 0.06", "USD 0.08", "0"),
        ("pricing_analytics", "month x WABA x country", "2025-08", "1", "1", "0", "2", "USD 0.00", "USD 0.10", "0"),
        ("pricing_analytics", "month x WABA x country x category x type", "2025-08", "4", "1", "3", "6",
         "USD 0.06", "not given", "1"),
    ]
    assert cells(html, "analytics-differences")[1:] == [
        ("pricing_analytics", "2025-08", "all", "US", "marketing_lite", "regular", "0", "3", "USD 0.00",
         "not given", "only_meta", "– / 0:MAX"),
        ("pricing_analytics", "2025-08", "all", "BR", "all", "all", "0", "2", "USD 0.00", "USD 0.10",
         "unknown_waba", "– / –"),
        ("conversation_analytics", "2025-06-11", "5511900000001", "BR", "authentication", "regular", "0", "1",
         "USD 0.00", "USD 0.02", "only_meta", "– / –"),
    ]


# --- a simulated tenant across the switch to PMP (2025-07-01) ------------------------------------


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tenant") / "sim"
    simulate(SimulateSettings(out=out, contacts=70, days=30, seed=4, start=date(2025, 6, 16)))
    return out


def built(out: Path, analytics: list[Path]) -> duckdb.DuckDBPyConnection:
    """The simulated tenant's exports with the given analytics files, ingested and built."""
    settings = load(out / "convo.toml")
    exports = out / "exports"
    ingest(settings.lake, [exports / name for name in ("messages", "conversations", "events", "templates")]
           + analytics)
    build(settings)
    return duckdb.connect(str(settings.warehouse), read_only=True)


def file_totals(paths: list[Path], api: str) -> tuple[int, int]:
    volume, micros = 0, 0
    for path in paths:
        for point in orjson.loads(path.read_bytes())[api]["data"][0]["data_points"]:
            volume += point["volume" if api == "pricing_analytics" else "conversation"]
            micros += round(point["cost"] * 1_000_000)
    return volume, micros


def test_waba_level_monthly_files_reconcile_to_zero_differences(tenant: Path, tmp_path: Path) -> None:
    out = tmp_path / "sim"
    shutil.copytree(tenant, out)
    pricing = sorted((out / "exports/pricing_analytics").glob("*-monthly-*.json"))
    conversations = sorted((out / "exports/conversation_analytics").glob("*-monthly-*.json"))
    assert len(pricing) == len(conversations) == 4
    with built(out, pricing + conversations) as con:
        rows = con.execute("""
            select api, granularity, dimensions, status, is_beyond_tolerance, count(*),
                sum(units), sum(meta_volume), sum(cost_micros), sum(meta_cost_micros),
                min(billing_date), max(billing_date), count(*) filter (where volume_difference <> 0
                    or cost_difference_micros <> 0)
            from analytics_reconciliation group by all order by all""").fetchall()
        units = dict(con.execute("select pricing_model, count(*) from billable_units group by 1").fetchall())
        cost = dict(con.execute(
            "select pricing_model, sum(cost_micros) from billable_units group by 1").fetchall())
    pricing_volume, pricing_cost = file_totals(pricing, "pricing_analytics")
    conversation_volume, conversation_cost = file_totals(conversations, "conversation_analytics")
    assert pricing_volume == units["PMP"] and conversation_volume == units["CBP"]
    assert pricing_cost == cost["PMP"] > 0 and conversation_cost == cost["CBP"] > 0
    assert [row[:5] for row in rows] == [
        ("conversation_analytics", "MONTHLY", "COUNTRY,CONVERSATION_CATEGORY,CONVERSATION_TYPE", "matched", False),
        ("pricing_analytics", "MONTHLY", "COUNTRY,PRICING_CATEGORY,PRICING_TYPE", "matched", False),
    ]
    (cbp, pmp) = rows
    assert cbp[6:10] == (units["CBP"], units["CBP"], cost["CBP"], cost["CBP"])
    assert pmp[6:10] == (units["PMP"], units["PMP"], cost["PMP"], cost["PMP"])
    # each API covers its own months (local dates of the WABAs' months); no row differs
    assert (cbp[10], cbp[11], pmp[10], pmp[11]) == (date(2025, 6, 1),) * 2 + (date(2025, 7, 1),) * 2
    assert cbp[12] == pmp[12] == 0


def test_per_number_daily_files_reconcile_and_a_changed_point_is_found(tenant: Path, tmp_path: Path) -> None:
    out = tmp_path / "sim"
    shutil.copytree(tenant, out)
    pricing = sorted((out / "exports/pricing_analytics").glob("pricing_analytics-2025-*.json"))
    conversations = sorted((out / "exports/conversation_analytics").glob("conversation_analytics-2025-*.json"))
    # Meta counts one more marketing conversation on the first day of one file, and one point
    # of a pricing file is dropped
    document = orjson.loads(conversations[0].read_bytes())
    points = document["conversation_analytics"]["data"][0]["data_points"]
    changed = next(point for point in points if point["conversation_category"] == "MARKETING")
    changed["conversation"] += 1
    conversations[0].write_bytes(orjson.dumps(document))
    document = orjson.loads(pricing[0].read_bytes())
    dropped = document["pricing_analytics"]["data"][0]["data_points"].pop()
    pricing[0].write_bytes(orjson.dumps(document))
    with built(out, pricing + conversations) as con:
        beyond = con.execute("""
            select api, epoch(period_start_at)::bigint, phone_number, country_code, category, status,
                volume_difference
            from analytics_reconciliation where is_beyond_tolerance order by api""").fetchall()
        statuses = Counter(dict(con.execute(
            "select status, count(*) from analytics_reconciliation group by 1").fetchall()))
        grains = con.execute("select distinct api, granularity, dimensions from analytics_reconciliation "
                             "order by all").fetchall()
    assert grains == [
        ("conversation_analytics", "DAILY", "PHONE,COUNTRY,CONVERSATION_CATEGORY,CONVERSATION_TYPE"),
        ("pricing_analytics", "DAILY", "PHONE,COUNTRY,PRICING_CATEGORY,PRICING_TYPE"),
    ]
    dropped_category = dropped["pricing_category"].lower()
    # the dropped point's row: only ours when it was the only point of its row (no other tier)
    assert beyond == [
        ("conversation_analytics", changed["start"], changed["phone_number"], changed["country"], "marketing",
         "matched", -1),
        ("pricing_analytics", dropped["start"], dropped["phone_number"], dropped["country"], dropped_category,
         "only_ours", dropped["volume"]),
    ]
    assert set(statuses) == {"matched", "only_ours"} and statuses["only_ours"] == 1


def test_half_hour_periods_and_the_grain_is_unique(tmp_path: Path) -> None:
    settings = project(tmp_path)
    sale = Thread("sale", "+5511955550001")
    sale.template(local("2025-08-12 09:10"), "marketing")
    sale.user(local("2025-08-12 10:00"))
    sale.text(local("2025-08-12 10:29"))
    sale.text(local("2025-08-12 10:30"))              # the next half hour, which Meta's file does not cover
    slot = {f"{hour}:{minute:02d}": seconds(local(f"2025-08-12 {hour:02d}:{minute:02d}"))
            for hour in (9, 10, 11) for minute in (0, 30)}
    path = tmp_path / "exports" / "half-hours.json"
    path.parent.mkdir(parents=True)
    path.write_text(response("pricing_analytics", "waba-1", [
        {"start": slot["9:00"], "end": slot["9:30"], "phone_number": "5511900000001", "pricing_type": "REGULAR",
         "volume": 1, "cost": 0.05},
        {"start": slot["10:00"], "end": slot["10:30"], "phone_number": "5511900000001",
         "pricing_type": "FREE_CUSTOMER_SERVICE", "volume": 1, "cost": 0},
        {"start": slot["11:00"], "end": slot["11:30"], "phone_number": "5511900000001", "pricing_type": "REGULAR",
         "volume": 2, "cost": 0.1},
    ]))
    ingest(settings.lake, [path])
    con, _ = build_threads(settings, [sale], tmp_path)
    assert con.execute("""
        select granularity, dimensions, epoch(period_start_at)::bigint, epoch(period_end_at)::bigint, phone_number_id,
            country_code, category, pricing_type, units, meta_volume, cost_micros, meta_cost_micros, status
        from analytics_reconciliation order by period_start_at""").fetchall() == [
        ("HALF_HOUR", "PHONE,PRICING_TYPE", slot["9:00"], slot["9:30"], SAO_PAULO, None, None, "regular",
         1, 1, 50_000, 50_000, "matched"),
        ("HALF_HOUR", "PHONE,PRICING_TYPE", slot["10:00"], slot["10:30"], SAO_PAULO, None, None,
         "free_customer_service", 1, 1, 0, 0, "matched"),
        ("HALF_HOUR", "PHONE,PRICING_TYPE", slot["11:00"], slot["11:30"], SAO_PAULO, None, None, "regular",
         0, 2, 0, 100_000, "only_meta"),
    ]
    grain = ("api, waba_id, granularity, dimensions, period_start_at, period_end_at, phone_number_id, "
             "phone_number, country_code, category, pricing_type")
    assert con.execute(f"select count(*) from (select {grain} from analytics_reconciliation "
                       "group by all having count(*) > 1)").fetchone() == (0,)
