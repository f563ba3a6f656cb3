"""convo pull against a real HTTP server on localhost: pages, cursor and overlap,
retries on 429/5xx, a clear error on 401 that never shows the key."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.ingest import ingest
from pipeline.pull import PullError, PullSettings, pull
from tests.fake_api import FakeApi, serve
from tests.helpers import message

KEY = "sk-test-5f3a9c0d1e2b"
UTC = timezone.utc


def api_with_data() -> FakeApi:
    api = FakeApi(key=KEY)
    api.records["messages"] = [
        message(message_id=f"m{i}", timestamp=f"2026-09-0{1 + i // 3}T1{i % 3}:00:00Z") for i in range(5)
    ]
    api.records["conversations"] = [
        {"id": 1, "tenant_id": 1, "phone_number_id": 555000001, "contact_phone": "+5511987654321",
         "status": "active", "started_at": "2026-09-01T10:00:00Z", "messages_count": 3},
    ]
    return api


def no_sleep(seconds: float) -> None:
    pass


def test_pages_are_written_and_ingest_reads_them(tmp_path: Path) -> None:
    with serve(api_with_data()) as api:
        summary = pull(PullSettings(base_url=api.base_url, out=tmp_path / "exports",
                                    since=datetime(2026, 9, 1, tzinfo=UTC), until=datetime(2026, 9, 3, tzinfo=UTC)),
                       key=KEY, sleep=no_sleep)
    assert [(r.resource, r.pages, r.records) for r in summary.resources] == [
        ("conversations", 1, 1), ("messages", 3, 5)]
    messages_pages = [(path, query["page"]) for path, query, _ in api.requests if path == "/v1/messages"]
    assert messages_pages == [("/v1/messages", "1"), ("/v1/messages", "2"), ("/v1/messages", "3")]
    assert all(sent_key == KEY for *_, sent_key in api.requests)
    cursor = json.loads((tmp_path / "exports" / "_cursor.json").read_text())
    assert cursor == {"conversations": {"until": "2026-09-03T00:00:00Z"}, "messages": {"until": "2026-09-03T00:00:00Z"}}
    result = ingest(tmp_path / "lake", [tmp_path / "exports"])
    assert (result.total("read", "messages"), result.total("accepted", "messages")) == (5, 5)
    assert result.total("accepted", "conversations") == 1


def test_next_pull_starts_an_hour_before_the_cursor_and_ingest_drops_the_overlap(tmp_path: Path) -> None:
    api = api_with_data()
    with serve(api):
        out = tmp_path / "exports"
        pull(PullSettings(base_url=api.base_url, out=out, since=datetime(2026, 9, 1, tzinfo=UTC),
                          until=datetime(2026, 9, 2, 10, 30, tzinfo=UTC)), key=KEY, sleep=no_sleep)
        first = ingest(tmp_path / "lake", [out])
        api.requests.clear()
        pull(PullSettings(base_url=api.base_url, out=out, until=datetime(2026, 9, 3, tzinfo=UTC)),
             key=KEY, sleep=no_sleep)
    assert {query["since"] for _, query, _ in api.requests} == {"2026-09-02T09:30:00Z"}
    second = ingest(tmp_path / "lake", [out])
    # m3 (2026-09-02 10:00) falls in both pulls, m4 (11:00) only in the second; the lake holds each once.
    assert first.total("accepted", "messages") == 4
    assert (second.total("accepted", "messages"), second.total("duplicates", "messages")) == (1, 5)


def test_429_and_5xx_are_retried_with_backoff(tmp_path: Path) -> None:
    api = api_with_data()
    api.failures = {"/v1/messages": [429, 503, 500]}
    waits: list[float] = []
    with serve(api):
        summary = pull(PullSettings(base_url=api.base_url, out=tmp_path, since=datetime(2026, 9, 1, tzinfo=UTC),
                                    until=datetime(2026, 9, 3, tzinfo=UTC), backoff_seconds=0.5),
                       key=KEY, sleep=waits.append)
    assert summary.resources[1].retries == 3
    assert summary.resources[1].records == 5
    assert waits == [0.0, 1.0, 2.0]     # Retry-After: 0 on the 429, then 0.5 x 2^(attempt-1)


def test_gives_up_after_the_last_attempt_and_keeps_the_old_cursor(tmp_path: Path) -> None:
    api = api_with_data()
    api.failures = {"/v1/messages": [502] * 10}
    with serve(api):
        with pytest.raises(PullError, match=r"GET /v1/messages page 1: still failing after 3 attempts \(HTTP 502\)"):
            pull(PullSettings(base_url=api.base_url, out=tmp_path, since=datetime(2026, 9, 1, tzinfo=UTC),
                              until=datetime(2026, 9, 3, tzinfo=UTC), attempts=3), key=KEY, sleep=no_sleep)
    cursor = json.loads((tmp_path / "_cursor.json").read_text())
    assert cursor == {"conversations": {"until": "2026-09-03T00:00:00Z"}}     # messages did not complete


def test_refused_key_is_a_one_line_error_without_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = "sk-wrong-9d8c7b6a"
    monkeypatch.setenv("GOSENDAPI_KEY", wrong)
    with serve(api_with_data()) as api:
        result = CliRunner().invoke(cli, ["pull", "--base-url", api.base_url, "--out", str(tmp_path / "x"),
                                          "--since", "2026-09-01T00:00:00Z", "--config", str(tmp_path / "none.toml")])
    assert result.exit_code == 1
    assert result.output == ("Error: the API refused the key (HTTP 401 on GET /v1/conversations): "
                             "check GOSENDAPI_KEY\n")
    assert wrong not in result.output
    assert not any(wrong in p.read_text() for p in tmp_path.rglob("*") if p.is_file())


def test_missing_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOSENDAPI_KEY", raising=False)
    result = CliRunner().invoke(cli, ["pull", "--base-url", "http://127.0.0.1:9", "--out", str(tmp_path),
                                      "--config", str(tmp_path / "none.toml")])
    assert result.exit_code == 1
    assert result.output == "Error: set the API key in the environment variable GOSENDAPI_KEY\n"


def test_cli_output_and_filters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOSENDAPI_KEY", KEY)
    api = api_with_data()
    with serve(api):
        result = CliRunner().invoke(cli, [
            "pull", "--base-url", api.base_url, "--out", str(tmp_path / "exports"),
            "--since", "2026-09-01T00:00:00Z", "--until", "2026-09-03T00:00:00Z",
            "--phone-number-id", "555000001", "--config", str(tmp_path / "none.toml")])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "conversations: 1 records in 1 pages (2026-09-01 00:00:00 to 2026-09-03 00:00:00 UTC)",
        "messages: 5 records in 3 pages (2026-09-01 00:00:00 to 2026-09-03 00:00:00 UTC)",
        f"cursor: {tmp_path / 'exports' / '_cursor.json'}",
    ]
    assert {query.get("phone_number_id") for _, query, _ in api.requests} == {"555000001"}
