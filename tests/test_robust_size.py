"""Size (issue 7.6): big inputs in bounded memory, with visible progress.

Always run (small, fast): the JSONL reader's line cap and chunk boundaries (with the
limits shrunk), a JSON page streamed record by record, progress that adds up to the
files' sizes, and a progress bar on a terminal.

Run with CONVO_BIG=1 (minutes; figures printed and kept in the README):
- a 2 GB JSONL file of mostly malformed lines,
- one JSON API page of 1,000,000 records,
- 100,000 distinct contact phone numbers through ingest and build,
each as a real `convo` process whose peak RSS comes from os.wait4.
    CONVO_BIG=1 .venv/bin/python -m pytest tests/test_robust_size.py -q -s
"""

from __future__ import annotations

import gzip
import os
import pty
import subprocess
import time
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import readers
from pipeline.ingest import ingest
from pipeline.readers import Position, SourceFile, iter_records
from tests.robust import convo_command, convo_env, lake_rows
from tests.helpers import message

BIG = bool(os.environ.get("CONVO_BIG"))


def records_of(path: Path, fmt: str = "jsonl") -> list[tuple[int, str, str | None]]:
    source = SourceFile(path, fmt, "messages", path.stat().st_size)
    return [row for batch in iter_records(source)
            for row in zip(*(batch.column(name).to_pylist() for name in ("line", "raw", "pre_reason")))]


@settings(max_examples=60, deadline=None)
@given(lines=st.lists(st.integers(0, 300).map(lambda n: ("x" * n).encode()) | st.sampled_from([b"", b" ", b"{}"]),
                      max_size=30),
       chunk=st.integers(1, 64), final_newline=st.booleans())
def test_long_lines_and_chunk_boundaries(tmp_path_factory: pytest.TempPathFactory, lines: list[bytes],
                                         chunk: int, final_newline: bool) -> None:
    """Every line is one record (blank ones none); a line past the cap is one quarantined
    record by its head, wherever the chunk boundaries fall."""
    path = tmp_path_factory.mktemp("lines") / "m.jsonl"
    path.write_bytes(b"\n".join(lines) + (b"\n" if final_newline else b""))
    old = readers.CHUNK_BYTES, readers.MAX_RECORD_BYTES
    readers.CHUNK_BYTES, readers.MAX_RECORD_BYTES = chunk, 100
    try:
        got = records_of(path)
    finally:
        readers.CHUNK_BYTES, readers.MAX_RECORD_BYTES = old
    expected = []
    for number, line in enumerate(lines, start=1):
        if len(line) > 100:
            expected.append((number, "malformed_json", line[:16].decode()))
        elif line.strip():
            expected.append((number, None, line.decode()))
    assert [(n, reason, raw if reason is None else raw[:16]) for n, raw, reason in got] == expected


def test_a_file_with_no_newline_is_one_quarantined_record_not_memory(tmp_path: Path) -> None:
    path = tmp_path / "messages.jsonl"
    with open(path, "wb") as handle:
        handle.write(orjson.dumps(message(message_id="before")) + b"\n")
        for _ in range(40):
            handle.write(b"x" * (1 << 20))          # a 40 MiB line
        handle.write(b"\n" + orjson.dumps(message(message_id="after")) + b"\n")
    summary = ingest(tmp_path / "lake", [path])
    [counts] = summary.files
    assert (counts.read, counts.accepted, counts.quarantined) == (3, 2, 1)
    [bad] = lake_rows(tmp_path / "lake", "quarantine")
    assert (bad["line"], bad["reason"]) == (2, "malformed_json")
    assert len(bad["raw"]) < 2000 and bad["raw"].endswith("bytes, cut]")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12)
documents = st.one_of(
    st.builds(lambda data, page, more: {"data": data, "page": page, "has_more": more},
              st.lists(json_values, max_size=12), st.integers(1, 9), st.booleans()),
    st.builds(lambda data: {"data": data}, st.lists(json_values, max_size=12)),
    st.lists(json_values, max_size=12),
    st.dictionaries(st.sampled_from(["id", "type", "x", "data"]), json_values, max_size=4),
    st.builds(lambda points: {"pricing_analytics": {"data": [{"data_points": points}]}, "id": "1"},
              st.lists(st.dictionaries(st.sampled_from(["start", "volume"]), json_values, max_size=2), max_size=5)),
)


def _read(path: Path) -> list[object] | str:
    try:
        return [(n, orjson.loads(raw)) for n, raw, _ in records_of(path, "json")]
    except readers.InputError:
        return "InputError"


