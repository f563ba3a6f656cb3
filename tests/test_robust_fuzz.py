"""Fuzzing ingest (issue 7.1): any bytes in any input file give accepted or
quarantined rows, never a crash and never a lost valid row.

Real simulated exports (messages as JSONL, gzipped JSONL, CSV and Parquet; a
conversations API page; the events log; the templates catalog; Meta's
pricing_analytics response) are mutated by hypothesis: bytes flipped, inserted
and deleted, lines dropped, duplicated, swapped and truncated, fields set to
adversarial JSON values or removed, Parquet columns retyped. Every example is
ingested into a fresh lake and checked:

- the result is a summary, or an InputError of one line that wrote nothing;
- records read = accepted + duplicates + quarantined, for every file, and read
  is the number of records in the file, counted here independently;
- the lake holds `accepted` rows and `quarantined` quarantine rows, each with a
  documented reason;
- every record the mutations left untouched is in the lake, and when nothing
  else in the file carries its key, exactly as a clean ingest stored it.
The conversations page is fuzzed twice: read whole, and streamed as big documents are.

Examples per test: 20 by default (the suite stays fast). A longer campaign:
    CONVO_FUZZ_EXAMPLES=2000 .venv/bin/python -m pytest tests/test_robust_fuzz.py -q
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import lake, schema
from pipeline.ingest import ingest
from pipeline.readers import InputError
from pipeline.simulate import SimulateSettings, simulate
from tests.robust import REASONS, lake_rows

CAMPAIGN = "CONVO_FUZZ_EXAMPLES" in os.environ
FUZZ = settings(
    max_examples=int(os.environ.get("CONVO_FUZZ_EXAMPLES", "20")),
    deadline=None,
    derandomize=not CAMPAIGN,        # the default run is the same every time; a campaign explores
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
ANY_BYTES = settings(FUZZ, max_examples=max(FUZZ.max_examples // 2, 10))

KEYS = {name: dataset.key for name, dataset in schema.DATASETS.items()}
SOURCE_COLUMNS = ("source_file", "source_line")


# ---------------------------------------------------------------- the corpus


@dataclass(repr=False)     # hypothesis prints arguments: keep the bytes out of it
class Base:
    """One real input file, and what a clean ingest made of it."""
    name: str              # file name (its extension and prefix carry format and dataset hints)
    data: bytes
    dataset: str
    kind: str              # lines | csv | page | analytics | parquet | gz
    keys: list[tuple] = field(default_factory=list)     # record i -> its natural key in the lake
    rows: dict[tuple, dict] = field(default_factory=dict)   # key -> lake row (less source_*)
    key_text: list[bytes | None] = field(default_factory=list)   # record i -> bytes that name its key

    def __repr__(self) -> str:
        return f"Base({self.name})"

    def _repr_pretty_(self, printer: object, cycle: bool) -> None:
        printer.text(repr(self))


class Mutated:
    """A mutated file: its bytes, the clean records it still holds untouched, whether the oracle applies."""

    def _repr_pretty_(self, printer: object, cycle: bool) -> None:
        printer.text(repr(self))

    def __init__(self, data: bytes, untouched: list[int], oracle: bool) -> None:
        self.data, self.untouched, self.oracle = data, untouched, oracle

    def __repr__(self) -> str:
        import hashlib

        return (f"Mutated({len(self.data)} bytes, sha256 {hashlib.sha256(self.data).hexdigest()[:12]}, "
                f"{len(self.untouched)} untouched, oracle={self.oracle})")


def _messages_parquet(lake_dir: Path, out: Path) -> None:
    """Messages in the export's own columns, typed as Parquet writers type them."""
    import duckdb

    files = lake.sql_list(lake.files(lake_dir, "messages"))
    duckdb.sql(f"""
        copy (
            select message_id, tenant_id, phone_number_id, contact_bsuid, contact_phone, contact_name,
                direction, type, template_name, template_category, status, error_code,
                sent_at as "timestamp", delivered_at, referral_source, conversation_id,
                case when pricing_model is not null then {{'billable': pricing_billable,
                    'pricing_model': pricing_model, 'type': pricing_type, 'category': pricing_category}} end
                    as pricing
            from read_parquet({files}) order by source_line
        ) to '{out}' (format parquet)
    """)


