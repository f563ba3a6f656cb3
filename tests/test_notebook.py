"""notebooks/explore.ipynb runs top to bottom on a real warehouse and prints
what the warehouse holds."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import nbformat
import pytest
from nbclient import NotebookClient

from pipeline.build import build
from pipeline.config import load
from pipeline.ingest import ingest
from pipeline.simulate import SimulateSettings, simulate

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "explore.ipynb"


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("nb")
    summary = simulate(SimulateSettings(out=out, contacts=150, days=45, start=date(2026, 8, 20)))
    settings = load(summary.config_path)
    ingest(settings.lake, [out / "exports"])
    build(settings)
    return settings.warehouse


def test_notebook_answers_the_three_questions(warehouse: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVO_WAREHOUSE", str(warehouse))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    printed = [
        "".join(output.get("text", "") for output in cell.get("outputs", []) if output.get("name") == "stdout")
        for cell in notebook.cells if cell.cell_type == "code"
    ]
    con = duckdb.connect(str(warehouse), read_only=True)
    # 1. Brazil marketing last month (the month before the newest billing month).
    month, cost, charged, total = con.execute("""
        select billing_month, sum(cost_micros), sum(units) filter (where pricing_type = 'regular'), sum(units)
        from costs_monthly
        where market = 'Brazil' and category = 'marketing' and billing_month = date '2026-09-01'
        group by billing_month
    """).fetchall()[0]
    assert month == date(2026, 9, 1) and cost > 0
    assert printed[1] == (f"Brazil marketing 2026-09: USD {cost / 1_000_000:,.2f} "
                          f"for {charged:,} charged of {total:,} delivered messages\n")
    # 2. The template that wastes most comes first.
    top = con.execute("""
        select coalesce(template_name, '(free-form)'), reason, sum(cost_micros) from wasted_spend
        group by all order by 3 desc, count(*) desc, 1, 2 limit 1
    """).fetchall()[0]
    first_line = printed[2].splitlines()[0]
    assert first_line.split()[:2] == [top[0], top[1]]
    assert first_line.endswith(f"USD {top[2] / 1_000_000:,.2f}")
    # 3. The last writer may be free-texted at the newest data, not 25 hours later.
    lines = printed[3].splitlines()
    assert lines[0].endswith("at the newest data: allowed")
    assert lines[1].endswith("25 hours later: templates only")
    assert lines[2].startswith("same question from the shell: convo window --phone-number-id ")
    as_of = con.execute("select max(sent_at) from messages").fetchall()[0][0]
    assert printed[0] == f"data up to {as_of:%Y-%m-%d %H:%M} UTC\n"
    assert as_of.date() - date(2026, 8, 20) <= timedelta(days=46)
