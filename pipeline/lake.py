"""Where the lake keeps each dataset, and how to read it back.

Layout under the lake folder:
    messages/date=YYYY-MM-DD/data.parquet       (UTC date of sent_at)
    conversations/date=YYYY-MM-DD/data.parquet  (UTC date of started_at)
    events/date=YYYY-MM-DD/data.parquet         (UTC date of created_at)
    templates/data.parquet
    quarantine/source=<sha256 prefix>.parquet   (one file per rejected source file)
Every file is written to a temporary name and renamed into place, so a reader
sees either the old partition or the new one, never half of one. The files one
ingest changes are renamed as one commit: their list is journalled first
(`_commit.json`), so an ingest killed between two renames is rolled forward by
the next ingest or build (recover) before either reads the lake.
"""

from __future__ import annotations

import json
import os
import shutil
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


LOCK = ".ingest.lock"      # held by an ingest (writing) and by a build (reading the lake)
JOURNAL = "_commit.json"
STAGING = ".writing"       # <dataset>/.writing: files staged by an ingest, not yet renamed


def commit(lake: Path, renames: list[tuple[Path, Path]]) -> None:
    """Rename staged files into place (staged -> final) as one change (see the module doc)."""
    if renames:
        journal = lake / JOURNAL
        tmp = journal.with_name(JOURNAL + ".tmp")
        tmp.write_text(json.dumps([[str(staged.relative_to(lake)), str(final.relative_to(lake))]
                                   for staged, final in renames]), encoding="utf-8")
        os.replace(tmp, journal)
    recover(lake)


def recover(lake: Path) -> int:
    """Finish a commit a killed ingest left half-done; clear its staging. Call under the lake's lock."""
    journal = lake / JOURNAL
    done = 0
    if journal.is_file():
        for staged, final in json.loads(journal.read_text(encoding="utf-8")):
            if (lake / staged).exists():
                replace_atomically(lake / staged, lake / final)
                done += 1
        journal.unlink()
    for staging in lake.glob(f"*/{STAGING}"):
        shutil.rmtree(staging, ignore_errors=True)
    for leftover in lake.glob("quarantine/*.tmp"):
        leftover.unlink(missing_ok=True)
    return done


def sql_list(paths: list[Path]) -> str:
    """A DuckDB list literal of file paths (paths come from our own lake, never user SQL)."""
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"
