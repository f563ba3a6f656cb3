"""Time (issue 7.4): every accepted timestamp notation gives the same instant, the
ambiguous ones are quarantined, and local dates, billing dates and the pricing
regime switch at local midnight in every business number's timezone: across DST
transitions (America/New_York, Europe/Madrid), at half-hour and 45-minute offsets
(Asia/Kolkata, Asia/Kathmandu), and exactly at 2026-10-01 00:00 local, when regime C
starts (DOMAIN R1, R21, R27). The expected local dates come from Python's zoneinfo,
not from the SQL under test.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest

from pipeline.build import build
from pipeline.config import load
from pipeline.ingest import ingest
from tests.robust import lake_rows
from tests.helpers import message, write_jsonl

UTC = timezone.utc
TEN = datetime(2026, 9, 1, 10, 0, tzinfo=UTC)

ACCEPTED = [
    ("2026-09-01T10:00:00Z", TEN),
    ("2026-09-01T10:00:00z", TEN),
    ("2026-09-01T15:30:00+05:30", TEN),
    ("2026-09-01T15:30:00+0530", TEN),
    ("2026-09-01T15:00:00+05", TEN),
    ("2026-09-01T15:45:00+05:45", TEN),
    ("2026-09-01T06:00:00-04:00", TEN),
    ("2026-09-01T00:00:00-10:00", TEN),
    ("2026-09-02T00:00:00+14:00", TEN),
    ("2026-09-01 10:00:00Z", TEN),
    ("2026-09-01 15:30:00+05:30", TEN),
    ("2026-09-01T10:00Z", TEN),
    ("2026-08-31T24:00:00-10:00", TEN),          # ISO 8601's end of day: the next day's 00:00
    (" 2026-09-01T10:00:00Z ", TEN),
    ("2026-09-01T10:00:00.5Z", TEN + timedelta(microseconds=500_000)),
    ("2026-09-01T15:30:00.123456+05:30", TEN + timedelta(microseconds=123_456)),
    ("2026-09-01T10:00:00.123456789Z", TEN + timedelta(microseconds=123_456)),   # to the microsecond
    (1788256800, TEN),
    ("1788256800", TEN),
    (1788256800.25, TEN + timedelta(microseconds=250_000)),
    ("1788256800.000001", TEN + timedelta(microseconds=1)),
    (1788256800.0, TEN),
]

REJECTED = [
    "2026-09-01T10:00:00",          # no offset: ambiguous
    "2026-09-01 10:00:00",
    "2026-09-01",
    1788256800000,                  # milliseconds
    "1788256800000",
    1788256800123.5,
    "2026-09-01T10:00:00 +05:30",   # a space before the offset
    "2026-09-01T10:00:00+05:30:00",
    "2026-09-01T10:00:00UTC",
    "2026-09-01T10:00:00 America/New_York",
    "20260901T100000Z",             # ISO basic format
    "2026-02-30T10:00:00Z",
    "2026-09-01T23:59:60Z",         # a leap second
    "0",
    -1,
    "1e9",
    "yesterday",
]


def test_every_accepted_timestamp_notation_and_mixed_offsets_in_one_file(tmp_path: Path) -> None:
    records = [message(message_id=f"ok{i}", timestamp=value) for i, (value, _) in enumerate(ACCEPTED)]
    records += [message(message_id=f"bad{i}", timestamp=value) for i, value in enumerate(REJECTED)]
    # delivered_at reads the same notations.
    records += [message(message_id=f"dl{i}", direction="outbound", status="delivered",
                        timestamp="2026-09-01T09:00:00Z", delivered_at=value)
                for i, (value, _) in enumerate(ACCEPTED)]
    summary = ingest(tmp_path / "lake", [write_jsonl(tmp_path / "mixed.jsonl", records)])
    stored = {row["message_id"]: row for row in lake_rows(tmp_path / "lake", "messages")}
    for i, (value, expected) in enumerate(ACCEPTED):
        assert stored[f"ok{i}"]["sent_at"] == expected, value
        assert stored[f"dl{i}"]["delivered_at"] == expected, value
    quarantined = {json.loads(row["raw"])["message_id"]: (row["reason"], row["detail"])
                   for row in lake_rows(tmp_path / "lake", "quarantine")}
    assert quarantined == {f"bad{i}": ("bad_timestamp", "timestamp") for i in range(len(REJECTED))}
    assert summary.total("read") == summary.total("accepted") + summary.total("quarantined") == len(records)


CONFIG = """\
[paths]
lake = "lake"
warehouse = "warehouse.duckdb"
reports = "reports_out"
"""
ZONES = {
    555000101: "America/New_York",
    555000202: "Europe/Madrid",
    555000303: "Asia/Kolkata",
    555000404: "Asia/Kathmandu",
}
UNCONFIGURED = 555000999               # cut in UTC, and the build says so
REGIME_C_STARTS = date(2026, 10, 1)
DATES = [date(2026, 3, 8), date(2026, 3, 9), date(2026, 3, 29), date(2026, 3, 30),       # spring forward
         date(2026, 9, 30), date(2026, 10, 1), date(2026, 10, 2),                        # regime B -> C
         date(2026, 10, 25), date(2026, 10, 26), date(2026, 11, 1), date(2026, 11, 2)]   # fall back


def instants(zone: str) -> list[datetime]:
    """Each local midnight of DATES and one second either side, and every UTC offset change
    on those dates and one second either side."""
    tz = ZoneInfo(zone)
    found = set()
    for day in DATES:
        midnight = datetime.combine(day, time(0), tz).astimezone(UTC)
        found |= {midnight - timedelta(seconds=1), midnight, midnight + timedelta(seconds=1)}
        start = midnight
        for minutes in range(0, 26 * 60, 15):
            moment = start + timedelta(minutes=minutes)
            before = (moment - timedelta(minutes=15)).astimezone(tz).utcoffset()
            if moment.astimezone(tz).utcoffset() != before:
                found |= {moment - timedelta(seconds=1), moment, moment + timedelta(seconds=1)}
    return sorted(found)


def iso(moment: datetime, zone: str) -> str:
    """The instant as the export would write it: local time with its offset."""
    return moment.astimezone(ZoneInfo(zone)).isoformat()


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, tuple]]:
    """One warehouse with messages at every instant in every zone; the expected values per message."""
    root = tmp_path_factory.mktemp("time")
    numbers = "".join(f'\n[[phone_numbers]]\nphone_number_id = {number}\ntenant_id = 1\nwaba_id = "waba-{number}"\n'
                      f'timezone = "{zone}"\ncurrency = "USD"\n' for number, zone in ZONES.items())
    (root / "convo.toml").write_text(CONFIG + numbers)
    records, expected = [], {}
    for number, zone in {**ZONES, UNCONFIGURED: "UTC"}.items():
        tz = ZoneInfo(zone)
        for n, moment in enumerate(instants(zone)):
            contact = f"+1202555{number % 1000:03d}{n % 10}"
            inbound = f"in-{number}-{n}"
            records.append(message(message_id=inbound, phone_number_id=number, contact_phone=contact,
                                   timestamp=iso(moment, zone)))
            expected[inbound] = (moment.astimezone(tz).date(), None, None)
            # A utility template and a free-form reply delivered at the instant, sent a second before:
            # the message's local date follows the send, the billing date and regime the delivery (R27).
            for kind, extra in (("tpl", {"type": "template", "template_name": "receipt",
                                         "template_category": "utility"}), ("txt", {})):
                outbound = f"{kind}-{number}-{n}"
                records.append(message(message_id=outbound, phone_number_id=number, contact_phone=contact,
                                       direction="outbound", status="delivered",
                                       timestamp=(moment - timedelta(seconds=1)).timestamp(),
                                       delivered_at=iso(moment, zone), **extra))
                billing_date = moment.astimezone(tz).date()
                expected[outbound] = ((moment - timedelta(seconds=1)).astimezone(tz).date(), billing_date,
                                      "C" if billing_date >= REGIME_C_STARTS else "B")
    settings = load(root / "convo.toml")
    ingest(settings.lake, [write_jsonl(root / "exports" / "messages.jsonl", records)])
    summary = build(settings)
    assert any("not in convo.toml" in note for note in summary.notes)
    return settings.warehouse, expected


def test_local_dates_follow_each_numbers_timezone_through_dst_and_odd_offsets(warehouse) -> None:
    path, expected = warehouse
    con = duckdb.connect(str(path), read_only=True)
    got = dict(con.execute("select message_id, local_date from messages").fetchall())
    zones = dict(con.execute("select message_id, timezone from messages").fetchall())
    con.close()
    assert got == {message_id: values[0] for message_id, values in expected.items()}
    assert {zones[m] for m in zones if m.split("-")[1] == str(UNCONFIGURED)} == {"UTC"}
    assert len(got) > 300


def test_the_regime_and_billing_date_switch_exactly_at_local_midnight(warehouse) -> None:
    path, expected = warehouse
    con = duckdb.connect(str(path), read_only=True)
    tables = {row[0] for row in con.execute("select table_name from duckdb_tables()").fetchall()}
    if "billable_units" not in tables:
        pytest.skip("no billing tables in this warehouse")
    got = {row[0]: (row[1], row[2]) for row in con.execute(
        "select message_id, billing_date, regime from billable_units where unit = 'message'").fetchall()}
    con.close()
    billed = {m: (values[1], values[2]) for m, values in expected.items() if values[1] is not None}
    assert got == billed
    # The switch itself, in every zone: the last second of 2026-09-30 local is B, midnight is C.
    for number, zone in {**ZONES, UNCONFIGURED: "UTC"}.items():
        midnight = datetime.combine(REGIME_C_STARTS, time(0), ZoneInfo(zone)).astimezone(UTC)
        at = {moment: n for n, moment in enumerate(instants(zone))}
        before, exactly = at[midnight - timedelta(seconds=1)], at[midnight]
        assert got[f"tpl-{number}-{before}"] == (date(2026, 9, 30), "B"), zone
        assert got[f"tpl-{number}-{exactly}"] == (REGIME_C_STARTS, "C"), zone
