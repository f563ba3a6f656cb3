"""Exports -> lake: every input format, dedupe, every quarantine reason, idempotence."""

from __future__ import annotations

import csv
import gzip
import json
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import lake
from pipeline.ingest import ingest
from pipeline.readers import InputError
from tests.helpers import message, rows, write_jsonl

UTC = timezone.utc


def test_jsonl_messages_are_typed_and_timestamps_stored_in_utc(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in" / "m.jsonl", [
        message(message_id="a", timestamp="2026-09-01T10:00:00+05:30"),
        message(message_id="b", timestamp=1788256800, contact_phone="55 (11) 98765-4321"),
        message(message_id="c", direction="outbound", type="template", template_name="promo",
                template_category="MARKETING", status="read", timestamp="2026-09-01T23:30:00-03:00",
                delivered_at="2026-09-02T02:30:04Z",
                pricing={"billable": True, "pricing_model": "PMP", "type": "regular", "category": "marketing"}),
    ])
    summary = ingest(tmp_path / "lake", [source])
    assert (summary.total("read"), summary.total("accepted"), summary.total("quarantined")) == (3, 3, 0)
    got = rows(tmp_path / "lake", "messages",
               "message_id, sent_at, contact_phone, template_category, delivered_at, pricing_billable, pricing_model")
    assert got == [
        ("a", datetime(2026, 9, 1, 4, 30, tzinfo=UTC), "+5511987654321", None, None, None, None),
        ("b", datetime(2026, 9, 1, 10, 0, tzinfo=UTC), "+5511987654321", None, None, None, None),
        ("c", datetime(2026, 9, 2, 2, 30, tzinfo=UTC), "+5511987654321", "marketing",
         datetime(2026, 9, 2, 2, 30, 4, tzinfo=UTC), True, "PMP"),
    ]
    # Partitioned by the UTC day of sent_at.
    parts = sorted(p.parent.name for p in lake.files(tmp_path / "lake", "messages"))
    assert parts == ["date=2026-09-01", "date=2026-09-02"]


BAD_RECORDS = [
    ("not json at all", "malformed_json", None),
    ("[1, 2, 3]", "malformed_json", "not a JSON object"),
    (message(message_id=None), "missing_required_field", "message_id"),
    (message(tenant_id=None), "missing_required_field", "tenant_id"),
    (message(phone_number_id=""), "missing_required_field", "phone_number_id"),
    (message(direction=None), "missing_required_field", "direction"),
    (message(timestamp=None), "missing_required_field", "timestamp"),
    (message(contact_phone=None, contact_bsuid=None), "missing_required_field", "contact_bsuid or contact_phone"),
    (message(tenant_id="one"), "bad_value", "tenant_id"),
    (message(error_code="x13"), "bad_value", "error_code"),
    (message(pricing="regular"), "bad_value", "pricing"),
    (message(timestamp="yesterday"), "bad_timestamp", "timestamp"),
    (message(timestamp="2026-13-45T99:00:00Z"), "bad_timestamp", "timestamp"),
    (message(timestamp="2026-09-03T10:00:00"), "bad_timestamp", "timestamp"),       # no offset: ambiguous
    (message(timestamp=1788256800000), "bad_timestamp", "timestamp"),              # milliseconds
    (message(delivered_at="soon"), "bad_timestamp", "delivered_at"),
    (message(direction="sideways"), "unknown_enum", "direction"),
    (message(status="bounced"), "unknown_enum", "status"),
    (message(template_category="promo"), "unknown_enum", "template_category"),
    (message(referral_source="billboard"), "unknown_enum", "referral_source"),
    (message(pricing={"billable": False, "pricing_model": "CBP", "type": "gift", "category": "service"}),
     "unknown_enum", "pricing.type"),
    (message(contact_phone="+12ab"), "unparseable_phone", "contact_phone"),
    (message(contact_phone="call me"), "unparseable_phone", "contact_phone"),
    (message(contact_phone="+"), "unparseable_phone", "contact_phone"),
    (message(contact_bsuid="not a bsuid"), "unparseable_bsuid", "contact_bsuid"),
]