@settings(max_examples=150, deadline=None)
@given(document=documents, indent=st.sampled_from([None, 1, 4]), cut=st.none() | st.integers(0, 400),
       chunk=st.integers(1, 50))
def test_a_streamed_json_document_reads_as_the_whole_one(tmp_path_factory: pytest.TempPathFactory, document: object,
                                                         indent: int | None, cut: int | None, chunk: int) -> None:
    """Big documents are streamed (the threshold is 32 MiB; here 0): same records, same errors."""
    import json

    data = json.dumps(document, indent=indent).encode()
    if cut is not None:
        data = data[:cut]                              # a truncated document: InputError either way
    path = tmp_path_factory.mktemp("doc") / "export.json"
    path.write_bytes(data or b" ")
    whole = _read(path)
    old = readers.STREAM_JSON_BYTES, readers.STREAM_CHUNK_CHARS
    readers.STREAM_JSON_BYTES, readers.STREAM_CHUNK_CHARS = 0, chunk
    try:
        streamed = _read(path)
    finally:
        readers.STREAM_JSON_BYTES, readers.STREAM_CHUNK_CHARS = old
    assert streamed == whole


def test_progress_adds_up_to_the_stored_size_of_every_format(tmp_path: Path) -> None:
    lines = b"".join(orjson.dumps(message(message_id=f"m{i}")) + b"\n" for i in range(3000))
    (tmp_path / "a.jsonl").write_bytes(lines)
    (tmp_path / "b.jsonl.gz").write_bytes(gzip.compress(lines))
    (tmp_path / "c.json").write_bytes(orjson.dumps({"data": [orjson.loads(x) for x in lines.splitlines()],
                                                    "page": 1, "has_more": False}))
    sizes = {p.name: p.stat().st_size for p in tmp_path.iterdir()}
    steps: list[int] = []
    ingest(tmp_path / "lake", sorted(tmp_path.glob("*.*")), progress=steps.append)
    assert sum(steps) == sum(sizes.values()) and all(step >= 0 for step in steps)
    old = readers.BATCH_LINES
    readers.BATCH_LINES = 500                      # several batches: the position moves through the file
    try:
        position = Position()
        source = SourceFile(tmp_path / "b.jsonl.gz", "jsonl", "messages", sizes["b.jsonl.gz"])
        seen = [position.bytes for _ in iter_records(source, position=position)]
    finally:
        readers.BATCH_LINES = old
    assert seen == sorted(seen) and 0 < seen[0] <= seen[-1] <= sizes["b.jsonl.gz"]


