"""Input files -> batches of raw records, whatever the format.

Every format can be turned into the same shape, one JSON object text per record with
its line (JSONL, CSV) or record number (JSON pages, Parquet), which the SQL validators
read (sql/ingest/<dataset>_json.sql, then <dataset>.sql). Ingest reads Parquet through
DuckDB instead, column by column (pipeline/ingest.py), and comes here for a Parquet file
only when that path declines it. Formats are detected by content and extension; the
dataset (messages, conversations, events, templates, pricing_analytics,
conversation_analytics, or meta_webhooks: Meta Cloud API webhook POST bodies, one a line or
as a JSON array) by the fields present. Meta's analytics responses (README "Meta's
analytics files") are read by _analytics_response: their data points, each with the
response's `id` as waba_id.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import ijson
import orjson
import pyarrow as pa
from ijson.common import ObjectBuilder

from pipeline.errors import ConvoError, one_line

BATCH_LINES = 200_000
CHUNK_BYTES = 32 * 1024 * 1024
SNIFF_RECORDS = 50
# No export writes a record this long: a longer line (a file with no newlines, a runaway
# field) is quarantined by its first KiB instead of being held whole in memory.
MAX_RECORD_BYTES = 16 * 1024 * 1024

RAW_SCHEMA = pa.schema([("line", pa.int64()), ("raw", pa.string()), ("pre_reason", pa.string())])


class InputError(ConvoError, ValueError):
    """A file that cannot be read at all (not one bad record: a bad file)."""


# What a damaged file raises while it is read: truncated or corrupt gzip (EOFError,
# zlib.error, BadGzipFile is an OSError), bad Parquet (ArrowException), undecodable text.
READ_ERRORS = (OSError, EOFError, zlib.error, ValueError, pa.ArrowException)


@dataclass
class Position:
    """How far a reader is through its file, in stored bytes (compressed, for .gz): for progress."""
    bytes: int = 0


def _stored_offset(handle: io.IOBase) -> int:
    raw = getattr(handle, "fileobj", None) or handle     # gzip: the compressed file's offset
    try:
        return raw.tell()
    except (OSError, ValueError):
        return 0


@dataclass(frozen=True)
class SourceFile:
    path: Path
    format: str      # jsonl | json | csv | parquet
    dataset: str     # messages | conversations | events | templates | pricing_analytics |
                     # conversation_analytics | meta_webhooks
    size: int


def expand(paths: list[Path]) -> list[Path]:
    """Files named, and the files under folders named, in a stable order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and not _hidden(p, path)))
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(f"{path}: no such file or folder")
    return files


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith((".", "_")) for part in path.relative_to(root).parts)


def detect(path: Path) -> SourceFile:
    """Format and dataset of a file, or InputError saying why it cannot be read."""
    size = path.stat().st_size
    try:
        fmt = _format(path)
    except InputError:
        raise
    except READ_ERRORS as exc:
        raise InputError(f"{path}: cannot read: {one_line(exc)}") from None
    keys, votes = _sniff(path, fmt)
    # Each sniffed record votes for the dataset its own fields name; the most votes win,
    # so one odd record (a stray "message_id" in a conversations page) cannot turn the file.
    dataset = max(votes, key=lambda name: (votes[name], -DATASET_ORDER.index(name))) if votes else None
    if dataset is None:
        hint = _dataset_from_name(path)
        if hint is None:
            shown = ", ".join(sorted(keys)[:8]) or "no fields"
            raise InputError(f"{path}: cannot tell which export this is (fields seen: {shown})")
        dataset = hint
    return SourceFile(path=path, format=fmt, dataset=dataset, size=size)