def test_every_quarantine_reason_with_line_and_raw_text(tmp_path: Path) -> None:
    records = [message(message_id="good")] + [record for record, _, _ in BAD_RECORDS]
    source = write_jsonl(tmp_path / "m.jsonl", records)
    # One line that is not UTF-8.
    with open(source, "ab") as handle:
        handle.write(b'{"message_id": "\xff\xfe"}\n')
    summary = ingest(tmp_path / "lake", [source])
    assert summary.total("read") == len(BAD_RECORDS) + 2
    assert summary.total("accepted") == 1
    assert summary.total("quarantined") == len(BAD_RECORDS) + 1
    got = rows(tmp_path / "lake", "quarantine", "line, reason, detail, raw, dataset", "line")
    expected = [(i + 2, reason, detail) for i, (_, reason, detail) in enumerate(BAD_RECORDS)]
    expected.append((len(BAD_RECORDS) + 2, "invalid_utf8", None))
    assert [(line, reason, detail) for line, reason, detail, _, _ in got] == expected
    raw_lines = source.read_bytes().decode("utf-8", errors="replace").splitlines()
    assert [raw for _, _, _, raw, _ in got] == raw_lines[1:]
    assert {dataset for *_, dataset in got} == {"messages"}


def test_latest_status_wins_across_files_and_runs(tmp_path: Path) -> None:
    sent = message(message_id="m1", direction="outbound", type="text", status="sent")
    delivered = dict(sent, status="delivered", delivered_at="2026-09-01T10:00:03Z",
                     pricing={"billable": False, "pricing_model": "PMP", "type": "free_customer_service",
                              "category": "service"})
    read = dict(sent, status="read", delivered_at=None, pricing=None)
    first = write_jsonl(tmp_path / "a" / "1.jsonl", [sent, delivered])
    summary = ingest(tmp_path / "lake", [first])
    assert (summary.total("accepted"), summary.total("duplicates")) == (1, 1)
    # A later file re-sends the message as read, without delivered_at or pricing;
    # an older "sent" copy arrives later still and must not win.
    second = write_jsonl(tmp_path / "b" / "2.jsonl", [read, sent])
    summary = ingest(tmp_path / "lake", [second])
    assert (summary.total("read"), summary.total("accepted"), summary.total("duplicates")) == (2, 0, 2)
    assert rows(tmp_path / "lake", "messages", "message_id, status, delivered_at, pricing_type") == [
        ("m1", "read", datetime(2026, 9, 1, 10, 0, 3, tzinfo=UTC), "free_customer_service"),
    ]


def test_ingesting_twice_changes_nothing(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "m.jsonl", [
        message(message_id="a"), message(message_id="b", timestamp="2026-09-02T00:00:00Z"), "garbage",
    ])
    first = ingest(tmp_path / "lake", [source])
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (tmp_path / "lake").rglob("*.parquet")}
    second = ingest(tmp_path / "lake", [source])
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (tmp_path / "lake").rglob("*.parquet")}
    assert (first.total("accepted"), first.total("quarantined")) == (2, 1)
    assert (second.total("read"), second.total("accepted"), second.total("duplicates"),
            second.total("quarantined")) == (3, 0, 2, 1)
    assert {p: b for p, (b, _) in after.items()} == {p: b for p, (b, _) in before.items()}
    # Unchanged partitions are not even rewritten.
    messages_files = [p for p in before if "messages" in p.parts]
    assert all(after[p][1] == before[p][1] for p in messages_files)
    assert len(rows(tmp_path / "lake", "quarantine")) == 1


