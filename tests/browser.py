"""Real headless Chromium (Debian's package) for checking the HTML reports."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("Chromium is not installed: `make test` installs Debian's chromium package (apt-get install chromium)")


def _run(page: Path, *args: str) -> str:
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()],
            capture_output=True, text=True, timeout=120, check=True,
        )
    return result.stdout


def dom(page: Path) -> str:
    """The page's DOM as Chromium built it (after parsing, with no network)."""
    return _run(page, "--dump-dom")


def screenshot(page: Path, name: str, height: int = 1800) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    target = ARTIFACTS / f"{name}.png"
    _run(page, f"--screenshot={target}", f"--window-size=1280,{height}")
    assert target.is_file() and target.stat().st_size > 10_000, f"no screenshot of {page}"
    return target