def _format(path: Path) -> str:
    name = path.name.lower().removesuffix(".gz")
    head = _head(path, 4096)
    if head.startswith(b"PAR1") or name.endswith(".parquet"):
        if not head.startswith(b"PAR1"):
            raise InputError(f"{path}: named .parquet but is not a Parquet file")
        return "parquet"
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if name.endswith(".csv"):
        return "csv"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not stripped:
        raise InputError(f"{path}: empty file")
    if stripped[:1] == b"[":
        return "json"
    if stripped[:1] == b"{":
        # One JSON document (an API page, Meta's analytics) or one object a line (JSONL).
        first_line = stripped.split(b"\n", 1)[0]
        try:
            first = orjson.loads(first_line)
        except orjson.JSONDecodeError:
            return "json"
        is_response = isinstance(first, dict) and any(api in first for api in ANALYTICS_APIS)
        return "json" if _is_api_page(first) or is_response or _ANALYTICS_HEAD.search(stripped) else "jsonl"
    if name.endswith(".json"):
        return "json"
    if b"," in stripped.split(b"\n", 1)[0]:
        return "csv"
    raise InputError(f"{path}: not a JSONL, JSON, CSV or Parquet file")


def _is_api_page(value: object) -> bool:
    """DESIGN.md's API page: {"data": [...], "page": N, "has_more": bool}."""
    return isinstance(value, dict) and isinstance(value.get("data"), list) and ("page" in value or "has_more" in value)


def _head(path: Path, size: int) -> bytes:
    with _open(path) as handle:
        return handle.read(size)


def _open(path: Path) -> io.BufferedIOBase:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def _sniff(path: Path, fmt: str) -> tuple[set[str], dict[str, int]]:
    """The fields seen in the first records, and how many records look like each dataset."""
    if fmt == "parquet":
        return _sniff_parquet(path)
    keys: set[str] = set()
    votes: dict[str, int] = {}
    try:
        for batch in iter_records(SourceFile(path, fmt, "", 0), limit=SNIFF_RECORDS):
            for raw, pre in zip(batch.column("raw").to_pylist(), batch.column("pre_reason").to_pylist()):
                if pre is not None:
                    continue
                try:
                    value = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(value, dict):
                    fields = set(value)
                    if value.get("type", "").startswith("whatsapp.") if isinstance(value.get("type"), str) else False:
                        fields.add("__event__")
                    keys.update(fields)
                    dataset = _dataset(fields)
                    if dataset is not None:
                        votes[dataset] = votes.get(dataset, 0) + 1
    except InputError:
        raise
    except READ_ERRORS as exc:
        raise InputError(f"{path}: cannot read as {fmt}: {one_line(exc)}") from None
    return keys - {"__event__"}, votes


def _sniff_parquet(path: Path) -> tuple[set[str], dict[str, int]]:
    """_sniff for Parquet from the file's columns, without reading it: every record has every
    column, so each of the first records votes for the same dataset but by its `type`."""
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: cannot read Parquet: {one_line(exc)}") from None
    keys = set(parquet.schema_arrow.names)
    records = min(parquet.metadata.num_rows, SNIFF_RECORDS)
    types: list[object] = [None] * records
    try:
        if "type" in keys and records:
            batch = next(parquet.iter_batches(batch_size=records, columns=["type"]))
            types = batch.column(0).to_pylist()[:records]
    except READ_ERRORS as exc:
        raise InputError(f"{path}: cannot read as parquet: {one_line(exc)}") from None
    votes: dict[str, int] = {}
    for value in types:
        fields = keys | ({"__event__"} if isinstance(value, str) and value.startswith("whatsapp.") else set())
        dataset = _dataset(fields)
        if dataset is not None:
            votes[dataset] = votes.get(dataset, 0) + 1
    return keys, votes


DATASET_ORDER = ["meta_webhooks", "pricing_analytics", "conversation_analytics", "messages", "events",
                 "conversations", "templates"]


def _dataset(keys: set[str]) -> str | None:
    if {"object", "entry"} <= keys:
        return "meta_webhooks"          # a Cloud API webhook POST body {"object", "entry": [...]}
    if {"pricing_category", "volume"} <= keys or {"start", "volume"} <= keys:
        return "pricing_analytics"      # a data point; without dimensions it is start, end, volume, cost
    if {"start", "conversation"} <= keys:
        return "conversation_analytics"
    if "message_id" in keys:
        return "messages"
    if "__event__" in keys or {"type", "data", "created_at"} <= keys:
        return "events"
    if "started_at" in keys or {"id", "messages_count"} <= keys:
        return "conversations"
    if {"name", "category"} <= keys:
        return "templates"
    return None