def test_csv_messages_including_a_short_row(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    fields = list(message().keys())
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(fields)
        writer.writerow(["" if v is None else v for v in message(message_id="c1").values()])
        record = message(message_id="c2", direction="outbound", status="delivered",
                         pricing={"billable": False, "pricing_model": "PMP", "type": "free_customer_service",
                                  "category": "service"})
        writer.writerow(["" if v is None else (json.dumps(v) if isinstance(v, dict) else v) for v in record.values()])
        writer.writerow(["c3", "1"])
    summary = ingest(tmp_path / "lake", [path])
    assert (summary.total("read"), summary.total("accepted"), summary.total("quarantined")) == (3, 2, 1)
    assert rows(tmp_path / "lake", "messages", "message_id, tenant_id, pricing_type, contact_bsuid") == [
        ("c1", 1, None, None), ("c2", 1, "free_customer_service", None),
    ]
    assert rows(tmp_path / "lake", "quarantine", "line, reason") == [(4, "malformed_csv")]


def test_parquet_and_gzipped_jsonl(tmp_path: Path) -> None:
    table = pa.table({
        "message_id": ["p1", "p2"],
        "tenant_id": [1, 1],
        "phone_number_id": [555000001, 555000001],
        "contact_bsuid": ["BR.abc123", None],
        "contact_phone": [None, "+5511987654321"],
        "direction": ["inbound", "sideways"],
        "type": ["text", "text"],
        "status": ["received", "received"],
        "timestamp": pa.array([datetime(2026, 9, 1, 12), datetime(2026, 9, 1, 13)], pa.timestamp("us")),
    })
    pq.write_table(table, tmp_path / "m.parquet")
    gz = tmp_path / "more.jsonl.gz"
    with gzip.open(gz, "wt") as handle:
        handle.write(json.dumps(message(message_id="g1")) + "\n")
    summary = ingest(tmp_path / "lake", [tmp_path / "m.parquet", gz])
    assert [(f.format, f.read, f.accepted, f.quarantined) for f in summary.files] == [
        ("parquet", 2, 1, 1), ("jsonl", 1, 1, 0),
    ]
    # A naive Parquet timestamp is UTC by the format's convention.
    assert rows(tmp_path / "lake", "messages", "message_id, sent_at, contact_bsuid") == [
        ("g1", datetime(2026, 9, 1, 10, tzinfo=UTC), None),
        ("p1", datetime(2026, 9, 1, 12, tzinfo=UTC), "BR.abc123"),
    ]
    assert rows(tmp_path / "lake", "quarantine", "line, reason, detail") == [(2, "unknown_enum", "direction")]


def conversation(**fields: object) -> dict[str, object]:
    record: dict[str, object] = {
        "id": 10, "tenant_id": 1, "customer_id": None, "phone_number_id": 555000001,
        "contact_phone": "+5511987654321", "contact_bsuid": None, "contact_name": "Ana",
        "status": "ended", "ended_reason": "timeout", "messages_count": 4,
        "last_inbound_at": "2026-09-01T10:00:00Z", "last_outbound_at": "2026-09-01T10:05:00Z",
        "started_at": "2026-09-01T10:00:00Z", "ended_at": "2026-09-02T10:05:00Z",
    }
    record.update(fields)
    return record


def test_conversation_pages_events_and_templates(tmp_path: Path) -> None:
    pages = tmp_path / "conversations"
    pages.mkdir()
    (pages / "page-0001.json").write_text(json.dumps({
        "data": [conversation(id=10, status="active", ended_reason=None, ended_at=None, messages_count=2),
                 conversation(id=11, status="paused")],
        "page": 1, "has_more": True,
    }))
    (pages / "page-0002.json").write_text(json.dumps({"data": [conversation(id=10)], "page": 2, "has_more": False}))
    events = write_jsonl(tmp_path / "events" / "events.jsonl", [
        {"id": "e1", "type": "whatsapp.conversation.created", "created_at": "2026-09-01T10:00:00Z",
         "data": conversation(status="active", ended_reason=None, ended_at=None)},
        {"id": "e1", "type": "whatsapp.conversation.created", "created_at": "2026-09-01T10:00:00Z",
         "data": conversation(status="active", ended_reason=None, ended_at=None)},
        {"id": "e2", "type": "whatsapp.conversation.archived", "created_at": "2026-09-01T11:00:00Z",
         "data": conversation()},
        {"id": "e3", "type": "whatsapp.conversation.ended", "created_at": "2026-09-02T10:05:00Z"},
    ])
    templates = tmp_path / "templates.csv"
    templates.write_text(
        "name,language,category,updated_at\n"
        "order_update,en,utility,2026-01-01T00:00:00Z\n"
        "order_update,en,marketing,2026-09-15T00:00:00Z\n"
        "spring_sale,en,promo,2026-01-01T00:00:00Z\n"
    )
    summary = ingest(tmp_path / "lake", [pages, events, templates])
    by_file = {f.path.name: (f.dataset, f.read, f.accepted, f.duplicates, f.quarantined) for f in summary.files}
    assert by_file == {
        "page-0001.json": ("conversations", 2, 1, 0, 1),
        "page-0002.json": ("conversations", 1, 0, 1, 0),
        "events.jsonl": ("events", 4, 1, 1, 2),
        "templates.csv": ("templates", 3, 2, 0, 1),
    }
    # The ended version of conversation 10 (later state) wins over the active one.
    assert rows(tmp_path / "lake", "conversations", "id, status, messages_count") == [(10, "ended", 4)]
    assert rows(tmp_path / "lake", "events", "event_id, type, conversation_id") == [
        ("e1", "whatsapp.conversation.created", 10)]
    assert rows(tmp_path / "lake", "templates", "name, category", "updated_at") == [
        ("order_update", "utility"), ("order_update", "marketing")]
    assert sorted(rows(tmp_path / "lake", "quarantine", "dataset, reason, detail")) == [
        ("conversations", "unknown_enum", "status"),
        ("events", "missing_required_field", "data"),
        ("events", "unknown_enum", "type"),
        ("templates", "unknown_enum", "category"),
    ]


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("empty.jsonl", b"", "cannot tell which export"),
        ("blank.txt", b"", "empty file"),
        ("picture.bin", b"\x89PNG\r\n\x1a\n\x00\x00", "not a JSONL, JSON, CSV or Parquet file"),
        ("broken.parquet", b"PAR1 this is not really parquet", "cannot read"),
        ("fake.parquet", b"hello", "named .parquet but is not a Parquet file"),
        ("page.json", b'{"data": [1, 2', "not valid JSON"),
        ("other.jsonl", b'{"colour": "blue"}\n', "cannot tell which export"),
    ],
)
def test_unreadable_files_raise_input_error_and_leave_the_lake_alone(
        tmp_path: Path, name: str, content: bytes, error: str) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", [message(message_id="keep")])
    ingest(tmp_path / "lake", [good])
    before = {p: p.read_bytes() for p in (tmp_path / "lake").rglob("*.parquet")}
    bad = tmp_path / "in" / name
    bad.parent.mkdir()
    bad.write_bytes(content)
    with pytest.raises(InputError, match=error):
        ingest(tmp_path / "lake", [good, bad])
    assert {p: p.read_bytes() for p in (tmp_path / "lake").rglob("*.parquet")} == before


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file or folder"):
        ingest(tmp_path / "lake", [tmp_path / "nope"])