def test_convo_ingest_shows_a_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    path = tmp_path / "messages.jsonl"
    record = orjson.dumps(message()) + b"\n"
    path.write_bytes(record * (20 * 1024 * 1024 // len(record)))        # over the 16 MiB threshold
    (tmp_path / "convo.toml").write_text(CONFIG)
    leader, follower = pty.openpty()
    process = subprocess.Popen(convo_command("ingest", str(path), "--config", str(tmp_path / "convo.toml")),
                               env=convo_env(), stdout=subprocess.PIPE, stderr=follower)
    os.close(follower)
    shown = b""
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:
            break
        if not data:
            break
        shown += data
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 0
    assert b"ingesting" in shown and b"100%" in shown, shown[-500:]
    assert b"messages: " in out


# ---------------------------------------------------------------- CONVO_BIG=1


def measure(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """Run `convo ARGS`; its output, wall seconds and peak RSS in MiB (os.wait4 on the process)."""
    started = time.monotonic()
    process = subprocess.Popen(convo_command(*args), env=convo_env(), cwd=cwd,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out_lines = process.stdout.read()
    err_lines = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.monotonic() - started
    result = subprocess.CompletedProcess(args, os.waitstatus_to_exitcode(status), out_lines, err_lines)
    return result, seconds, usage.ru_maxrss / 1024


CONFIG = """\
[paths]
lake = "lake"
warehouse = "warehouse.duckdb"
reports = "reports_out"

[[phone_numbers]]
phone_number_id = 555000001
tenant_id = 1
waba_id = "waba-1"
timezone = "America/Sao_Paulo"
currency = "USD"
"""

VALID = ('{"message_id":"wamid.%012d","tenant_id":1,"phone_number_id":555000001,"contact_phone":"+55119%08d",'
         '"direction":"inbound","type":"text","status":"received","timestamp":%d}\n')
MALFORMED = [
    b'{"message_id":"wamid.%012d","tenant_id":1,"phone_number_id":555000001,"contact_phone":"+5511%08d","dir\n',
    b'garbage line %012d %08d from a broken exporter, not JSON at all\n',
    b'{"message_id":"wamid.%012d","tenant_id":"one","phone_number_id":555000001,"contact_phone":"%08d"}\n',
    b'\xff\xfe\x00broken bytes %012d %08d\n',
]


def write_mostly_malformed(path: Path, size: int) -> tuple[int, int]:
    """One line in ten valid (distinct phones), nine malformed in four ways; (lines, valid)."""
    written = number = valid = 0
    with open(path, "wb", buffering=1 << 22) as handle:
        while written < size:
            block = []
            for _ in range(10_000):
                if number % 10 == 0:
                    block.append((VALID % (number, number % 100_000_000, 1788256800 + number % 2_000_000)).encode())
                    valid += 1
                else:
                    block.append(MALFORMED[number % 4] % (number, number % 100_000_000))
                number += 1
            data = b"".join(block)
            handle.write(data)
            written += len(data)
    return number, valid


@pytest.fixture
def big_project(tmp_path: Path) -> Path:
    (tmp_path / "convo.toml").write_text(CONFIG)
    return tmp_path


@pytest.mark.skipif(not BIG, reason="set CONVO_BIG=1 (minutes, several GB of disk)")
def test_big_a_2_gb_file_of_mostly_malformed_lines(big_project: Path) -> None:
    path = big_project / "messages.jsonl"
    lines, valid = write_mostly_malformed(path, 2 * 1024**3)
    result, seconds, peak = measure("ingest", str(path), "--config", "convo.toml", cwd=big_project)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == (f"messages: {lines:,} read = {valid:,} accepted + 0 duplicates"
                                             f" + {lines - valid:,} quarantined")
    print(f"\n2 GB file ({path.stat().st_size:,} bytes, {lines:,} lines, {lines - valid:,} malformed): "
          f"ingest {seconds:.0f} s, peak RSS {peak:.0f} MiB")
    assert peak < 2048


@pytest.mark.skipif(not BIG, reason="set CONVO_BIG=1 (minutes, several GB of disk)")
def test_big_one_json_page_of_a_million_records(big_project: Path) -> None:
    path = big_project / "page-00001.json"
    with open(path, "wb", buffering=1 << 22) as handle:
        handle.write(b'{"page": 1, "has_more": false, "data": [')
        for number in range(1_000_000):
            handle.write((b"," if number else b"") + orjson.dumps(message(
                message_id=f"wamid.{number:012d}", contact_phone=f"+55119{number % 100_000:08d}",
                contact_name=f"Contact {number}", timestamp=1788256800 + number)))
        handle.write(b"]}")
    result, seconds, peak = measure("ingest", str(path), "--config", "convo.toml", cwd=big_project)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "messages: 1,000,000 read = 1,000,000 accepted + 0 duplicates + 0 quarantined"
    print(f"\nJSON page of 1,000,000 records ({path.stat().st_size:,} bytes): ingest {seconds:.0f} s, "
          f"peak RSS {peak:.0f} MiB")
    assert peak < 2048


@pytest.mark.skipif(not BIG, reason="set CONVO_BIG=1 (minutes, several GB of disk)")
def test_big_a_hundred_thousand_distinct_phone_numbers(big_project: Path) -> None:
    path = big_project / "messages.jsonl"
    with open(path, "wb", buffering=1 << 22) as handle:
        for number in range(1_000_000):
            phone = f"+55119{number % 100_000:08d}"
            inbound = number % 2 == 0
            handle.write(orjson.dumps(message(
                message_id=f"wamid.{number:012d}", contact_phone=phone, contact_name=f"Contact {number % 100_000}",
                direction="inbound" if inbound else "outbound", status="received" if inbound else "delivered",
                timestamp=1788256800 + number * 5, delivered_at=None if inbound else 1788256800 + number * 5 + 2))
                + b"\n")
    ingested, ingest_seconds, ingest_peak = measure("ingest", str(path), "--config", "convo.toml", cwd=big_project)
    assert ingested.returncode == 0, ingested.stderr
    built, build_seconds, build_peak = measure("build", "--config", "convo.toml", cwd=big_project)
    assert built.returncode == 0, built.stderr
    import duckdb

    con = duckdb.connect(str(big_project / "warehouse.duckdb"), read_only=True)
    contacts = con.execute("select count(distinct contact_key) from messages").fetchall()[0][0]
    con.close()
    assert contacts == 100_000
    print(f"\n100,000 phones, 1,000,000 messages: ingest {ingest_seconds:.0f} s (peak RSS {ingest_peak:.0f} MiB), "
          f"build {build_seconds:.0f} s (peak RSS {build_peak:.0f} MiB)")
