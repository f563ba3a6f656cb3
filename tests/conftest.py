from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.build import build
from pipeline.config import Build, Settings, load
from tests.helpers import CONFIG, simulated_tenant


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
    Its 553 export files make the ingest the slow part (~25 s), whatever the contact count."""
    return simulated_tenant(tmp_path_factory.mktemp("dirty-tenant"), contacts=80, seed=3)


@pytest.fixture(scope="session")
def one_shard(dirty_tenant: Settings) -> Path:
    """The dirty tenant built by the DuckDB engine in one shard: the reference warehouse
    (read-only for the tests that use it)."""
    target = dirty_tenant.warehouse.with_name("one-shard.duckdb")
    summary = build(replace(dirty_tenant, warehouse=target, build=Build(shards=1)))
    assert summary.shards == 1
    return target