def test_a_second_ingest_into_the_same_lake_is_refused_while_one_runs(tmp_path: Path) -> None:
    from pipeline.locking import Busy, exclusive

    source = write_jsonl(tmp_path / "m.jsonl", [message()])
    with exclusive(tmp_path / "lake" / ".ingest.lock", "test holder"):
        with pytest.raises(Busy, match=r"an ingest into .*lake is already running \(pid \d+\)"):
            ingest(tmp_path / "lake", [source])
    assert ingest(tmp_path / "lake", [source]).total("accepted") == 1


def test_meta_pricing_analytics_response_and_flat_csv(tmp_path: Path) -> None:
    # DOMAIN R26: Meta's own numbers; cost kept as integer micro-units.
    response = tmp_path / "analytics.json"
    response.write_text(json.dumps({"pricing_analytics": {"data": [{"data_points": [
        {"start": 1788220800, "end": 1788307200, "phone_number": "15550001111", "country": "BR",
         "pricing_type": "REGULAR", "pricing_category": "MARKETING", "tier": "", "volume": 3, "cost": 0.1875},
        {"start": 1788220800, "end": 1788307200, "phone_number": "15550001111", "country": "IN",
         "pricing_type": "FREE_CUSTOMER_SERVICE", "pricing_category": "UTILITY", "volume": 7, "cost": 0},
        {"start": 1788220800, "end": 1788307200, "phone_number": "15550001111", "country": "IN",
         "pricing_type": "GIFT", "pricing_category": "UTILITY", "volume": 1, "cost": 0},
    ]}]}, "id": "123"}))
    flat = tmp_path / "analytics.csv"
    flat.write_text("start,end,phone_number,country,pricing_type,pricing_category,tier,volume,cost\n"
                    "1788220800,1788307200,15550001111,IN,REGULAR,AUTHENTICATION-INTERNATIONAL,0:100000,2,0.0619005\n"
                    "1788220800,1788307200,15550001111,IN,REGULAR,AUTHENTICATION,,-1,0\n")
    summary = ingest(tmp_path / "lake", [response, flat])
    assert [(f.dataset, f.format, f.read, f.accepted, f.quarantined) for f in summary.files] == [
        ("pricing_analytics", "json", 3, 2, 1), ("pricing_analytics", "csv", 2, 1, 1),
    ]
    assert rows(tmp_path / "lake", "pricing_analytics",
                "start_at, country_code, pricing_category, pricing_type, tier, volume, cost_micros",
                "country_code, pricing_category") == [
        (datetime(2026, 9, 1, tzinfo=UTC), "BR", "marketing", "regular", "", 3, 187_500),
        (datetime(2026, 9, 1, tzinfo=UTC), "IN", "authentication_international", "regular", "0:100000", 2, 61_901),
        (datetime(2026, 9, 1, tzinfo=UTC), "IN", "utility", "free_customer_service", "", 7, 0),
    ]
    assert sorted(rows(tmp_path / "lake", "quarantine", "reason, detail")) == [
        ("bad_value", "volume"), ("unknown_enum", "pricing_type"),
    ]


