from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import Settings, load
from tests.helpers import CONFIG



@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder with a convo.toml (two numbers: Sao Paulo and Kolkata)."""
    (tmp_path / "convo.toml").write_text(CONFIG)
    return tmp_path


@pytest.fixture
def settings(project: Path) -> Settings:
    return load(project / "convo.toml")