def _messages_csv(jsonl: bytes) -> bytes:
    records = [orjson.loads(line) for line in jsonl.splitlines() if line.strip()]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(records[0]), lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({k: ("" if v is None else json.dumps(v) if isinstance(v, dict) else v)
                         for k, v in record.items()})
    return text.getvalue().encode()


def _analytics() -> bytes:
    points = [
        {"start": 1788220800 + day * 86400, "end": 1788307200 + day * 86400, "phone_number": "15550001111",
         "country": country, "pricing_type": pricing_type, "pricing_category": category, "tier": "",
         "volume": 3 + day, "cost": round(0.0125 * (3 + day), 6)}
        for day in range(3)
        for country in ("BR", "IN", "US")
        for category, pricing_type in (("MARKETING", "REGULAR"), ("SERVICE", "FREE_CUSTOMER_SERVICE"))
    ]
    return orjson.dumps({"pricing_analytics": {"data": [{"data_points": points}]}, "id": "123"})


def _clean(base: Base, work: Path) -> Base:
    """Ingest the unmutated file: every record accepted; remember each record's key and row."""
    path = work / "clean" / base.name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base.data)
    summary = ingest(work / "clean-lake" / base.name, [path])
    assert summary.total("read") == summary.total("accepted") > 0, summary
    rows = sorted(lake_rows(work / "clean-lake" / base.name, base.dataset), key=lambda r: r["source_line"])
    base.keys = [tuple(row[k] for k in KEYS[base.dataset]) for row in rows]
    base.rows = {key: _strip(row) for key, row in zip(base.keys, rows)}
    if base.dataset in ("messages", "events"):
        base.key_text = [key[0].encode() for key in base.keys]
    elif base.dataset == "conversations":
        base.key_text = [b'"id":%d,' % key[0] for key in base.keys]
    else:
        base.key_text = [None] * len(base.keys)
    return base


def _strip(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in SOURCE_COLUMNS}


class Corpus(dict):
    def __repr__(self) -> str:
        return f"Corpus({', '.join(self)})"

    def _repr_pretty_(self, printer: object, cycle: bool) -> None:
        printer.text(repr(self))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Base]:
    work = tmp_path_factory.mktemp("fuzz-corpus")
    sim = simulate(SimulateSettings(out=work / "sim", contacts=30, days=5)).out / "exports"
    jsonl = (sim / "messages" / "messages-2026-09-05.jsonl").read_bytes()
    bases = [
        Base("messages-fuzz.jsonl", jsonl, "messages", "lines"),
        Base("messages-fuzz.jsonl.gz", gzip.compress(jsonl, mtime=0), "messages", "gz"),
        Base("messages-fuzz.csv", _messages_csv(jsonl), "messages", "csv"),
        Base("conversations-page-0001.json", (sim / "conversations" / "page-0001.json").read_bytes(),
             "conversations", "page"),
        Base("events-fuzz.jsonl", b"\n".join((sim / "events" / "events.jsonl").read_bytes().splitlines()[:60])
             + b"\n", "events", "lines"),
        Base("templates-fuzz.csv", (sim / "templates" / "templates.csv").read_bytes(), "templates", "csv"),
        Base("pricing_analytics-fuzz.json", _analytics(), "pricing_analytics", "analytics"),
    ]
    corpus = Corpus((base.name, _clean(base, work)) for base in bases)
    parquet = work / "messages-fuzz.parquet"
    _messages_parquet(work / "clean-lake" / "messages-fuzz.jsonl", parquet)
    corpus[parquet.name] = _clean(Base(parquet.name, parquet.read_bytes(), "messages", "parquet"), work)
    return corpus


# ---------------------------------------------------------------- mutations