def test_skip_known_reads_only_new_or_changed_files(tmp_path: Path) -> None:
    old = write_jsonl(tmp_path / "in" / "day1.jsonl", [message(message_id="a")])
    ingest(tmp_path / "lake", [tmp_path / "in"], skip_known=True)
    new = write_jsonl(tmp_path / "in" / "day2.jsonl", [message(message_id="b")])
    summary = ingest(tmp_path / "lake", [tmp_path / "in"], skip_known=True)
    assert ([f.path.name for f in summary.files], summary.skipped) == (["day2.jsonl"], 1)
    write_jsonl(old, [message(message_id="a"), message(message_id="c")])     # a late record appended
    summary = ingest(tmp_path / "lake", [tmp_path / "in"], skip_known=True)
    assert ([f.path.name for f in summary.files], summary.skipped) == (["day1.jsonl"], 1)
    assert (summary.total("accepted"), summary.total("duplicates")) == (1, 1)
    assert rows(tmp_path / "lake", "messages", "message_id") == [("a",), ("b",), ("c",)]
    assert new.is_file()


def test_parquet_columns_are_validated_as_typed_and_rejected_rows_keep_their_raw_record(tmp_path: Path) -> None:
    """DuckDB reads Parquet itself: typed ids and timestamps stay typed, the rules are the JSON path's."""
    pricing = pa.struct([("billable", pa.bool_()), ("pricing_model", pa.string()),
                         ("type", pa.string()), ("category", pa.string())])
    table = pa.table({
        "message_id": ["ok", "big-id", "old", "odd", "no-ts"],
        "tenant_id": pa.array([1, 10**18, 1, 1, 1], pa.int64()),
        "phone_number_id": pa.array([555000001] * 5, pa.int32()),
        "contact_phone": ["+5511987654321", "5511987654321", "+5511987654321", "55 11 98765-4321", "+5511987654321"],
        "direction": ["outbound", "inbound", "inbound", "sideways", "inbound"],
        "type": ["template"] + ["text"] * 4,
        "status": ["delivered", "received", "received", "received", "received"],
        "timestamp": pa.array([datetime(2026, 9, 1, 12, tzinfo=UTC), datetime(2026, 9, 1, 12, tzinfo=UTC),
                               datetime(1999, 12, 31, 23, tzinfo=UTC), datetime(2026, 9, 1, 12, tzinfo=UTC), None],
                              pa.timestamp("us", tz="UTC")),
        "pricing": pa.array([{"billable": True, "pricing_model": "PMP", "type": "regular", "category": "marketing"},
                             None, None, None, None], pricing),
    })
    pq.write_table(table, tmp_path / "messages.parquet")
    summary = ingest(tmp_path / "lake", [tmp_path / "messages.parquet"])
    assert [(f.read, f.accepted, f.quarantined) for f in summary.files] == [(5, 1, 4)]
    assert rows(tmp_path / "lake", "messages",
                "message_id, tenant_id, phone_number_id, sent_at, pricing_billable, pricing_type, source_line") == [
        ("ok", 1, 555000001, datetime(2026, 9, 1, 12, tzinfo=UTC), True, "regular", 1)]
    assert rows(tmp_path / "lake", "quarantine", "line, reason, detail", "line") == [
        (2, "bad_value", "tenant_id"),                    # 19 digits: as from JSON text
        (3, "bad_timestamp", "timestamp"),
        (4, "unknown_enum", "direction"),
        (5, "missing_required_field", "timestamp"),
    ]
    [raw] = [r for (r,) in rows(tmp_path / "lake", "quarantine", "raw", "line")][2:3]
    assert json.loads(raw) == {
        "message_id": "odd", "tenant_id": 1, "phone_number_id": 555000001, "contact_phone": "55 11 98765-4321",
        "direction": "sideways", "type": "text", "status": "received", "timestamp": "2026-09-01 12:00:00+00",
        "pricing": None,
    }


