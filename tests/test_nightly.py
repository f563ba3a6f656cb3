"""convo nightly: the whole flow, one run at a time, idempotent."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.config import Settings
from pipeline.locking import exclusive
from pipeline.nightly import lock_path, nightly
from tests.helpers import message, write_jsonl

TABLES = ("messages", "quarantine", "service_windows", "conversations")


def snapshot(settings: Settings) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        return {table: sorted(con.execute(f"select * from {table}").fetchall(), key=repr) for table in TABLES}
    finally:
        con.close()


def test_two_nights_in_a_row_give_identical_tables_and_reports(settings: Settings) -> None:
    write_jsonl(settings.exports / "messages-2026-09-01.jsonl", [
        message(message_id="a", timestamp="2026-09-01T10:00:00Z"),
        message(message_id="b", direction="outbound", status="read", timestamp="2026-09-01T10:05:00Z",
                delivered_at="2026-09-01T10:05:01Z"),
        "{oops",
    ])
    first = nightly(settings)
    assert first.ingested is not None and first.ingested.total("accepted") == 2
    tables = snapshot(settings)
    reports = {p.name: p.read_bytes() for p in first.reports.files}
    second = nightly(settings)
    assert second.ingested is not None and (second.ingested.files, second.ingested.skipped) == ([], 1)
    assert snapshot(settings) == tables
    assert {p.name: p.read_bytes() for p in second.reports.files} == reports
    # A new day's file is all the next night reads.
    write_jsonl(settings.exports / "messages-2026-09-02.jsonl", [message(message_id="c", timestamp="2026-09-02T09:00:00Z")])
    third = nightly(settings)
    assert third.ingested is not None
    assert ([f.path.name for f in third.ingested.files], third.ingested.skipped) == (["messages-2026-09-02.jsonl"], 1)
    assert len(snapshot(settings)["messages"]) == 3


def test_a_second_run_is_refused_with_a_clear_message(settings: Settings) -> None:
    with exclusive(lock_path(settings), "the first nightly"):
        result = CliRunner().invoke(cli, ["nightly", "--config", str(settings.config_path)])
    assert result.exit_code == 1
    assert result.output.startswith("Error: convo nightly for ")
    assert "is already running (pid " in result.output


def test_cli_runs_every_step(settings: Settings) -> None:
    write_jsonl(settings.exports / "m.jsonl", [message()])
    result = CliRunner().invoke(cli, ["nightly", "--config", str(settings.config_path)])
    assert result.exit_code == 0, result.output
    steps = [line for line in result.output.splitlines() if line.startswith("-- ")]
    assert steps == [f"-- ingesting new files from {settings.exports}", "-- building the warehouse",
                     "-- writing the reports"]
    assert result.output.splitlines()[-1] == f"reports: {settings.reports / 'index.html'}"


def test_missing_key_with_api_configured_stops_before_anything_changes(project: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOSENDAPI_KEY", raising=False)
    config = project / "convo.toml"
    config.write_text(config.read_text() + '[api]\nbase_url = "http://127.0.0.1:9"\n')
    result = CliRunner().invoke(cli, ["nightly", "--config", str(config)])
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == "Error: set the API key in the environment variable GOSENDAPI_KEY"
    assert not (project / "warehouse.duckdb").exists()
