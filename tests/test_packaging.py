"""The wheel carries sql/, reports/ and data/ inside the package, and the
installed package finds them there (pip install . outside the checkout)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_ships_sql_reports_and_data(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True,
    )
    wheel = next(tmp_path.glob("convo-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("sql", "data"):
        shipped = {p.relative_to(ROOT).as_posix() for p in (ROOT / folder).rglob("*") if p.is_file()}
        assert shipped, folder
        assert {f"pipeline/{name}" for name in shipped} <= names
    assert "pipeline/sql/marts/messages.sql" in names
    assert "pipeline/data/market_map.csv" in names
    # Installed, paths.py finds the shipped folders inside the package.
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    probe = ("import pipeline.paths as p; "
             "print(p.sql_dir().relative_to(p._PACKAGE), p.data_dir().relative_to(p._PACKAGE))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env={"PYTHONPATH": str(target)},
                         check=True, capture_output=True, text=True).stdout
    assert out.split() == ["sql", "data"]