def test_parquet_written_as_text_or_naive_is_read_like_the_same_jsonl(tmp_path: Path) -> None:
    """Ids as text, naive timestamps (UTC), pricing as JSON text: the lake rows equal the JSONL ones."""
    pricing = {"billable": False, "pricing_model": "PMP", "type": "free_customer_service", "category": "service"}
    records = [
        message(message_id="a", tenant_id="1", phone_number_id=" 555000001 ", error_code="131047",
                direction="outbound", status="failed", pricing=json.dumps(pricing)),
        message(message_id="b", tenant_id="x1", timestamp="2026-09-01T10:00:00Z"),
        message(message_id="c", delivered_at="2026-09-01T10:00:05Z", conversation_id="7"),
    ]
    def as_text(value: object) -> object:
        return None if value is None else str(value)

    naive = [dict(r, timestamp=datetime(2026, 9, 1, 10), delivered_at=None if r["delivered_at"] is None
                  else datetime(2026, 9, 1, 10, 0, 5),
                  **{k: as_text(r[k]) for k in ("tenant_id", "phone_number_id", "error_code", "conversation_id")})
             for r in records]
    pq.write_table(pa.Table.from_pylist(naive), tmp_path / "m.parquet")
    write_jsonl(tmp_path / "m.jsonl", records)
    columns = ("message_id, tenant_id, phone_number_id, error_code, sent_at, delivered_at, conversation_id, "
               "pricing_billable, pricing_type, source_line")
    ingest(tmp_path / "from-parquet", [tmp_path / "m.parquet"])
    ingest(tmp_path / "from-jsonl", [tmp_path / "m.jsonl"])
    from_parquet = rows(tmp_path / "from-parquet", "messages", columns)
    assert from_parquet == rows(tmp_path / "from-jsonl", "messages", columns)
    assert [row[0] for row in from_parquet] == ["a", "c"]
    assert (rows(tmp_path / "from-parquet", "quarantine", "line, reason, detail")
            == rows(tmp_path / "from-jsonl", "quarantine", "line, reason, detail")
            == [(2, "bad_value", "tenant_id")])


def test_conversations_as_parquet(tmp_path: Path) -> None:
    table = pa.Table.from_pylist([conversation(id=10), conversation(id=11, status="paused")])
    pq.write_table(table, tmp_path / "conversations.parquet")
    [counts] = ingest(tmp_path / "lake", [tmp_path / "conversations.parquet"]).files
    assert (counts.dataset, counts.format, counts.read, counts.accepted, counts.quarantined) == (
        "conversations", "parquet", 2, 1, 1)
    assert rows(tmp_path / "lake", "conversations", "id, status, source_line") == [(10, "ended", 1)]
    [(line, reason, detail, raw)] = rows(tmp_path / "lake", "quarantine", "line, reason, detail, raw")
    assert (line, reason, detail, json.loads(raw)["status"]) == (2, "unknown_enum", "status", "paused")


