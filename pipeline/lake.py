"""Where the lake keeps each dataset, and how to read it back.

Layout under the lake folder:
    messages/date=YYYY-MM-DD/data.parquet       (UTC date of sent_at)
    conversations/date=YYYY-MM-DD/data.parquet  (UTC date of started_at)
    events/date=YYYY-MM-DD/data.parquet         (UTC date of created_at)
    templates/data.parquet
    quarantine/source=<sha256 prefix>.parquet   (one file per rejected source file)
Every file is written to a temporary name and renamed into place, so a reader
sees either the old partition or the new one, never half of one.
"""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.locking import crash_point
from pipeline.schema import DATASETS, Dataset

PARTITION_FILE = "data.parquet"


def dataset_dir(lake: Path, dataset: str) -> Path:
    return lake / dataset


def partition_path(lake: Path, dataset: Dataset, partition: str | None) -> Path:
    if dataset.partition_by is None or partition is None:
        return dataset_dir(lake, dataset.name) / PARTITION_FILE
    return dataset_dir(lake, dataset.name) / f"date={partition}" / PARTITION_FILE


def files(lake: Path, dataset: str) -> list[Path]:
    """The Parquet files of a dataset, in partition order."""
    root = dataset_dir(lake, dataset)
    if not root.is_dir():
        return []
    if dataset == "quarantine":
        return sorted(root.glob("source=*.parquet"))
    if DATASETS[dataset].partition_by is None:
        single = root / PARTITION_FILE
        return [single] if single.is_file() else []
    return sorted(root.glob(f"date=*/{PARTITION_FILE}"))


def quarantine_path(lake: Path, source_sha256: str) -> Path:
    return dataset_dir(lake, "quarantine") / f"source={source_sha256[:16]}.parquet"


def replace_atomically(tmp: Path, final: Path) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    crash_point("lake.replace")
    os.replace(tmp, final)


def sql_list(paths: list[Path]) -> str:
    """A DuckDB list literal of file paths (paths come from our own lake, never user SQL)."""
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"