def _dataset_from_name(path: Path) -> str | None:
    for part in reversed(path.parts):
        for dataset in ("messages", "conversations", "events", "templates", "pricing_analytics",
                        "conversation_analytics"):
            if part.lower().startswith(dataset):
                return dataset
    return None


def iter_records(source: SourceFile, limit: int | None = None,
                 position: Position | None = None) -> Iterator[pa.RecordBatch]:
    """Batches of (line, raw JSON object text, pre_reason) for every record.

    A file damaged past reading (a corrupt gzip stream, a broken Parquet page)
    raises InputError, one line, wherever in the file the damage is. `position`,
    when given, follows how much of the file the batches so far came from.
    """
    reader = {"jsonl": _jsonl, "json": _json_document, "csv": _csv, "parquet": _parquet}[source.format]
    try:
        yield from reader(source.path, limit, position or Position())
    except InputError:
        raise
    except READ_ERRORS as exc:
        raise InputError(f"{source.path}: cannot read as {source.format}: {one_line(exc)}") from None


def _batch(lines: list[int], raws: list[str], pre: list[str | None]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        [pa.array(lines, pa.int64()), pa.array(raws, pa.string()), pa.array(pre, pa.string())],
        schema=RAW_SCHEMA,
    )


def _jsonl(path: Path, limit: int | None, position: Position) -> Iterator[pa.RecordBatch]:
    line_no = 0
    lines: list[int] = []
    raws: list[str] = []
    pre: list[str | None] = []
    skipping = False          # inside a line past MAX_RECORD_BYTES, already quarantined
    with _open(path) as handle:
        rest = b""
        while True:
            chunk = handle.read(CHUNK_BYTES)
            position.bytes = _stored_offset(handle)
            if skipping:
                end = chunk.find(b"\n")
                if end < 0 and chunk:
                    continue
                chunk, skipping = chunk[end + 1:] if end >= 0 else b"", False
                if not chunk:
                    chunk = handle.read(CHUNK_BYTES)
                    position.bytes = _stored_offset(handle)
            data = rest + chunk
            if not chunk:
                parts, rest = ([data] if data else []), b""
            else:
                parts = data.split(b"\n")
                rest = parts.pop()
            if len(rest) > MAX_RECORD_BYTES:
                parts.append(rest)            # quarantined below by its head; the rest of it is skipped
                rest, skipping = b"", True
            for part in parts:
                line_no += 1
                if len(part) > MAX_RECORD_BYTES:
                    lines.append(line_no)
                    raws.append(_decode(part[:1024])[0] + f"… [a line longer than {MAX_RECORD_BYTES:,} bytes, cut]")
                    pre.append("malformed_json")
                    continue
                text, reason = _decode(part)
                if not text.strip():
                    continue  # blank lines are not records
                lines.append(line_no)
                raws.append(text)
                pre.append(reason)
                if limit is not None and len(lines) >= limit:
                    yield _batch(lines, raws, pre)
                    return
            if len(lines) >= BATCH_LINES or (not chunk and lines):
                yield _batch(lines, raws, pre)
                lines, raws, pre = [], [], []
            if not chunk:
                break


def _decode(part: bytes) -> tuple[str, str | None]:
    if part.endswith(b"\r"):
        part = part[:-1]
    try:
        return part.decode("utf-8"), None
    except UnicodeDecodeError:
        return part.decode("utf-8", errors="replace"), "invalid_utf8"


