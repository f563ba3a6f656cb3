"""The per-thread stage on thread-hash shards (DESIGN "Sort once"): any shard count gives
the same tables.

One simulated tenant, dirty, over 470 days from 2025-06-20: the CBP -> PMP switch of
2025-07-01 (DOMAIN R13-R20), the bsuid cut-over of 2026-03-31 (R2: phone-only records
before, bsuid after) and regime C from 2026-10-01 (R21) all fall inside. Built with 1,
3 and 7 shards ([build] shards), every table is compared row for row (except all, both
ways). The tenant and its one-shard build are the session's (conftest.py `dirty_tenant`,
`one_shard`), shared with tests/test_spark.py.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import duckdb
import pytest

from pipeline.build import build, shards_for
from pipeline.config import Build, Settings
from tests.helpers import rows_differing, warehouse_tables


def built(settings: Settings, shards: int, steps: list[str] | None = None) -> Path:
    target = settings.warehouse.with_name(f"shards-{shards}.duckdb")
    summary = build(replace(settings, warehouse=target, build=Build(shards=shards)),
                    on_step=None if steps is None else steps.append)
    assert summary.shards == shards
    return target


def test_the_tenant_spans_the_three_switches(one_shard: Path) -> None:
    con = duckdb.connect(str(one_shard), read_only=True)
    first, last = con.execute("select min(local_date), max(local_date) from messages").fetchone()
    assert first < date(2025, 7, 1) and last >= date(2026, 10, 1)
    regimes = {row[0] for row in con.execute("select distinct regime from billable_units").fetchall()}
    assert {"A", "B", "C"} <= regimes
    # DOMAIN R2: contacts seen by phone only before the cut-over and with a bsuid after
    assert con.execute("""
        select count(distinct contact_key) from messages
        where contact_bsuid is null and sent_at < timestamptz '2026-03-31 00:00:00+00'
            and contact_key like '%.%'
    """).fetchone()[0] > 0


@pytest.mark.parametrize("shards", [3, 7])
def test_any_shard_count_gives_the_same_tables(dirty_tenant: Settings, one_shard: Path, shards: int) -> None:
    steps: list[str] = []
    one, many = one_shard, built(dirty_tenant, shards, steps)
    # progress names every shard of the per-thread stage, each running every per-thread model
    assert {step.split(":")[0] for step in steps if step.startswith("per-thread")} == {
        f"per-thread stage, shard {shard} of {shards}" for shard in range(1, shards + 1)}
    assert steps.count(f"per-thread stage, shard {shards} of {shards}: int_thread_messages") == 1
    con = duckdb.connect()
    con.execute(f"attach '{one}' as one (read_only)")
    con.execute(f"attach '{many}' as many (read_only)")
    assert warehouse_tables(con, "one") == warehouse_tables(con, "many")
    for table in sorted(warehouse_tables(con, "one")):
        rows = con.execute(f'select count(*) from one."{table}"').fetchone()[0]
        differing = rows_differing(con, "one", "many", table)
        assert differing == 0, f"{table}: {differing} of {rows} rows differ with {shards} shards"
    assert con.execute('select count(*) from one."messages"').fetchone()[0] > 30_000


def test_the_default_shard_count_fits_memory_and_no_more() -> None:
    """One shard while the messages fit at 600 bytes each (it runs in the warehouse file,
    which DuckDB can evict); past that, in-memory shards at 800 bytes a message, the size
    at which the 100M lake's shards stopped spilling (bench/README, fifth session)."""
    limit = 6_500_000_000                                   # the default memory limit
    assert shards_for(10_000_000, limit) == 1               # 6.0 GB
    assert shards_for(10_833_333, limit) == 1               # 6.4999998 GB: still fits
    assert shards_for(10_833_334, limit) == 2               # past it: never one in-memory shard
    assert shards_for(100_000_000, limit) == 13             # 80 GB / 6.5 GB = 12.3
    assert shards_for(0, limit) == 1
