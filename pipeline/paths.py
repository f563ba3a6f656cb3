"""The one place that finds the shipped folders sql/, reports/ and data/, and that
knows which files a DuckDB database is made of.

In a checkout (or an editable install) they sit beside the package at the top
level; in an installed wheel they are shipped inside the package.
"""

from __future__ import annotations

import shutil
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _shipped(name: str) -> Path:
    inside = _PACKAGE / name
    if inside.is_dir():
        return inside
    beside = _PACKAGE.parent / name
    if beside.is_dir():
        return beside
    raise RuntimeError(f"convo is installed without its {name}/ folder (looked in {inside} and {beside})")


def sql_dir() -> Path:
    return _shipped("sql")


def reports_dir() -> Path:
    return _shipped("reports")


def data_dir() -> Path:
    return _shipped("data")


def remove_duckdb_spill(database: Path) -> None:
    """DuckDB's spill folder beside a database (<file>.tmp), written past its memory limit."""
    shutil.rmtree(str(database) + ".tmp", ignore_errors=True)


def remove_duckdb(database: Path) -> None:
    """A DuckDB database file, its write-ahead log and its spill folder, where they exist."""
    database.unlink(missing_ok=True)
    Path(str(database) + ".wal").unlink(missing_ok=True)
    remove_duckdb_spill(database)
