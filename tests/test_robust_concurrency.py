"""Concurrency (issue 7.3): one nightly at a time, with a clear message for the
second; builds and ingests never interleave on one lake; a notebook holding the
warehouse open read-only neither blocks the nightly run nor sees partial data.

Every case runs real `convo` processes (and real reader processes) on a simulated
tenant.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from pipeline import lake
from pipeline.build import build
from pipeline.config import load
from pipeline.ingest import ingest
from pipeline.locking import Busy, exclusive
from pipeline.simulate import SimulateSettings, simulate
from tests.robust import convo_command, convo_env, run_convo, warehouse_tables
from tests.helpers import message, write_jsonl


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated project whose night 1 ran; night 2's files are kept aside in `later/`."""
    work = tmp_path_factory.mktemp("concurrency")
    project = simulate(SimulateSettings(out=work / "project", contacts=60, days=6)).out
    later = work / "later"
    for path in sorted((project / "exports").rglob("*")):
        if path.is_file() and not any(f"2026-09-0{day}" in path.name for day in (1, 2, 3)):
            target = later / path.relative_to(project)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(path, target)
    first = run_convo("nightly", "--config", str(project / "convo.toml"))
    assert first.returncode == 0, first.stderr
    return work


def fresh(tenant: Path, name: str) -> Path:
    """A copy of the project after night 1 (its own folder: cases do not share state)."""
    project = tenant / name
    shutil.copytree(tenant / "project", project, symlinks=True)
    # Absolute paths in the copied lake manifest point at the original: re-reading is harmless.
    return project


