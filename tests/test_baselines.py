"""bench/baselines.py: pandas, Polars and convo price the same tiny lake the same way.

The lake is written straight into ingest's Parquet layout and built with convo; the
expected counts and costs are worked out by hand from DOMAIN (R2, R4, R6, R15, R18-R20,
R22, R25, R27) and the test card below, thread by thread.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.build import build
from pipeline.config import load
from pipeline.schema import MESSAGES

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "baselines.py"
SAO_PAULO = 555000001          # America/Sao_Paulo, UTC-3 all year
UTC = timezone.utc

CONFIG = """\
[paths]
lake = "lake"
warehouse = "warehouse.duckdb"

[[phone_numbers]]
phone_number_id = 555000001
tenant_id = 1
timezone = "America/Sao_Paulo"
currency = "USD"

[billing]
rate_card = "card.csv"
business_country = "BR"
auth_international_eligible = true
"""

# first-tier (list) rates; a second utility tier the baselines must not use
CARD = """\
effective_from,market,category,currency,tier_from,tier_to,rate_micros,source
2025-01-01,Brazil,marketing,USD,1,,50000,test
2025-01-01,Brazil,utility,USD,1,,10000,test
2025-01-01,Brazil,authentication,USD,1,,20000,test
2025-01-01,Brazil,service,USD,1,,5000,test
2025-01-01,India,marketing,USD,1,,10000,test
2025-01-01,India,utility,USD,1,,1000,test
2025-01-01,India,authentication,USD,1,,2000,test
2025-01-01,India,authentication-international,USD,1,,30000,test
2025-01-01,India,service,USD,1,,500,test
"""


def local(text: str) -> datetime:
    """A wall-clock time on the Sao Paulo number."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo("America/Sao_Paulo")).astimezone(UTC)


class Lake:
    def __init__(self) -> None:
        self.rows: list[dict[str, object]] = []

    def add(self, contact: str, at: datetime, direction: str, *, category: str | None = None,
            status: str | None = None, referral: str | None = None, bsuid: str | None = None,
            phone: str | None = "") -> None:
        outbound = direction == "outbound"
        status = status or ("delivered" if outbound else "received")
        self.rows.append({
            "message_id": f"wamid.{len(self.rows) + 1:03d}", "tenant_id": 1, "phone_number_id": SAO_PAULO,
            "contact_bsuid": bsuid, "contact_phone": contact if phone == "" else phone, "contact_name": "Ana",
            "direction": direction, "type": "template" if category else "text",
            "template_name": f"{category}_tpl" if category else None, "template_category": category,
            "status": status, "error_code": 131047 if status == "failed" else None, "sent_at": at,
            "delivered_at": at if status in ("delivered", "read") else None, "referral_source": referral,
            "conversation_id": None, "pricing_billable": None, "pricing_model": None, "pricing_type": None,
            "pricing_category": None, "source_file": "test", "source_line": len(self.rows) + 1,
        })

    def user(self, contact: str, at: str, **fields: object) -> None:
        self.add(contact, local(at), "inbound", **fields)

    def send(self, contact: str, at: str, category: str | None = None, **fields: object) -> None:
        self.add(contact, local(at), "outbound", category=category, **fields)

    def write(self, lake: Path) -> None:
        days = sorted({row["sent_at"].date() for row in self.rows})
        for day in days:
            rows = [row for row in self.rows if row["sent_at"].date() == day]
            target = lake / "messages" / f"date={day}" / "data.parquet"
            target.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_pylist(rows, schema=MESSAGES.schema), target)


