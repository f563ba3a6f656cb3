"""The command line: help for every command, exact output, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline import __version__
from pipeline.cli import cli
from tests.helpers import message, write_jsonl

README = Path(__file__).resolve().parent.parent / "README.md"


def run(*args: str, cwd: Path | None = None) -> tuple[int, str]:
    runner = CliRunner()
    if cwd is None:
        result = runner.invoke(cli, list(args), catch_exceptions=False)
    else:
        with runner.isolated_filesystem(temp_dir=cwd):
            result = runner.invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_version() -> None:
    assert run("--version") == (0, f"convo, version {__version__}\n")


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_command_has_help_with_an_example_and_is_in_the_readme(command: str) -> None:
    code, output = run(command, "-h")
    assert code == 0, output
    assert output.startswith(f"Usage: cli {command}") or output.startswith(f"Usage: convo {command}")
    assert "Example:" in output
    assert f"convo {command}" in README.read_text(encoding="utf-8")


def test_ingest_prints_the_record_arithmetic(project: Path) -> None:
    source = write_jsonl(project / "exports" / "m.jsonl", [
        message(message_id="a"), message(message_id="a"), message(message_id="b", status="nope"), "{",
    ])
    code, output = run("ingest", str(source), "--config", str(project / "convo.toml"))
    assert code == 0, output
    assert output.splitlines() == [
        "messages: 4 read = 1 accepted + 1 duplicates + 2 quarantined",
        "quarantined by reason: malformed_json 1, unknown_enum 1",
        "1 files, 2 lake files written",
    ]


@pytest.mark.parametrize(
    ("args", "message_start"),
    [
        (["ingest", "nowhere.jsonl"], "Error: "),
        (["build", "--as-of", "yesterday"], "Error: Invalid value"),
        (["build", "--as-of", "2026-09-01T00:00:00"], "Error: Invalid value"),
    ],
)
def test_user_errors_are_one_line_without_traceback(project: Path, args: list[str], message_start: str) -> None:
    code, output = run(*args, "--config", str(project / "convo.toml"))
    assert code != 0
    assert "Traceback" not in output
    assert output.strip().splitlines()[-1].startswith(message_start)


def test_bad_input_file_is_one_line_error(project: Path) -> None:
    bad = project / "junk.bin"
    bad.write_bytes(b"\x00\x01\x02 not an export")
    code, output = run("ingest", str(bad), "--config", str(project / "convo.toml"))
    assert code == 1
    assert output == f"Error: {bad}: not a JSONL, JSON, CSV or Parquet file\n"


def test_missing_config_is_one_line_error(tmp_path: Path) -> None:
    code, output = run("build", "--config", str(tmp_path / "convo.toml"))
    assert code == 1
    assert output == f"Error: config file not found: {tmp_path / 'convo.toml'} (pass --config PATH)\n"


def test_bad_config_key_is_named(project: Path) -> None:
    path = project / "convo.toml"
    path.write_text(path.read_text() + "[lifecycle]\ninactive_after = 5\n")
    code, output = run("build", "--config", str(path))
    assert code == 1
    assert output.startswith(f"Error: {path.resolve()}: lifecycle.inactive_after: unknown key")