FIELD_NAMES = (
    "message_id", "tenant_id", "phone_number_id", "contact_bsuid", "contact_phone", "contact_name",
    "direction", "type", "template_name", "template_category", "status", "error_code", "timestamp",
    "delivered_at", "referral_source", "conversation_id", "pricing", "id", "started_at", "ended_at",
    "messages_count", "created_at", "data", "name", "language", "category", "updated_at", "volume",
    "pricing_category", "start", "cost", "country", "", "\u0000", "x" * 300,
)
NASTY_STRINGS = (
    "", " ", "\u0000", "\ufeff", "\ud7ff", "\U0010ffff", "null", "NaN", "Infinity", "-0", "1e400",
    "99999999999999999999", "-9223372036854775809", "9223372036854775807", "0x1F", "1_000",
    "2026-09-01T10:00:00Z", "2026-09-01T10:00:00", "2026-09-01 10:00:00+05:30", "2026-09-01T10:00:00+0530",
    "2026-09-01T10:00:00+05", "2026-02-30T10:00:00Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
    "1788256800", "1788256800.5", "1788256800000", "-62135596800", "99999999999", "+5511987654321",
    "+1 (809) 555-0100", "BR.abc123", "br.ABC", "<script>alert(1)</script>", "' or 1=1 --", "\"",
    "{}", "[]", "{\"billable\": true}", "x" * 70_000, "é" * 40_000, "\r\n", "\u2028", "inbound", "READ",
    "Marketing", "whatsapp.conversation.created",
)
scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(NASTY_STRINGS),
    st.text(max_size=30),
)
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(FIELD_NAMES[:30]) | st.text(max_size=4),
                                                 inner, max_size=3)), max_leaves=6)
SPECIAL_BYTES = [b"\n", b"\r", b"\x00", b"\xff", b"\xc3", b"\xed\xa0\x80", b'"', b",", b"{", b"}", b"[",
                 b"]", b":", b"\\", b"\\u", b"\xef\xbb\xbf", b"\t", b" ", b"\n\n", b"\"\"", b"\x1f\x8b"]
byte_strings = st.one_of(st.sampled_from(SPECIAL_BYTES), st.binary(min_size=1, max_size=12))


@dataclass
class Record:
    """One record (or line) of a file being mutated: its bytes or value, where it came from."""
    value: object
    origin: int | None          # index of the clean record it still is, None once touched


def _touch(record: Record, value: object) -> None:
    record.value = value
    record.origin = None


def _mutate_bytes(draw: st.DrawFn, data: bytes) -> bytes:
    if not data:
        return draw(byte_strings)
    position = draw(st.integers(0, len(data)))
    action = draw(st.sampled_from(["flip", "insert", "delete"]))
    if action == "flip" and position < len(data):
        return data[:position] + bytes([data[position] ^ draw(st.integers(1, 255))]) + data[position + 1:]
    if action == "delete":
        return data[:position] + data[position + draw(st.integers(1, 40)):]
    return data[:position] + draw(byte_strings) + data[position:]


LINE_INSERTS = st.sampled_from([b"", b"   ", b"\r", b"\x00"]) | byte_strings


def _mutate_records(draw: st.DrawFn, records: list[Record], edit: callable, first: int = 0,
                    inserts: st.SearchStrategy = LINE_INSERTS) -> None:
    """Whole-record mutations, and `edit` (format-specific) on one record."""
    for _ in range(draw(st.integers(1, 12))):
        if len(records) <= first:
            records.append(Record(draw(inserts), None))
        index = draw(st.integers(first, len(records) - 1))
        action = draw(st.sampled_from(["edit", "edit", "edit", "drop", "duplicate", "swap", "insert"]))
        if action == "edit":
            edit(draw, records[index])
        elif action == "drop":
            del records[index]
        elif action == "duplicate":
            records.insert(draw(st.integers(first, len(records))), Record(records[index].value, None))
        elif action == "swap":
            other = draw(st.integers(first, len(records) - 1))
            records[index], records[other] = records[other], records[index]
        else:
            records.insert(index, Record(draw(inserts), None))