def _json_document(path: Path, limit: int | None, position: Position) -> Iterator[pa.RecordBatch]:
    if _is_analytics_response(path):
        yield from _analytics_response(path, limit, position)
        return
    if path.stat().st_size > STREAM_JSON_BYTES:
        yield from _json_stream(path, limit, position)
        return
    with _open(path) as handle:
        data = handle.read()
        position.bytes = _stored_offset(handle)
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON: {one_line(exc)}") from None
    if isinstance(document, dict) and isinstance(document.get("data"), list):
        records = document["data"]          # an API page {"data": [...], "page", "has_more"}
    elif isinstance(document, dict) and isinstance(document.get("pricing_analytics"), dict):
        # Meta's response: {"pricing_analytics": {"data": [{"data_points": [...]}, ...]}}
        records = [point for block in document["pricing_analytics"].get("data") or []
                   if isinstance(block, dict) for point in block.get("data_points") or []]
    elif isinstance(document, list):
        records = document
    elif isinstance(document, dict):
        records = [document]
    else:
        raise InputError(f"{path}: a JSON export must be an API page, an array or an object")
    if limit is not None:
        records = records[:limit]
    for start in range(0, len(records), BATCH_LINES):
        part = records[start:start + BATCH_LINES]
        yield _batch(
            list(range(start + 1, start + len(part) + 1)),
            [orjson.dumps(record).decode() for record in part],
            [None] * len(part),
        )


# Meta's analytics responses (WhatsApp Business Management API, DOMAIN R26):
#   {"pricing_analytics": {"data": [{"data_points": [...]}], "paging": {...}}, "id": "<WABA id>"}
# and the same with conversation_analytics; a file may also hold a JSON array of such
# responses (the pages of one request, followed by paging.next). Each data point is one
# record, with the response's id added as waba_id (a point names no WABA); the paging
# cursors are not data. Meta's own example writes a comma after the last member
# ("id": "...",}): such trailing commas are forgiven in an analytics response.
ANALYTICS_APIS = ("pricing_analytics", "conversation_analytics")
_ANALYTICS_HEAD = re.compile(rb'"(pricing_analytics|conversation_analytics)"\s*:\s*\{')
_TRAILING_COMMA = re.compile(rb",(\s*[}\]])")