def test_a_message_seen_again_on_a_later_day_moves_and_leaves_its_old_partition(tmp_path: Path) -> None:
    first = write_jsonl(tmp_path / "1.jsonl", [message(message_id="m", status="received"),
                                               message(message_id="n", timestamp="2026-09-01T11:00:00Z")])
    ingest(tmp_path / "lake", [first])
    later = write_jsonl(tmp_path / "2.jsonl", [message(message_id="m", status="received",
                                                       timestamp="2026-09-03T10:00:00Z", contact_name="Bia")])
    summary = ingest(tmp_path / "lake", [later])
    assert (summary.total("accepted"), summary.total("duplicates")) == (0, 1)
    # Same rank, the stored row wins: nothing changes.
    assert summary.partitions_written == 0
    dup = write_jsonl(tmp_path / "3.jsonl", [
        message(message_id="m", direction="outbound", status="delivered", timestamp="2026-09-03T10:00:00Z"),
        message(message_id="m", direction="outbound", status="sent", timestamp="2026-09-03T10:00:00Z"),
        message(message_id="o", timestamp="2026-09-03T12:00:00Z"),
    ])
    summary = ingest(tmp_path / "lake", [dup])
    assert (summary.total("accepted"), summary.total("duplicates")) == (1, 2)
    assert rows(tmp_path / "lake", "messages", "message_id, status, sent_at") == [
        ("m", "delivered", datetime(2026, 9, 3, 10, tzinfo=UTC)),
        ("n", "received", datetime(2026, 9, 1, 11, tzinfo=UTC)),
        ("o", "received", datetime(2026, 9, 3, 12, tzinfo=UTC)),
    ]
    assert sorted(p.parent.name for p in lake.files(tmp_path / "lake", "messages")) == [
        "date=2026-09-01", "date=2026-09-03"]


def test_the_parquet_path_reads_the_fields_the_json_path_reads() -> None:
    """schema.MESSAGE_FIELDS (Parquet) and messages_json.sql's json_transform name the same fields."""
    import re

    from pipeline import paths, schema

    text = (paths.sql_dir() / "ingest" / "messages_json.sql").read_text()
    spec = json.loads(re.search(r"json_transform\(raw, '(\{.*?\})'\)", text, re.S).group(1))
    assert set(spec) == set(schema.MESSAGE_FIELDS) | {"pricing"}


def test_parquet_columns_that_differ_only_in_case_are_read_record_by_record(tmp_path: Path) -> None:
    """DuckDB's names are case-blind: such a file takes the JSON path, where only `status` is the status."""
    table = pa.Table.from_pylist([dict(message(message_id="a"), STATUS="bounced"),
                                  dict(message(message_id="b", status="sideways"), STATUS="received")])
    pq.write_table(table, tmp_path / "messages.parquet")
    summary = ingest(tmp_path / "lake", [tmp_path / "messages.parquet"])
    assert [(f.read, f.accepted, f.quarantined) for f in summary.files] == [(2, 1, 1)]
    assert rows(tmp_path / "lake", "messages", "message_id, status") == [("a", "received")]
    [(line, reason, detail, raw)] = rows(tmp_path / "lake", "quarantine", "line, reason, detail, raw")
    assert (line, reason, detail, json.loads(raw)["message_id"]) == (2, "unknown_enum", "status", "b")