def _edit_jsonl_line(draw: st.DrawFn, record: Record) -> None:
    line = record.value
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        value = None
    if isinstance(value, dict) and draw(st.booleans()):
        name = draw(st.sampled_from(FIELD_NAMES))
        if draw(st.integers(0, 4)) == 0:
            value.pop(name, None)
        else:
            value[name] = draw(json_values)
        _touch(record, json.dumps(value, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass"))
    else:
        _touch(record, _mutate_bytes(draw, line))


def _edit_csv_line(draw: st.DrawFn, record: Record) -> None:
    line = record.value.decode("utf-8", "replace")
    try:
        rows = list(csv.reader([line]))
    except csv.Error:                      # a mutated line with a bare CR: edit its bytes instead
        rows = []
    if rows and rows[0] and draw(st.booleans()):
        row = rows[0]
        row[draw(st.integers(0, len(row) - 1))] = draw(st.sampled_from(NASTY_STRINGS) | st.text(max_size=20))
        if draw(st.integers(0, 5)) == 0:
            row.append("extra")
        text = io.StringIO()
        csv.writer(text, lineterminator="").writerow(row)
        _touch(record, text.getvalue().encode("utf-8", "surrogatepass"))
    else:
        _touch(record, _mutate_bytes(draw, record.value))


def _edit_object(draw: st.DrawFn, record: Record) -> None:
    value = record.value
    if not isinstance(value, dict) or draw(st.integers(0, 6)) == 0:
        _touch(record, draw(json_values))
        return
    value = dict(value)
    name = draw(st.sampled_from(FIELD_NAMES))
    if draw(st.integers(0, 4)) == 0:
        value.pop(name, None)
    else:
        value[name] = draw(json_values)
    _touch(record, value)


def _text_records(data: bytes) -> list[Record]:
    lines = data.split(b"\n")
    return [Record(line, None) for line in lines]


def _number_lines(records: list[Record], base: Base, first: int) -> None:
    """Give each clean line its record index (lines were read in order, blanks skipped)."""
    index = 0
    for record in records[first:]:
        if record.value.strip():
            record.origin = index
            index += 1
    assert index == len(base.keys)


@st.composite
def mutated_lines(draw: st.DrawFn, base: Base) -> Mutated:
    """A JSONL or CSV file: (bytes, clean record indexes left untouched, whether the oracle applies)."""
    records = _text_records(base.data)
    first = 1 if base.kind == "csv" else 0
    _number_lines(records, base, first)
    editor = _edit_csv_line if base.kind == "csv" else _edit_jsonl_line
    _mutate_records(draw, records, editor, first)
    if base.kind == "csv" and draw(st.integers(0, 5)) == 0:
        _touch(records[0], _mutate_bytes(draw, records[0].value))            # the header too
    data = b"\n".join(record.value for record in records)
    oracle = True
    if draw(st.integers(0, 6)) == 0:
        data = data[:draw(st.integers(0, len(data)))]                       # a truncated file
        oracle = False
    if base.kind == "csv":
        # An unbalanced quote legitimately joins the lines after it into one field.
        oracle = oracle and records[0].value == base.data.split(b"\n")[0]     # the header as it was
        oracle = oracle and not any(b'"' in r.value or b"\r" in r.value for r in records if r.origin is None)
    return Mutated(data, [r.origin for r in records if r.origin is not None], oracle)


@st.composite
def mutated_page(draw: st.DrawFn, base: Base) -> Mutated:
    document = orjson.loads(base.data)
    if base.kind == "analytics":
        container = document["pricing_analytics"]["data"][0]
        listed = container["data_points"]
    else:
        container = document
        listed = document["data"]
    records = [Record(value, index) for index, value in enumerate(listed)]
    _mutate_records(draw, records, _edit_object, inserts=json_values)
    if base.kind == "analytics":
        container["data_points"] = [r.value for r in records]
    else:
        document["data"] = [r.value for r in records]
        if draw(st.integers(0, 4)) == 0:
            key = draw(st.sampled_from(["page", "has_more"]))
            document[key] = draw(json_values)
    data = json.dumps(document, ensure_ascii=draw(st.booleans()),
                      indent=draw(st.sampled_from([None, 2]))).encode("utf-8", "surrogatepass")
    oracle = True
    for _ in range(draw(st.integers(0, 2))):
        data = _mutate_bytes(draw, data)
        oracle = False
    return Mutated(data, [r.origin for r in records if r.origin is not None], oracle)


@st.composite
def mutated_gzip(draw: st.DrawFn, base: Base) -> Mutated:
    text = Base(base.name, gzip.decompress(base.data), base.dataset, "lines", keys=base.keys)
    inner = draw(mutated_lines(text))
    data, untouched, oracle = gzip.compress(inner.data, mtime=0), inner.untouched, inner.oracle
    if draw(st.integers(0, 3)) == 0:
        data = _mutate_bytes(draw, data)
        oracle = False
    return Mutated(data, untouched, oracle)


def _parquet_value(draw: st.DrawFn, column: pa.Field) -> object:
    if pa.types.is_integer(column.type):
        return draw(st.none() | st.integers(-(2**63), 2**63 - 1))
    if pa.types.is_timestamp(column.type):
        return draw(st.none() | st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                                             timezones=st.just(timezone.utc)))
    if pa.types.is_struct(column.type):
        return draw(st.none() | st.fixed_dictionaries(
            {f.name: (st.none() | st.booleans()) if pa.types.is_boolean(f.type)
             else (st.none() | st.sampled_from(NASTY_STRINGS) | st.text(max_size=10)) for f in column.type}))
    return draw(st.none() | st.sampled_from(NASTY_STRINGS) | st.text(max_size=20))


@st.composite
def mutated_parquet(draw: st.DrawFn, base: Base) -> Mutated:
    table = pq.read_table(pa.BufferReader(base.data))
    table = table.cast(pa.schema([f.with_nullable(True) for f in table.schema]))
    records = [Record(row, index) for index, row in enumerate(table.to_pylist())]

    def edit(draw: st.DrawFn, record: Record) -> None:
        column = table.schema.field(draw(st.integers(0, len(table.schema) - 1)))
        _touch(record, {**record.value, column.name: _parquet_value(draw, column)})

    _mutate_records(draw, records, edit, inserts=st.builds(dict))
    mutated = pa.Table.from_pylist([r.value for r in records], schema=table.schema)
    # Writers differ: ids as text, naive timestamps (UTC by the format's convention), pricing as JSON text.
    for name in draw(st.lists(st.sampled_from(["tenant_id", "phone_number_id", "timestamp", "delivered_at",
                                               "error_code", "pricing"]), max_size=3, unique=True)):
        index = mutated.schema.get_field_index(name)
        column = mutated.column(index)
        if pa.types.is_timestamp(column.type) and draw(st.booleans()):
            column = column.cast(pa.timestamp("us"))
        elif pa.types.is_struct(column.type):
            column = pa.array([None if v is None else json.dumps(v) for v in column.to_pylist()], pa.string())
        else:
            column = pa.array([None if v is None else str(v) for v in column.to_pylist()], pa.string())
        mutated = mutated.set_column(index, name, column)
    sink = io.BytesIO()
    pq.write_table(mutated, sink, row_group_size=draw(st.sampled_from([7, 1000])))
    data = sink.getvalue()
    oracle = True
    for _ in range(draw(st.integers(0, 2) | st.just(0))):
        data = _mutate_bytes(draw, data)
        oracle = False
    return Mutated(data, [r.origin for r in records if r.origin is not None], oracle)


MUTATORS = {"lines": mutated_lines, "csv": mutated_lines, "page": mutated_page, "analytics": mutated_page,
            "gz": mutated_gzip, "parquet": mutated_parquet}


# ---------------------------------------------------------------- the checks


def expected_records(name: str, data: bytes) -> int | None:
    """Records in a file, counted without convo's readers (None: no simple count)."""
    if name.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except Exception:  # noqa: BLE001 - a broken gzip has no count; ingest must say InputError
            return None
        name = name.removesuffix(".gz")
    if name.endswith(".jsonl"):
        return sum(1 for line in data.split(b"\n")
                   if line.removesuffix(b"\r").decode("utf-8", "replace").strip())
    if name.endswith(".parquet"):
        return pq.ParquetFile(pa.BufferReader(data)).metadata.num_rows
    if name.endswith(".json"):
        document = json.loads(data)
        if "pricing_analytics" in document:
            return sum(len(block.get("data_points") or []) for block in document["pricing_analytics"]["data"])
        return len(document["data"])
    return None


def check_ingest(base: Base, mutated: Mutated) -> str:
    data, untouched, oracle = mutated.data, mutated.untouched, mutated.oracle
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        path = work / "in" / base.name
        path.parent.mkdir()
        path.write_bytes(data)
        lake_dir = work / "lake"
        try:
            summary = ingest(lake_dir, [path])
        except InputError as exc:
            message = str(exc)
            assert message and "\n" not in message, repr(message)
            for dataset in (*schema.DATASETS, "quarantine"):
                assert lake.files(lake_dir, dataset) == [], f"{dataset} written before the error"
            return "input_error"
        [counts] = summary.files
        assert counts.read == counts.accepted + counts.duplicates + counts.quarantined, counts
        try:
            expected = expected_records(base.name, data)
        except (ValueError, KeyError, TypeError, AttributeError, pa.ArrowException):
            expected = None
        if expected is not None and counts.dataset == base.dataset:
            assert counts.read == expected, (counts, expected)
        stored = lake_rows(lake_dir, counts.dataset)
        assert len(stored) == counts.accepted
        quarantined = lake_rows(lake_dir, "quarantine")
        assert len(quarantined) == counts.quarantined
        assert {row["reason"] for row in quarantined} <= REASONS
        assert all(isinstance(row["raw"], str) and row["line"] >= 1 for row in quarantined)
        if oracle:
            assert counts.dataset == base.dataset, f"one mutated record made the file look like {counts.dataset}"
            by_key = {tuple(row[k] for k in KEYS[base.dataset]): row for row in stored}
            text = gzip.decompress(data) if base.kind == "gz" else data
            for index in untouched:
                key = base.keys[index]
                assert key in by_key, f"valid record {index} ({key}) was lost"
                needle = base.key_text[index]
                if needle is not None and base.kind != "parquet" and text.count(needle) == 1:
                    assert _strip(by_key[key]) == base.rows[key], f"record {index} changed"
        return "ingested"


def _fuzz(corpus: dict[str, Base], name: str, data: st.DataObject) -> None:
    base = corpus[name]
    mutated = data.draw(MUTATORS[base.kind](base), label="mutation")
    try:
        check_ingest(base, mutated)
    except BaseException:
        import hashlib

        digest = hashlib.sha256(mutated.data).hexdigest()[:12]
        keep = Path(os.environ.get("CONVO_FUZZ_FAILURES", tempfile.gettempdir())) / f"fuzz-{digest}-{base.name}"
        keep.write_bytes(mutated.data)
        print(f"failing input kept at {keep}")
        raise


@FUZZ
@given(data=st.data())
def test_fuzz_messages_jsonl(corpus: dict[str, Base], data: st.DataObject) -> None:
    _fuzz(corpus, "messages-fuzz.jsonl", data)


@FUZZ
@given(data=st.data())
def test_fuzz_messages_gzipped_jsonl(corpus: dict[str, Base], data: st.DataObject) -> None:
    _fuzz(corpus, "messages-fuzz.jsonl.gz", data)


@FUZZ
@given(data=st.data())
def test_fuzz_messages_csv(corpus: dict[str, Base], data: st.DataObject) -> None:
    _fuzz(corpus, "messages-fuzz.csv", data)


@FUZZ
@given(data=st.data())
def test_fuzz_messages_parquet(corpus: dict[str, Base], data: st.DataObject) -> None:
    _fuzz(corpus, "messages-fuzz.parquet", data)


@FUZZ
@given(data=st.data())
def test_fuzz_conversations_page(corpus: dict[str, Base], data: st.DataObject) -> None:
    _fuzz(corpus, "conversations-page-0001.json", data)


@FUZZ
@given(data=st.data())
def test_fuzz_conversations_page_streamed(corpus: dict[str, Base], data: st.DataObject) -> None:
    """The same, through the streaming reader big documents take (its threshold set to 0)."""
    from pipeline import readers

    threshold, readers.STREAM_JSON_BYTES = readers.STREAM_JSON_BYTES, 0
    try:
        _fuzz(corpus, "conversations-page-0001.json", data)
    finally:
        readers.STREAM_JSON_BYTES = threshold


@FUZZ
@given(data=st.data())
def test_fuzz_events_jsonl(corpus: dict[str, Base], data: st.DataObject) -> None:
    _fuzz(corpus, "events-fuzz.jsonl", data)


@FUZZ
@given(data=st.data())
def test_fuzz_templates_csv(corpus: dict[str, Base], data: st.DataObject) -> None:
    _fuzz(corpus, "templates-fuzz.csv", data)


@FUZZ
@given(data=st.data())
def test_fuzz_pricing_analytics(corpus: dict[str, Base], data: st.DataObject) -> None:
    _fuzz(corpus, "pricing_analytics-fuzz.json", data)


NAMES = ("messages.jsonl", "messages.csv", "export.json", "messages.parquet", "messages.jsonl.gz",
         "conversations", "events.ndjson", "templates.csv.gz", "picture.png")


@ANY_BYTES
@given(name=st.sampled_from(NAMES), data=st.binary(max_size=400) | st.builds(
    lambda head, tail: head + tail,
    st.sampled_from([b"PAR1", b"\x1f\x8b", b"{", b"[", b"\xef\xbb\xbf{", b"message_id,", b'{"data": [']),
    st.binary(max_size=200)))
def test_any_bytes_in_any_file(name: str, data: bytes) -> None:
    """Arbitrary bytes under any name: a summary that adds up, or a one-line InputError."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        try:
            summary = ingest(Path(tmp) / "lake", [path])
        except InputError as exc:
            assert str(exc) and "\n" not in str(exc)
            return
        for counts in summary.files:
            assert counts.read == counts.accepted + counts.duplicates + counts.quarantined
        assert len(lake_rows(Path(tmp) / "lake", "quarantine")) == summary.total("quarantined")


def test_the_corpus_is_accepted_whole(corpus: dict[str, Base]) -> None:
    """The unmutated files: the oracle's baseline (every record accepted, keys unique)."""
    for base in corpus.values():
        assert len(set(base.keys)) == len(base.keys) > 10, base.name
        assert check_ingest(base, Mutated(base.data, list(range(len(base.keys))), True)) == "ingested"



# ---------------------------------------------------------------- what fuzzing found (kept as plain tests)

def _gzip_damaged() -> bytes:
    data = bytearray(gzip.compress(b"".join(orjson.dumps({"message_id": f"m{i}", "n": "x" * 40}) + b"\n"
                                            for i in range(200)), mtime=0))
    data[len(data) // 2] ^= 0xFF
    return bytes(data)


def _parquet_damaged() -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.table({"message_id": [f"m{i}" for i in range(100)], "tenant_id": list(range(100))}), sink)
    data = bytearray(sink.getvalue())
    data[4] ^= 0xFF
    return bytes(data)


@pytest.mark.parametrize("name, data, error", [
    # A .gz that is not gzip: BadGzipFile escaped as a traceback.
    ("messages.jsonl.gz", b"garbage, not gzip\n", "Not a gzipped file"),
    # A gzip stream cut short: EOFError escaped.
    ("messages.jsonl.gz", gzip.compress(b'{"message_id": "a"}\n' * 50, mtime=0)[:30], "ended before"),
    # A corrupt deflate block: zlib.error escaped.
    ("messages.jsonl.gz", _gzip_damaged(), "Error -3 while decompressing"),
    # A broken page header: Arrow's message spans lines; an InputError is one line.
    ("messages.parquet", _parquet_damaged(), "Deserializing page header failed"),
])
def test_a_damaged_file_is_a_one_line_input_error(tmp_path: Path, name: str, data: bytes, error: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(InputError) as raised:
        ingest(tmp_path / "lake", [path])
    assert error in str(raised.value) and "\n" not in str(raised.value)
    assert not (tmp_path / "lake" / "messages").exists()


def test_a_csv_field_past_the_size_limit_is_one_malformed_row(tmp_path: Path) -> None:
    """An unbalanced quote ran a field past csv's limit: csv.Error escaped; now one quarantined row."""
    path = tmp_path / "templates.csv"
    path.write_text("name,language,category,updated_at\n"
                    "a,en,marketing,2026-09-01T00:00:00Z\n"
                    '"' + "x" * 200_000 + "\n"
                    "b,en,utility,2026-09-01T00:00:00Z\n")
    summary = ingest(tmp_path / "lake", [path])
    [counts] = summary.files
    assert (counts.read, counts.accepted, counts.quarantined) == (3, 2, 1)
    [bad] = lake_rows(tmp_path / "lake", "quarantine")
    assert (bad["line"], bad["reason"]) == (3, "malformed_csv")


def test_a_cost_too_big_for_micro_units_is_a_bad_value(tmp_path: Path) -> None:
    """Meta's cost x 1e6 overflowed bigint: a DuckDB error escaped; now bad_value cost."""
    point = {"start": 1788220800, "end": 1788307200, "phone_number": "15550001111", "country": "BR",
             "pricing_type": "REGULAR", "pricing_category": "MARKETING", "volume": 3}
    path = tmp_path / "analytics.json"
    path.write_bytes(orjson.dumps({"pricing_analytics": {"data": [{"data_points": [
        {**point, "cost": "99999999999999999999"}, {**point, "country": "IN", "cost": 9_000_000_000_000},
        {**point, "country": "US", "cost": 8_999_999_999_999.5}]}]}}))
    summary = ingest(tmp_path / "lake", [path])
    assert (summary.total("accepted"), summary.total("quarantined")) == (1, 2)
    assert [r["detail"] for r in lake_rows(tmp_path / "lake", "quarantine")] == ["cost", "cost"]
    assert [r["cost_micros"] for r in lake_rows(tmp_path / "lake", "pricing_analytics")] == [8_999_999_999_999_500_000]


def test_pricing_stored_as_json_text_is_read_as_the_object(tmp_path: Path) -> None:
    """A Parquet writer with pricing as a JSON string column: every priced message was quarantined."""
    from tests.helpers import message

    pricing = {"billable": True, "pricing_model": "PMP", "type": "regular", "category": "marketing"}
    records = [message(message_id="a", direction="outbound", status="delivered", pricing=json.dumps(pricing)),
               message(message_id="b", direction="outbound", status="delivered", pricing="regular")]
    table = pa.Table.from_pylist(records)
    pq.write_table(table, tmp_path / "messages.parquet")
    summary = ingest(tmp_path / "lake", [tmp_path / "messages.parquet"])
    assert (summary.total("accepted"), summary.total("quarantined")) == (1, 1)
    [row] = lake_rows(tmp_path / "lake", "messages")
    assert (row["pricing_billable"], row["pricing_model"], row["pricing_category"]) == (True, "PMP", "marketing")
    assert [r["detail"] for r in lake_rows(tmp_path / "lake", "quarantine")] == ["pricing"]


def test_one_odd_record_does_not_change_which_export_a_file_is(tmp_path: Path) -> None:
    """A stray "message_id" in one conversation made the whole page a messages export:
    every valid conversation was quarantined as missing message_id."""
    records = [{"id": n, "tenant_id": 1, "phone_number_id": 555000001, "status": "active",
                "started_at": "2026-09-01T10:00:00Z"} for n in range(1, 6)]
    records[2]["message_id"] = "wamid.odd"
    path = tmp_path / "page-0001.json"
    path.write_bytes(orjson.dumps({"data": records, "page": 1, "has_more": False}))
    [counts] = ingest(tmp_path / "lake", [path]).files
    assert (counts.dataset, counts.accepted, counts.quarantined) == ("conversations", 5, 0)
