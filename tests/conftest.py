from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.build import build
from pipeline.config import Build, Settings, load
from tests.helpers import CONFIG, simulated_tenant

# `make test` runs the suite on two workers (pytest-xdist: -n 2 --dist loadscope
# --no-loadscope-reorder). Each module is one unit of work, run on one worker, so its
# module-scoped fixtures are built once; test_shards and test_spark are one unit, as
# they share the session's dirty tenant. The longest units (seconds on the 2-core
# machine, alone) go first, so no worker is left running one of them after the other
# has finished. Without workers the order changes nothing.
UNITS = {"test_shards": "dirty_tenant", "test_spark": "dirty_tenant"}
LONGEST_FIRST = (
    "dirty_tenant",         # ~120 s: one ingest of 553 files, 3 shard builds, 3 Spark builds
    "test_incremental",     # ~90 s: two tenants, four nights each
    "test_alerts_quiet",    # ~60 s: ten tenants
    "test_robust_crash",    # ~55 s: ~20 `convo nightly` processes
    "test_alerts",          # ~20 s
    "test_bench",           # ~18 s: bench/run.py on 20,000 messages
)


def _unit(nodeid: str) -> str:
    module = nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")
    return UNITS.get(module, module)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {unit: place for place, unit in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(_unit(item.nodeid), len(rank)))   # stable: the rest keep their order


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """--dist loadscope with a module (or UNITS' name for it) as the scope."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModuleUnits(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _unit(nodeid)

    return ModuleUnits(config, log)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder with a convo.toml (two numbers: Sao Paulo and Kolkata)."""
    (tmp_path / "convo.toml").write_text(CONFIG)
    return tmp_path


@pytest.fixture
def settings(project: Path) -> Settings:
    return load(project / "convo.toml")


@pytest.fixture(scope="session")
def dirty_tenant(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """tests/helpers.simulated_tenant with 80 contacts (seed 3), ingested once for the session:
    the shard and Spark equality tests build it their ways and compare with `one_shard`.
    Its ingest takes ~12 CPU-s whatever the contact count (553 export files: 2,026 lake
    files written at ~4 ms each; the day files of one dataset are validated together)."""
    return simulated_tenant(tmp_path_factory.mktemp("dirty-tenant"), contacts=80, seed=3)


@pytest.fixture(scope="session")
def one_shard(dirty_tenant: Settings) -> Path:
    """The dirty tenant built by the DuckDB engine in one shard: the reference warehouse
    (read-only for the tests that use it)."""
    target = dirty_tenant.warehouse.with_name("one-shard.duckdb")
    summary = build(replace(dirty_tenant, warehouse=target, build=Build(shards=1)))
    assert summary.shards == 1
    return target
