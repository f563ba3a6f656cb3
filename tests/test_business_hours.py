"""Business hours: response times with the clock stopped outside a number's hours
([[phone_numbers]] business_hours, holidays), beside the wall-clock ones, to the second:
across nights, weekends, the end of DST and a holiday."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipeline.build import build
from pipeline.config import ConfigError, load
from pipeline.ingest import ingest
from tests.helpers import message, write_jsonl

NEW_YORK = 555000009
SAO_PAULO = 555000001
CONFIG = """\
[[phone_numbers]]
phone_number_id = 555000009
tenant_id = 1
timezone = "America/New_York"
business_hours = { mon = "09:00-17:00", tue = "09:00-17:00", wed = "09:00-17:00", thu = "09:00-17:00", fri = "09:00-17:00", sun = "00:00-24:00" }
holidays = ["2026-11-26"]

[[phone_numbers]]
phone_number_id = 555000001
tenant_id = 1
timezone = "America/Sao_Paulo"
"""
# (contact, [(UTC time, direction)]); New York is UTC-4 until 2026-11-01 02:00, then UTC-5.
THREADS = {
    # inside hours: Tue 2026-11-10 10:00 -> 10:07 local
    "+12125550001": [("2026-11-10T15:00:00Z", "inbound"), ("2026-11-10T15:07:00Z", "outbound")],
    # a night: Tue 16:30 -> Wed 09:15 local: 30 min + 15 min of business
    "+12125550002": [("2026-11-03T21:30:00Z", "inbound"), ("2026-11-04T14:15:00Z", "outbound")],
    # a weekend across the end of DST: Fri 2026-10-30 16:00 EDT, the contact writes again
    # Sat 15:00 and Sun 13:00, the answer Mon 09:30 EST: Fri 1 h + Sunday's 25 h + Mon 30 min
    "+12125550003": [("2026-10-30T20:00:00Z", "inbound"), ("2026-10-31T19:00:00Z", "inbound"),
                     ("2026-11-01T18:00:00Z", "inbound"), ("2026-11-02T14:30:00Z", "outbound")],
    # a holiday: Wed 2026-11-25 16:50, again Thu (Thanksgiving, closed) 16:00, answer Fri 09:05
    "+12125550004": [("2026-11-25T21:50:00Z", "inbound"), ("2026-11-26T21:00:00Z", "inbound"),
                     ("2026-11-27T14:05:00Z", "outbound")],
    # a Saturday (no hours): 11:00 -> 13:00 local, no business time at all
    "+12125550005": [("2026-11-07T16:00:00Z", "inbound"), ("2026-11-07T18:00:00Z", "outbound")],
}
# (wall-clock seconds, business seconds) of each first response, worked out by hand
EXPECTED = {
    "+12125550001": (7 * 60, 7 * 60),
    "+12125550002": (16 * 3600 + 45 * 60, 30 * 60 + 15 * 60),
    "+12125550003": (66 * 3600 + 30 * 60, 3600 + 25 * 3600 + 30 * 60),
    "+12125550004": (40 * 3600 + 15 * 60, 10 * 60 + 5 * 60),
    "+12125550005": (2 * 3600, 0),
}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("business_hours")
    (root / "convo.toml").write_text(CONFIG, encoding="utf-8")
    records = []
    for phone, thread in THREADS.items():
        for position, (at, direction) in enumerate(thread):
            fields: dict[str, object] = {"message_id": f"{phone}-{position}", "phone_number_id": NEW_YORK,
                                         "contact_phone": phone, "timestamp": at, "direction": direction}
            if direction == "outbound":
                fields.update(status="read", delivered_at=at)
            records.append(message(**fields))
    # the same night on the number without business hours: no business time
    records.append(message(message_id="sp-0", phone_number_id=SAO_PAULO, contact_phone="+5511987650001",
                           timestamp="2026-11-03T21:30:00Z"))
    records.append(message(message_id="sp-1", phone_number_id=SAO_PAULO, contact_phone="+5511987650001",
                           direction="outbound", status="read", timestamp="2026-11-04T14:15:00Z",
                           delivered_at="2026-11-04T14:15:00Z"))
    write_jsonl(root / "exports" / "messages.jsonl", records)
    settings = load(root / "convo.toml")
    ingest(settings.lake, [root / "exports"])
    build(settings)
    return settings.warehouse


def query(warehouse: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_first_response_in_business_time_to_the_second(warehouse: Path) -> None:
    found = query(warehouse, """
        select contact_key, first_response_seconds, first_response_business_seconds,
            reply_seconds, reply_business_seconds
        from conversation_outcomes where phone_number_id = 555000009 order by contact_key
    """)
    assert found == [(phone, float(wall), float(business), [float(wall)], [float(business)])
                     for phone, (wall, business) in sorted(EXPECTED.items())]


def test_a_number_without_business_hours_has_no_business_time(warehouse: Path) -> None:
    found = query(warehouse, """
        select first_response_seconds, first_response_business_seconds, reply_business_seconds,
            reply_business_median_seconds
        from conversation_outcomes where phone_number_id = 555000001
    """)
    assert found == [(float(16 * 3600 + 45 * 60), None, [], None)]


def test_close_rates_daily_has_business_medians(warehouse: Path) -> None:
    found = query(warehouse, """
        select local_date, first_response_median_seconds, first_response_business_median_seconds,
            reply_business_p90_seconds
        from close_rates_daily where phone_number_id = 555000009 order by local_date
    """)
    by_day = {"+12125550003": "2026-10-30", "+12125550002": "2026-11-03", "+12125550005": "2026-11-07",
              "+12125550001": "2026-11-10", "+12125550004": "2026-11-25"}
    assert [(str(day), wall, business, p90) for day, wall, business, p90 in found] == [
        (by_day[phone], float(EXPECTED[phone][0]), float(EXPECTED[phone][1]), float(EXPECTED[phone][1]))
        for phone in sorted(by_day, key=by_day.get)]


def test_business_clock_intervals_follow_the_local_day(warehouse: Path) -> None:
    # Sunday 2026-11-01 (the end of DST) is open 00:00-24:00 local: 25 hours
    found = query(warehouse, """
        select opens_at, closes_at, epoch(closes_at - opens_at) from int_business_clock
        where phone_number_id = 555000009 and opens_at >= '2026-11-01 04:00:00+00' and opens_at < '2026-11-02 06:00:00+00'
    """)
    assert [(str(a), str(b), s) for a, b, s in found] == [
        ("2026-11-01 04:00:00+00:00", "2026-11-02 05:00:00+00:00", 90000.0)]
    # Thanksgiving (a holiday) and Saturdays have no interval
    assert query(warehouse, """
        select count(*) from int_business_clock where phone_number_id = 555000009
            and opens_at::date in ('2026-11-26', '2026-11-07') and closes_at > opens_at
    """) == [(0,)]


@pytest.mark.parametrize(("entry", "error"), [
    ('business_hours = { mon = "9-17" }',
     "phone_numbers[0].business_hours.mon: not a range HH:MM-HH:MM: '9-17'"),
    ('business_hours = { monday = "09:00-17:00" }',
     "phone_numbers[0].business_hours.monday: unknown weekday (allowed: mon, tue, wed, thu, fri, sat, sun)"),
    ('business_hours = { mon = "17:00-09:00" }',
     "phone_numbers[0].business_hours.mon: '17:00-09:00' must open before it closes, within the day "
     "(24:00 at the latest)"),
    ('business_hours = { mon = "09:00-13:00,12:00-18:00" }',
     "phone_numbers[0].business_hours.mon: the ranges '09:00-13:00,12:00-18:00' overlap"),
    ('holidays = ["25/12/2026"]', "phone_numbers[0].holidays: not a date YYYY-MM-DD: '25/12/2026'"),
])
def test_bad_business_hours_are_one_line_errors(tmp_path: Path, entry: str, error: str) -> None:
    path = tmp_path / "convo.toml"
    path.write_text(f'[[phone_numbers]]\nphone_number_id = 1\ntenant_id = 1\ntimezone = "UTC"\n{entry}\n')
    with pytest.raises(ConfigError) as raised:
        load(path)
    assert str(raised.value) == f"{path.resolve()}: {error}"
