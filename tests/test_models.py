"""pipeline/models.py: each SQL model declares its kind in its own file; what it reads
comes from DuckDB's parser; the build's stages follow (DESIGN "Sort once")."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline import models, paths
from pipeline.models import ModelError, discover, stages


def sql_root(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "sql"
    for layer in models.LAYERS:
        (root / layer).mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def test_every_shipped_model_declares_its_kind_and_grain() -> None:
    found = discover()
    assert found, "no models"
    for model in found:
        assert model.sql.startswith(("-- one row per", "-- one row:")), model.name
        assert model.kind in models.KINDS, model.name
        if model.kind == "per-thread" and not model.is_temp:
            # kept per-thread rows are replaced by contact (incremental nights, shards)
            assert "tenant_id" in model.sql and "contact_key" in model.sql, model.name


def test_reads_come_from_the_parser_not_from_names_in_comments_or_ctes(tmp_path: Path) -> None:
    root = sql_root(tmp_path, {
        "staging/stg_a.sql": "-- one row per a\nselect 1 as x from lake_a",
        "intermediate/int_b.sql": ("-- one row per b: not from int_c, whatever this comment says\n"
                                   "-- config: kind=cross-thread\n"
                                   "with int_c as (select * from stg_a) select * from int_c"),
        "marts/int_c.sql": "-- one row per c\n-- config: kind=cross-thread\nselect * from int_b join stg_a using (x)",
    })
    by_name = {model.name: model for model in discover(root)}
    assert by_name["int_b"].reads == {"stg_a"}            # int_c there is its own CTE
    assert by_name["int_c"].reads == {"int_b", "stg_a"}
    assert [model.name for model in discover(root)] == ["stg_a", "int_b", "int_c"]


@pytest.mark.parametrize(("header", "error"), [
    ("-- one row per x\n", "'-- config: kind=...' must be one of staging, per-thread, cross-thread, monthly (got None)"),
    ("-- one row per x\n-- config: kind=sometimes\n", "must be one of staging, per-thread, cross-thread, monthly"),
    ("-- one row per x\n-- config: kind=cross-thread, colour=blue\n", "unknown config item 'colour=blue'"),
    ("-- one row per x\n-- config: kind=cross-thread, keep=temp\n",
     "keep=temp (keep=temp is for per-thread and monthly models only)"),
    ("-- one row per x\n-- config: kind=monthly\n", "a monthly model declares its month column (month=...)"),
    ("-- one row per x\n-- config: kind=per-thread, shard_by=contact_key\n", "shard_by=contact_key (one of"),
    ("-- one row per x\n-- config: kind=per-thread, recompute_by=contact_phone\n",
     "recompute_by=contact_phone (one of contact_phone, on cross-thread models)"),
    ("-- one row per x\n-- config: kind=cross-thread, recompute_by=contact_key\n", "recompute_by=contact_key (one of"),
    ("-- one row per x\n-- config: kind=cross-thread, kernel=thread_pass\n",
     "kernel=thread_pass (one of thread_pass, cbp_pass, on per-thread models)"),
    ("-- one row per x\n-- config: kind=per-thread, kernel=magic\n", "kernel=magic (one of thread_pass, cbp_pass, on per-thread"),
])
def test_a_malformed_declaration_names_the_file(tmp_path: Path, header: str, error: str) -> None:
    root = sql_root(tmp_path, {"marts/bad.sql": header + "select 1 as x"})
    with pytest.raises(ModelError) as raised:
        discover(root)
    assert str(raised.value).startswith(str(root / "marts" / "bad.sql"))
    assert error in str(raised.value)


def test_a_cross_thread_model_the_per_thread_stage_reads_may_not_read_a_per_thread_one(tmp_path: Path) -> None:
    root = sql_root(tmp_path, {
        "staging/stg_a.sql": "-- one row per a\n-- config: kind=staging, shard_by=contact_fields\nselect 1 as x from lake_a",
        "intermediate/int_thread.sql": "-- one row per a\n-- config: kind=per-thread\nselect * from stg_a",
        "intermediate/int_totals.sql": "-- one row per a\n-- config: kind=cross-thread\nselect * from int_thread",
        "marts/later.sql": "-- one row per a\n-- config: kind=per-thread\nselect * from int_totals",
    })
    with pytest.raises(ModelError, match=r"model int_totals is read by the per-thread stage but reads a "
                                         r"per-thread model \(int_thread\)"):
        stages(discover(root))


def test_the_shipped_stages() -> None:
    shipped = stages(discover())
    assert [model.name for model in shipped.before] == [
        "stg_messages", "stg_templates", "int_bill_calendar", "int_business_clock", "int_contact_keys",
        "int_conv_closes"]
    per_thread = [model.name for model in shipped.per_thread]
    assert per_thread.index("messages") < per_thread.index("int_thread_messages") < per_thread.index("conversations")
    assert {model.kind for model in shipped.after} <= {"cross-thread", "monthly", "staging"}


def test_a_new_model_is_a_new_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No Python lists models: a per-thread model dropped into sql/marts joins the per-thread stage."""
    root = tmp_path / "sql"
    shutil.copytree(paths.sql_dir(), root)
    (root / "marts" / "thread_sizes.sql").write_text(
        "-- one row per thread: how many messages it holds\n-- config: kind=per-thread\n"
        "select tenant_id, phone_number_id, contact_key, count(*) as messages_count from messages group by all")
    shipped = stages(discover(root))
    assert "thread_sizes" in [model.name for model in shipped.per_thread]