def threads() -> Lake:
    lake = Lake()
    # A: utility 2 h after the user: free (open window, R19); 25 h after: charged
    lake.user("+5511900000001", "2025-07-10 10:00")
    lake.send("+5511900000001", "2025-07-10 12:00", "utility")
    lake.send("+5511900000001", "2025-07-11 11:00", "utility")
    # B: marketing inside the window, read: charged all the same (R19, R27)
    lake.user("+5511900000002", "2025-07-10 10:00")
    lake.send("+5511900000002", "2025-07-10 10:30", "marketing", status="read")
    # C: authentication with no user message: charged
    lake.send("+5511900000003", "2025-07-10 09:00", "authentication")
    # D: authentication to India from a Brazilian business, eligible: authentication-international (R25)
    lake.send("+919800000004", "2025-07-10 09:00", "authentication")
    # E: arrival by ad, reply 12 h later: free for 72 h from the reply (R15, R19, DOMAIN E4)
    lake.user("+5511900000005", "2025-07-10 10:00", referral="ad")
    lake.send("+5511900000005", "2025-07-10 22:00", "marketing")      # free (opens the window)
    lake.send("+5511900000005", "2025-07-12 10:00", "marketing")      # free (inside it)
    lake.send("+5511900000005", "2025-07-14 00:00", "marketing")      # charged (window ended 07-13 22:00)
    # F: a free-form reply: service, free (R19); a failed one and an undelivered template: not counted
    lake.user("+5511900000006", "2025-07-10 10:00")
    lake.send("+5511900000006", "2025-07-10 10:05")
    lake.send("+5511900000006", "2025-07-12 10:05", status="failed")
    lake.send("+5511900000006", "2025-07-12 10:06", "marketing", status="sent")
    # G: a CBP utility conversation opened 06-30 23:00 stays open to 07-01 23:00 (R20)
    lake.send("+5511900000007", "2025-06-30 23:00", "utility")        # CBP date: not in the answer
    lake.send("+5511900000007", "2025-07-01 10:00", "utility")        # free (R20)
    lake.send("+5511900000007", "2025-07-02 00:30", "utility")        # charged
    # H: 06-30 22:00 local is 07-01 01:00 UTC: a CBP date (R1); R20 is for utility only
    lake.send("+5511900000008", "2025-06-30 22:00", "marketing")      # not in the answer
    lake.send("+5511900000008", "2025-07-01 00:30", "marketing")      # charged
    # J: exactly 24 h after the user: the window is (t - 24 h, t], closed (R4, R6)
    lake.user("+5511900000009", "2025-07-15 10:00")
    lake.send("+5511900000009", "2025-07-16 10:00", "utility")        # charged
    # K: the user writes with a bsuid and phone; the template goes to the phone only: one thread (R2)
    lake.user("+5511900000011", "2025-07-20 10:00", bsuid="BR.k1")
    lake.send("+5511900000011", "2025-07-20 11:00", "utility")        # free
    return lake


EXPECTED = [
    {"market": "Brazil", "category": "authentication", "charged": 1, "free": 0, "cost_micros": 20000},
    {"market": "Brazil", "category": "marketing", "charged": 3, "free": 2, "cost_micros": 150000},
    {"market": "Brazil", "category": "service", "charged": 0, "free": 1, "cost_micros": 0},
    {"market": "Brazil", "category": "utility", "charged": 3, "free": 3, "cost_micros": 30000},
    {"market": "India", "category": "authentication-international", "charged": 1, "free": 0, "cost_micros": 30000},
]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("baselines")
    (root / "convo.toml").write_text(CONFIG)
    (root / "card.csv").write_text(CARD)
    threads().write(root / "lake")
    build(load(root / "convo.toml"))
    return root


@pytest.fixture(scope="module")
def printed(project: Path) -> list[dict[str, object]]:
    output = subprocess.run(
        [sys.executable, str(SCRIPT), "--all", "--lake", str(project / "lake"), "--warehouse",
         str(project / "warehouse.duckdb"), "--config", str(project / "convo.toml"), "--out-dir",
         str(project / "out")], capture_output=True, text=True, cwd=ROOT)
    assert output.returncode == 0, output.stderr
    return [json.loads(line) for line in output.stdout.splitlines()]


def test_all_prints_one_line_per_engine_with_the_harness_keys(printed: list[dict[str, object]]) -> None:
    assert [line["engine"] for line in printed] == ["pandas", "polars", "convo"]
    for line in printed:
        assert list(line) == ["engine", "messages", "wall_s", "cpu_s", "peak_rss_mb", "charged", "free",
                              "cost_micros"]
        assert (line["messages"], line["charged"], line["free"], line["cost_micros"]) == (24, 8, 6, 230000)


@pytest.mark.parametrize("engine", ["pandas", "polars", "convo"])
def test_each_engine_gives_the_hand_worked_answer(printed: list[dict[str, object]], project: Path,
                                                  engine: str) -> None:
    result = json.loads((project / "out" / f"{engine}.json").read_text())
    assert result["groups"] == EXPECTED


def test_disagreeing_engines_are_named_with_the_difference() -> None:
    spec = importlib.util.spec_from_file_location("baselines", SCRIPT)
    baselines = importlib.util.module_from_spec(spec)
    sys.modules["baselines"] = baselines          # dataclasses look their module up while defining
    spec.loader.exec_module(baselines)
    row = {"market": "Brazil", "category": "utility", "charged": 3, "free": 3, "cost_micros": 30000}
    other = {**row, "charged": 2, "free": 4, "cost_micros": 20000}
    with pytest.raises(baselines.EnginesDisagree, match=r"pandas and polars disagree on 1 \(market, category\): "
                       r"\('Brazil', 'utility'\)"):
        baselines.check_agreement([{"engine": "pandas", "groups": [row]}, {"engine": "polars", "groups": [other]}])


def test_the_lake_is_the_one_intended() -> None:
    rows = threads().rows
    assert len(rows) == 24
    assert local("2025-06-30 22:00") == datetime(2025, 7, 1, 1, 0, tzinfo=UTC)
    assert local("2025-07-16 10:00") - local("2025-07-15 10:00") == timedelta(hours=24)