def _is_analytics_response(path: Path) -> bool:
    head = _head(path, 4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head[:1] in (b"{", b"[") and _ANALYTICS_HEAD.search(head) is not None


def _analytics_response(path: Path, limit: int | None, position: Position) -> Iterator[pa.RecordBatch]:
    """Records of Meta's analytics responses, whole in memory: the streaming reader keeps
    an analytics object whole as well, and the response's id comes after its data points."""
    with _open(path) as handle:
        data = handle.read()
        position.bytes = _stored_offset(handle)
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        try:
            document = orjson.loads(_TRAILING_COMMA.sub(rb"\1", data))
        except orjson.JSONDecodeError:
            raise InputError(f"{path}: not valid JSON: {one_line(exc)}") from None
    records: list[str] = []
    for page in document if isinstance(document, list) else [document]:
        records.extend(analytics_points(page))
    if limit is not None:
        records = records[:limit]
    for start in range(0, len(records), BATCH_LINES):
        part = records[start:start + BATCH_LINES]
        yield _batch(list(range(start + 1, start + len(part) + 1)), part, [None] * len(part))


def analytics_points(page: object) -> list[str]:
    """The data points of one analytics response as record texts, each with waba_id (the
    response's id) when the response has one; anything else in a page is one record (the
    validator quarantines it)."""
    if not isinstance(page, dict) or not any(isinstance(page.get(api), dict) for api in ANALYTICS_APIS):
        return [orjson.dumps(page).decode()]
    waba = page.get("id")
    waba_id = str(waba) if isinstance(waba, (str, int)) and not isinstance(waba, bool) else None
    records = []
    for api in ANALYTICS_APIS:
        value = page.get(api)
        if not isinstance(value, dict):
            continue
        for block in value.get("data") or []:
            points = block.get("data_points") if isinstance(block, dict) else None
            for point in points if isinstance(points, list) else []:
                if isinstance(point, dict) and waba_id is not None and "waba_id" not in point:
                    point = {**point, "waba_id": waba_id}
                records.append(orjson.dumps(point).decode())
    return records


# A JSON document bigger than this (on disk) is read as a stream, a record at a time:
# an API page of a million records held as Python objects needs several GB.
STREAM_JSON_BYTES = 32 * 1024 * 1024
STREAM_CHUNK_CHARS = 4 * 1024 * 1024       # bytes ijson reads at a time
# Where the records of a big object are (ijson prefixes): an API page's data list, and
# Meta's pricing_analytics data points. A top-level array's elements are records too.
_PAGE_RECORDS = "data"
_ANALYTICS_BLOCKS = "pricing_analytics.data"
_ANALYTICS_RECORDS = "pricing_analytics.data.item.data_points"


class _Tracked:
    """A binary file that tells `position` how far it has been read (for progress)."""

    def __init__(self, handle: io.BufferedIOBase, position: Position) -> None:
        self.handle, self.position = handle, position

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.position.bytes = _stored_offset(self.handle)
        return data


class _Records:
    """Record texts gathered into batches, numbered from 1."""

    def __init__(self, limit: int | None) -> None:
        self.limit, self.count = limit, 0
        self.numbers: list[int] = []
        self.raws: list[str] = []

    @property
    def full(self) -> bool:
        return self.limit is not None and self.count >= self.limit

    def add(self, record: object) -> Iterator[pa.RecordBatch]:
        self.count += 1
        self.numbers.append(self.count)
        self.raws.append(orjson.dumps(record).decode())
        if len(self.raws) >= BATCH_LINES:
            yield from self.flush()

    def flush(self) -> Iterator[pa.RecordBatch]:
        if self.raws:
            yield _batch(self.numbers, self.raws, [None] * len(self.raws))
            self.numbers, self.raws = [], []


def _json_stream(path: Path, limit: int | None, position: Position) -> Iterator[pa.RecordBatch]:
    """Records of a big JSON document, as _json_document reads them: the elements of a
    top-level array, of an object's `data` list (an API page) or of Meta's pricing_analytics
    data points, else the object itself. ijson parses it event by event; only one record
    is held at a time.

    ijson's C backend (yajl) refuses integers at or past the edge of 64 bits, which the
    whole-document read accepts (orjson: past 64 bits as a float); on that one error the
    document is read again with ijson's Python backend, from the record it stopped at."""
    records = _Records(limit)
    done = 0
    for backend in (ijson, ijson.get_backend("python")):
        try:
            for number, value in enumerate(_json_values(path, position, backend), start=1):
                if number <= done:
                    continue                    # yielded before the C backend stopped
                done = number
                yield from records.add(_in_64_bits(value))
                if records.full:
                    break
            break
        except ijson.JSONError as exc:
            if backend is ijson and "integer overflow" in str(exc):
                continue
            raise ValueError(f"not valid JSON: {one_line(exc)}") from None
    yield from records.flush()


def _json_values(path: Path, position: Position, backend: object) -> Iterator[object]:
    """The records of a JSON document, as Python values, in order (see _json_stream)."""
    with _open(path) as handle:
        events = backend.parse(_Tracked(handle, position), buf_size=STREAM_CHUNK_CHARS,  # type: ignore[attr-defined]
                               use_float=True)
        arrays: set[str] = set()            # prefixes of the arrays open now
        whole: ObjectBuilder | None = None  # a top-level object, while it may be the one record
        record: ObjectBuilder | None = None
        depth = 0
        listed = False
        for prefix, event, value in events:
            if record is not None:                          # inside a record: build it
                record.event(event, value)
                depth += event in ("start_map", "start_array")
                depth -= event in ("end_map", "end_array")
                if depth == 0:
                    yield record.value
                    record = None
                continue
            if prefix == "" and event == "start_map":
                whole = ObjectBuilder()
            elif prefix == "" and event not in ("start_array", "map_key") and not event.startswith("end"):
                raise InputError(f"{path}: a JSON export must be an API page, an array or an object")
            if event == "start_array":
                arrays.add(prefix)
                listed = listed or prefix == _PAGE_RECORDS
            elif event == "end_array":
                arrays.discard(prefix)
            elif event == "start_map" and prefix == "pricing_analytics":
                listed = True
            if whole is not None:
                whole.event(event, value)
                if listed:
                    whole = None                             # records come from a list: not the object
            if not event.startswith("end") and event != "map_key" and _is_record(prefix, arrays):
                record, depth = ObjectBuilder(), 0
                record.event(event, value)
                depth += event in ("start_map", "start_array")
                if depth == 0:                               # a scalar record
                    yield record.value
                    record = None
        if whole is not None:
            yield whole.value                                # one object: one record


def _in_64_bits(value: object) -> object:
    """Integers orjson cannot write (past 64 bits) as floats, as orjson.loads reads them."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -(2 ** 63) <= value < 2 ** 64 else float(value)
    if isinstance(value, dict):
        return {key: _in_64_bits(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_in_64_bits(item) for item in value]
    return value


def _is_record(prefix: str, arrays: set[str]) -> bool:
    """Is the value at this ijson prefix a record: an element of a list records are in?"""
    parent, _, last = prefix.rpartition(".")
    if prefix == "item":
        return "" in arrays                                  # a top-level array (or a key "item")
    if last != "item" or parent not in arrays:
        return False
    return parent == _PAGE_RECORDS or (parent == _ANALYTICS_RECORDS and _ANALYTICS_BLOCKS in arrays)


def _csv(path: Path, limit: int | None, position: Position) -> Iterator[pa.RecordBatch]:
    with _open(path) as binary:
        text = io.TextIOWrapper(binary, encoding="utf-8", errors="replace", newline="")
        reader = csv.reader(text)
        try:
            header = next(reader)
        except StopIteration:
            raise InputError(f"{path}: empty CSV file") from None
        header = [name.strip().lstrip("\ufeff") for name in header]
        if not header or len(set(header)) != len(header) or any(not name for name in header):
            raise InputError(f"{path}: the CSV header must name every column once")
        lines: list[int] = []
        raws: list[str] = []
        pre: list[str | None] = []
        start = reader.line_num + 1
        while True:
            line = start
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                # e.g. a field past the csv module's size limit (an unbalanced quote ran
                # on): one malformed record; the reader goes on at the next line.
                start = reader.line_num + 1
                lines.append(line)
                raws.append(f"<unreadable CSV row: {one_line(exc)}>")
                pre.append("malformed_csv")
                continue
            start = reader.line_num + 1
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            lines.append(line)
            if len(row) != len(header):
                raws.append(",".join(row))
                pre.append("malformed_csv")
            else:
                record = {name: _csv_value(name, value) for name, value in zip(header, row)}
                raws.append(orjson.dumps(record).decode())
                pre.append("invalid_utf8" if any("\ufffd" in value for value in row) else None)
            if limit is not None and len(lines) >= limit:
                break
            if len(lines) >= BATCH_LINES:
                position.bytes = _stored_offset(binary)
                yield _batch(lines, raws, pre)
                lines, raws, pre = [], [], []
        if lines:
            position.bytes = _stored_offset(binary)
            yield _batch(lines, raws, pre)


def _csv_value(name: str, value: str) -> object:
    if value == "":
        return None
    if name == "pricing" and value.lstrip().startswith("{"):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def _parquet(path: Path, limit: int | None, position: Position) -> Iterator[pa.RecordBatch]:
    import duckdb
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: cannot read Parquet: {one_line(exc)}") from None
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    line = 0
    for batch in parquet.iter_batches(batch_size=BATCH_LINES):
        # Naive timestamps in Parquet are taken as UTC, the format's convention.
        columns = []
        for field, column in zip(batch.schema, batch.columns):
            if pa.types.is_timestamp(field.type) and field.type.tz is None:
                column = column.cast(pa.timestamp(field.type.unit, tz="UTC"))
            columns.append(column)
        table = pa.Table.from_arrays(columns, names=batch.schema.names)
        con.register("parquet_batch", table)
        raws = con.sql("select to_json(record)::varchar as raw from parquet_batch as record").to_arrow_table()
        con.unregister("parquet_batch")
        count = raws.num_rows if limit is None else min(raws.num_rows, limit - line)
        position.bytes = path.stat().st_size * (line + count) // max(parquet.metadata.num_rows, 1)
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(range(line + 1, line + count + 1), pa.int64()),
                raws.column("raw").slice(0, count).combine_chunks(),
                pa.nulls(count, pa.string()),
            ],
            schema=RAW_SCHEMA,
        )
        line += count
        if limit is not None and line >= limit:
            return
