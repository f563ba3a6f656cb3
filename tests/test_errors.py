"""One user-facing error type, caught once at the CLI boundary; no import cycle in pipeline/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline import cli as cli_module
from pipeline.build import BuildError as BuildErrorFromBuild
from pipeline.config import ConfigError
from pipeline.errors import BuildError, ConvoError, one_line
from pipeline.locking import Busy
from pipeline.markets import MarketMapError
from pipeline.models import ModelError
from pipeline.policy import PolicyError
from pipeline.pricing import PricingDataError
from pipeline.alerts import AlertsError
from pipeline.pull import PullError
from pipeline.rates import RateCardError
from pipeline.readers import InputError
from pipeline.report import ReportError
from pipeline.window import WindowError

PACKAGE = Path(__file__).resolve().parent.parent / "pipeline"


@pytest.mark.parametrize(("error", "builtin"), [
    (BuildError, RuntimeError), (Busy, RuntimeError), (ConfigError, ValueError), (InputError, ValueError),
    (MarketMapError, ValueError), (PolicyError, ValueError), (PricingDataError, ValueError),
    (PullError, RuntimeError), (RateCardError, ValueError), (ReportError, RuntimeError),
    (WindowError, ValueError), (AlertsError, RuntimeError),
])
def test_every_user_error_is_a_convo_error_and_keeps_its_builtin_base(error: type, builtin: type) -> None:
    assert issubclass(error, ConvoError)
    assert issubclass(error, builtin)


def test_build_error_is_importable_from_build_as_before() -> None:
    assert BuildErrorFromBuild is BuildError


def test_a_malformed_model_is_our_error_and_stays_loud() -> None:
    assert not issubclass(ModelError, ConvoError)


def test_one_line_folds_newlines_and_control_characters() -> None:
    assert one_line(ValueError("a\nb\r\n\tc\x00d")) == "a b c d"
    assert one_line(ValueError("")) == "ValueError"


def test_the_boundary_prints_one_line_and_exits_1(monkeypatch: pytest.MonkeyPatch) -> None:
    @cli_module.cli.command("explode-for-test")
    def explode() -> None:
        raise PolicyError("data/policy.csv:3: value: must be a number,\ngot 'x'")

    try:
        result = CliRunner().invoke(cli_module.cli, ["explode-for-test"], catch_exceptions=False)
    finally:
        del cli_module.cli.commands["explode-for-test"]
    assert result.exit_code == 1
    assert result.output == "Error: data/policy.csv:3: value: must be a number, got 'x'\n"


def test_an_error_of_our_own_is_not_caught_at_the_boundary() -> None:
    @cli_module.cli.command("bug-for-test")
    def bug() -> None:
        raise KeyError("a bug")

    try:
        with pytest.raises(KeyError):
            CliRunner().invoke(cli_module.cli, ["bug-for-test"], catch_exceptions=False)
    finally:
        del cli_module.cli.commands["bug-for-test"]


def test_report_without_a_warehouse_is_one_line(tmp_path: Path) -> None:
    from tests.helpers import CONFIG

    (tmp_path / "convo.toml").write_text(CONFIG)
    result = CliRunner().invoke(cli_module.cli, ["report", "--config", str(tmp_path / "convo.toml")],
                                catch_exceptions=False)
    assert result.exit_code == 1
    assert result.output == (f"Error: no warehouse at {(tmp_path / 'warehouse.duckdb').resolve()}: "
                             "run `convo build` first\n")


def test_the_cli_catches_convo_error_in_one_place() -> None:
    source = (PACKAGE / "cli.py").read_text(encoding="utf-8")
    assert source.count("except ConvoError") == 1
    assert "except (" not in source


def _imports() -> dict[str, set[str]]:
    """module -> the pipeline modules it imports, at the top or inside a function."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                edges |= {alias.name for alias in node.names if alias.name in modules}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    child = f"{node.module}.{alias.name}"
                    edges.add(child if child in modules else node.module)
        package = name.rpartition(".")[0]
        # a module importing its own package's __init__ (for a name like __version__) is no cycle
        graph[name] = {edge for edge in edges if edge in modules and edge != name and edge not in (package, "pipeline")}
    return graph


def test_no_import_cycle_in_pipeline() -> None:
    graph = _imports()
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        for target in sorted(graph[module]):
            if target in path:
                cycles.append(path[path.index(target):] + [target])
            elif target not in done:
                visit(target, path + [target])
        done.add(module)

    done: set[str] = set()
    for module in sorted(graph):
        if module not in done:
            visit(module, [module])
    assert cycles == []