def arrive_night2(tenant: Path, project: Path) -> None:
    for path in sorted((tenant / "later").rglob("*")):
        if path.is_file():
            target = project / path.relative_to(tenant / "later")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def start_nightly(project: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(convo_command("nightly", "--config", str(project / "convo.toml")),
                            env=convo_env(PYTHONUNBUFFERED="1"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_line(process: subprocess.Popen[str], text: str) -> list[str]:
    seen = []
    for line in process.stdout:
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError(f"the run ended before {text!r}: {seen} {process.stderr.read()}")


def test_a_second_nightly_exits_with_the_busy_message_and_changes_nothing(tenant: Path) -> None:
    project = fresh(tenant, "two-nightlies")
    arrive_night2(tenant, project)
    first = start_nightly(project)
    wait_for_line(first, "-- ingesting new files")
    second = run_convo("nightly", "--config", str(project / "convo.toml"))
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert second.returncode == 1 and second.stdout == ""
    assert second.stderr == (f"Error: convo nightly for {project / 'warehouse.duckdb'} is already running "
                             f"(pid {first.pid}); try again when it has finished\n")
    # The refused run left no trace: the next run reads nothing new and changes nothing.
    tables = warehouse_tables(project / "warehouse.duckdb")
    third = run_convo("nightly", "--config", str(project / "convo.toml"))
    assert third.returncode == 0 and " read = " not in third.stdout
    assert warehouse_tables(project / "warehouse.duckdb") == tables


def test_a_build_and_an_ingest_never_interleave_on_one_lake(project: Path) -> None:
    """A build reads the lake for its whole run: an ingest rewriting partitions under it
    would give a warehouse of two lake states (or one message twice)."""
    settings = load(project / "convo.toml")
    source = write_jsonl(project / "in" / "m.jsonl", [message(message_id="a")])
    ingest(settings.lake, [source])
    running = f"an ingest into {settings.lake}"                 # as ingest() holds the lake's lock
    with exclusive(settings.lake / lake.LOCK, running, label=running):
        with pytest.raises(Busy, match=r"^a build of .*warehouse.duckdb must wait: an ingest into .*lake is "
                                       r"running \(pid \d+\); try again when it has finished$"):
            build(settings)
    assert not settings.warehouse.exists()
    build(settings)
    # ... and the other way round: an ingest waits for a build reading the lake.
    from pipeline import build as build_module

    holding = build_module.lake_lock(settings)
    with holding:
        with pytest.raises(Busy, match=r"^an ingest into .*lake must wait: a build of .*warehouse.duckdb is "
                                       r"running \(pid \d+\); try again when it has finished$"):
            ingest(settings.lake, [source])


def test_an_ingest_killed_between_two_lake_renames_is_completed_before_anything_reads_the_lake(
        project: Path) -> None:
    """One ingest rewrites several lake files; killed between two renames, a message that
    moved to another day could be in both partitions (or in neither) for the next build."""
    settings = load(project / "convo.toml")
    day1 = write_jsonl(project / "in" / "day1.jsonl", [message(message_id="a", timestamp="2026-09-01T10:00:00Z"),
                                                      message(message_id="b", timestamp="2026-09-01T11:00:00Z")])
    ingest(settings.lake, [day1])
    # The platform corrected message a's time (a later status): it moves to 2026-09-02.
    moved = write_jsonl(project / "in" / "fix.jsonl", [message(message_id="a", direction="outbound",
                                                               status="sent", timestamp="2026-09-02T01:00:00Z")])
    for kill_at in ("lake.replace:1", "lake.replace:2"):
        killed = subprocess.run(convo_command("ingest", "--config", str(project / "convo.toml"), str(moved)),
                                env=convo_env(CONVO_CRASH_AT=kill_at), capture_output=True, text=True)
        assert killed.returncode == -9
        build(settings)                       # a build (or any next ingest) completes the change first
        con = duckdb.connect(str(settings.warehouse), read_only=True)
        rows = con.execute("select message_id, status, sent_at::date::varchar from messages order by 1").fetchall()
        con.close()
        assert rows == [("a", "sent", "2026-09-02"), ("b", "received", "2026-09-01")], kill_at
        assert len(lake.files(settings.lake, "messages")) == 2
        ingest(settings.lake, [day1])                         # back to the first state for the next kill
        shutil.rmtree(settings.lake)
        ingest(settings.lake, [day1])


READER = textwrap.dedent("""
    import json, sys, duckdb
    path = sys.argv[1]
    def counts(con):
        names = [r[0] for r in con.execute("select table_name from duckdb_tables() order by 1").fetchall()]
        return {name: con.execute(f'select count(*) from "{name}"').fetchall()[0][0] for name in names}
    con = duckdb.connect(path, read_only=True)          # a notebook's connection, held open
    print(json.dumps(counts(con)), flush=True)
    sys.stdin.readline()                                # ... while the nightly run replaces the file
    print(json.dumps(counts(con)), flush=True)
    con.close()
    con = duckdb.connect(path, read_only=True)          # reconnecting shows the new night
    print(json.dumps(counts(con)), flush=True)
""")

POLLER = textwrap.dedent("""
    import json, os, sys, duckdb
    path, stop = sys.argv[1], sys.argv[2]
    seen = []
    while not os.path.exists(stop):
        con = duckdb.connect(path, read_only=True)
        names = [r[0] for r in con.execute("select table_name from duckdb_tables() order by 1").fetchall()]
        seen.append({name: con.execute(f'select count(*) from "{name}"').fetchall()[0][0] for name in names})
        con.close()
    print(json.dumps(seen))
""")


def counts_of(path: Path) -> dict[str, int]:
    """Rows per table, every table (as the reader and the poller count them)."""
    with duckdb.connect(str(path), read_only=True) as con:
        names = [row[0] for row in con.execute("select table_name from duckdb_tables() order by 1").fetchall()]
        return {name: con.execute(f'select count(*) from "{name}"').fetchall()[0][0] for name in names}


def test_a_notebook_holding_the_warehouse_open_neither_blocks_nor_sees_partial_data(tenant: Path) -> None:
    project = fresh(tenant, "notebook")
    warehouse = project / "warehouse.duckdb"
    old = counts_of(warehouse)
    reader = subprocess.Popen([sys.executable, "-c", READER, str(warehouse)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert json.loads(reader.stdout.readline()) == old
    stop = project / "stop-polling"
    poller = subprocess.Popen([sys.executable, "-c", POLLER, str(warehouse), str(stop)],
                              stdout=subprocess.PIPE, text=True)
    arrive_night2(tenant, project)
    started = time.monotonic()
    night = run_convo("nightly", "--config", str(project / "convo.toml"))
    took = time.monotonic() - started
    stop.touch()
    polls = json.loads(poller.communicate(timeout=120)[0])
    assert night.returncode == 0, night.stderr            # not blocked by the open connection
    new = counts_of(warehouse)
    assert new != old
    held, reconnected = reader.communicate("go\n", timeout=60)[0].splitlines()
    assert json.loads(held) == old                        # the open connection keeps the old file
    assert json.loads(reconnected) == new
    # Every poll during the run saw the whole old warehouse or the whole new one.
    assert polls and all(poll in (old, new) for poll in polls)
    print(f"{len(polls)} polls during a {took:.1f} s nightly run: "
          f"{sum(p == old for p in polls)} old, {sum(p == new for p in polls)} new, none partial")


def test_a_second_report_writer_is_refused_in_one_line(project: Path) -> None:
    """Two writers of one reports folder would remove each other's half-written sets."""
    settings = load(project / "convo.toml")
    ingest(settings.lake, [write_jsonl(project / "in" / "m.jsonl", [message()])])
    build(settings)
    folder = settings.reports
    with exclusive(folder.with_name(f".{folder.name}.lock"), f"writing the reports in {folder}"):
        result = run_convo("report", "--config", str(project / "convo.toml"))
    assert result.returncode == 1
    assert result.stderr == (f"Error: writing the reports in {folder} is already running (pid {os.getpid()}); "
                             "try again when it has finished\n")
    assert run_convo("report", "--config", str(project / "convo.toml")).returncode == 0