def test_contested_keys_found_bucket_by_bucket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Big ingests look for duplicate keys a hash bucket at a time (memory); the answer is
    the same: here 2 staged rows per bucket (4 buckets for the first file, 2 for the second)."""
    import pipeline.ingest as ingest_module

    monkeypatch.setattr(ingest_module, "CONTESTED_BUCKET_ROWS", 2)
    sent = [message(message_id=f"m{i}", direction="outbound", type="text", status="sent") for i in range(6)]
    read = [dict(record, status="read") for record in sent[:3]]
    first = write_jsonl(tmp_path / "a" / "1.jsonl", [*sent, sent[0], read[0]])
    summary = ingest(tmp_path / "lake", [first])
    assert (summary.total("read"), summary.total("accepted"), summary.total("duplicates")) == (8, 6, 2)
    # m1 and m2 come again read (in the lake now), m5 again as it was, m9 is new.
    second = write_jsonl(tmp_path / "b" / "2.jsonl", [read[1], read[2], sent[5], dict(sent[5], message_id="m9")])
    summary = ingest(tmp_path / "lake", [second])
    assert (summary.total("read"), summary.total("accepted"), summary.total("duplicates")) == (4, 1, 3)
    assert rows(tmp_path / "lake", "messages", "message_id, status") == [
        ("m0", "read"), ("m1", "read"), ("m2", "read"), ("m3", "sent"), ("m4", "sent"), ("m5", "sent"),
        ("m9", "sent"),
    ]


@pytest.mark.parametrize("stage_rows", [100_000, 1])
def test_small_files_staged_together_keep_each_rows_file_line_and_counts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stage_rows: int) -> None:
    """Consecutive small files of one dataset are validated in one statement (STAGE_ROWS
    records at most; 1: every batch on its own): each row keeps its file and line, each file
    its counts and its own quarantine rows, whatever the grouping."""
    import pipeline.ingest as ingest_module

    monkeypatch.setattr(ingest_module, "STAGE_ROWS", stage_rows)
    folder = tmp_path / "in"
    (folder / "2").mkdir(parents=True)
    write_jsonl(folder / "1" / "messages.jsonl", [message(message_id="a"), "garbage", message(message_id="b")])
    (folder / "2" / "messages.csv").write_text(
        "message_id,tenant_id,phone_number_id,contact_phone,direction,type,status,timestamp\n"
        "c,1,555000001,+5511987654321,inbound,text,received,2026-09-02T10:00:00Z\n"
        "d,1,555000001,+5511987654321,sideways,text,received,2026-09-02T11:00:00Z\n")
    write_jsonl(folder / "3" / "events.jsonl", [
        {"id": "e1", "type": "whatsapp.conversation.ended", "created_at": "2026-09-01T10:05:00Z"}])
    write_jsonl(folder / "4" / "messages.jsonl", [])                          # no records at all
    write_jsonl(folder / "5" / "messages.jsonl", [message(message_id="a", timestamp="2026-09-03T09:00:00Z"),
                                              message(message_id="e", timestamp="2026-09-01T12:00:00Z")])
    summary = ingest(tmp_path / "lake", [folder])
    assert [(str(f.path.relative_to(folder)), f.dataset, f.read, f.accepted, f.duplicates, f.quarantined) for f in summary.files] == [
        ("1/messages.jsonl", "messages", 3, 2, 0, 1),
        ("2/messages.csv", "messages", 2, 1, 0, 1),
        ("3/events.jsonl", "events", 1, 0, 0, 1),
        ("4/messages.jsonl", "messages", 0, 0, 0, 0),
        ("5/messages.jsonl", "messages", 2, 1, 1, 0),
    ]
    stored = rows(tmp_path / "lake", "messages", "message_id, sent_at, source_file, source_line", "1")
    assert [(m, sent, str(Path(file).relative_to(folder)), line) for m, sent, file, line in stored] == [
        ("a", datetime(2026, 9, 1, 10, 0, tzinfo=UTC), "1/messages.jsonl", 1),    # first sighting kept
        ("b", datetime(2026, 9, 1, 10, 0, tzinfo=UTC), "1/messages.jsonl", 3),
        ("c", datetime(2026, 9, 2, 10, 0, tzinfo=UTC), "2/messages.csv", 2),
        ("e", datetime(2026, 9, 1, 12, 0, tzinfo=UTC), "5/messages.jsonl", 2),
    ]
    quarantined = rows(tmp_path / "lake", "quarantine", "source_file, line, dataset, reason, detail", "1, 2")
    assert [(str(Path(file).relative_to(folder)), *rest) for file, *rest in quarantined] == [
        ("1/messages.jsonl", 2, "messages", "malformed_json", None),
        ("2/messages.csv", 3, "messages", "unknown_enum", "direction"),
        ("3/events.jsonl", 1, "events", "missing_required_field", "data"),
    ]
    # One partition file per day, its rows in input order.
    day_one = lake.partition_path(tmp_path / "lake", ingest_module.schema.DATASETS["messages"], "2026-09-01")
    assert pq.read_table(day_one, columns=["message_id"]).column(0).to_pylist() == ["a", "b", "e"]
