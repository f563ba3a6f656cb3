"""Ten simulated tenants without incidents fire none of cost_spike, otp_pumping and
failure_spike (bench/alerts_false_positives.py counts them over more seeds and sizes)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from pipeline.build import build
from pipeline.config import load
from pipeline.ingest import ingest
from pipeline.simulate import SimulateSettings, simulate

QUIET_KINDS = ("cost_spike", "otp_pumping", "failure_spike")


@pytest.mark.parametrize("seed", range(1, 11))
def test_a_tenant_without_incidents_fires_no_spike(tmp_path: Path, seed: int) -> None:
    # 45 days from 2026-09-01: regime B, then regime C from 2026-10-01 (a new baseline)
    summary = simulate(SimulateSettings(out=tmp_path, contacts=200, days=45, seed=seed, start=date(2026, 9, 1)))
    settings = load(summary.config_path)
    ingest(settings.lake, [tmp_path / "exports"])
    build(settings)
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        fired = con.execute("select kind, local_date, rule from alerts where kind in ? order by all",
                            [list(QUIET_KINDS)]).fetchall()
    finally:
        con.close()
    assert fired == []
