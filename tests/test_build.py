"""Lake -> warehouse: the messages table (contact keys, countries, markets, local
dates, category at send time) and the quarantine table."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb
import pytest

from pipeline import paths
from pipeline.build import build, discover
from pipeline.config import Build, Settings
from pipeline.ingest import ingest
from tests.helpers import message, write_jsonl

UTC = timezone.utc


def built(settings: Settings, tmp_path: Path, records: list[object], **kwargs: object) -> duckdb.DuckDBPyConnection:
    source = write_jsonl(tmp_path / "exports" / "messages.jsonl", records)
    ingest(settings.lake, [source])
    build(settings, **kwargs)
    return duckdb.connect(str(settings.warehouse), read_only=True)


def test_contact_key_is_the_bsuid_seen_with_the_phone(settings: Settings, tmp_path: Path) -> None:
    # DOMAIN R2: a phone-only record is attributed to the bsuid seen with that phone
    # in the same tenant; else the phone itself is the key.
    con = built(settings, tmp_path, [
        message(message_id="old", contact_phone="+5511987654321", timestamp="2026-03-01T10:00:00Z"),
        message(message_id="new", contact_phone="+5511987654321", contact_bsuid="BR.a1b2c3",
                timestamp="2026-04-01T10:00:00Z"),
        message(message_id="bsuid-only", contact_phone=None, contact_bsuid="BR.a1b2c3",
                timestamp="2026-04-02T10:00:00Z"),
        message(message_id="other-tenant", tenant_id=2, contact_phone="+5511987654321",
                timestamp="2026-03-01T11:00:00Z"),
        message(message_id="phone-only", contact_phone="+5521999990000", timestamp="2026-03-01T12:00:00Z"),
    ])
    got = con.execute("select message_id, contact_key from messages order by message_id").fetchall()
    assert got == [
        ("bsuid-only", "BR.a1b2c3"),
        ("new", "BR.a1b2c3"),
        ("old", "BR.a1b2c3"),
        ("other-tenant", "+5511987654321"),
        ("phone-only", "+5521999990000"),
    ]


def test_country_and_market_by_calling_code_area_code_and_bsuid(settings: Settings, tmp_path: Path) -> None:
    # DOMAIN R22: +1 by area code; a contact known only by bsuid by its prefix.
    con = built(settings, tmp_path, [
        message(message_id="do", contact_phone="+18095550123"),
        message(message_id="jm", contact_phone="+18765550123"),
        message(message_id="pr", contact_phone="+17875550123"),
        message(message_id="us", contact_phone="+12125550123"),
        message(message_id="ca", contact_phone="+14165550123"),
        message(message_id="gb", contact_phone="+447400123456"),
        message(message_id="in-bsuid", contact_phone=None, contact_bsuid="IN.9f8e7d"),
        message(message_id="ng-bsuid", contact_phone=None, contact_bsuid="NG.12345"),
    ])
    got = con.execute("select message_id, country_code, market from messages order by message_id").fetchall()
    assert got == [
        ("ca", "CA", "North America"),
        ("do", "DO", "Rest of Latin America"),
        ("gb", "GB", "United Kingdom"),
        ("in-bsuid", "IN", "India"),
        ("jm", "JM", "Rest of Latin America"),
        ("ng-bsuid", "NG", "Nigeria"),
        ("pr", "PR", "Rest of Latin America"),
        ("us", "US", "North America"),
    ]


def test_a_contacts_country_is_that_of_its_latest_phone_on_every_message(settings: Settings,
                                                                         tmp_path: Path) -> None:
    # DOMAIN R2 (one contact, one key) and R22 (market by the phone's calling code),
    # as sql/intermediate/int_contacts.sql reads them: a contact who changed phones is
    # one contact with one country, its latest phone's, on all its messages; a later
    # message without a phone does not make it a bsuid-prefix country; a contact that
    # never had a phone takes its bsuid's prefix.
    con = built(settings, tmp_path, [
        message(message_id="br-first", contact_bsuid="MX.k1", contact_phone="+5511911112222",
                timestamp="2026-05-01T10:00:00Z"),
        message(message_id="es-first", contact_bsuid="MX.k1", contact_phone="+34600111222",
                timestamp="2026-05-02T10:00:00Z"),
        message(message_id="phone-only-es", contact_bsuid=None, contact_phone="+34600111222",
                timestamp="2026-05-02T12:00:00Z"),
        message(message_id="es-again", contact_bsuid="MX.k1", contact_phone="+34600111222",
                timestamp="2026-05-03T10:00:00Z"),
        message(message_id="br-latest-phone", contact_bsuid="MX.k1", contact_phone="+5511911112222",
                timestamp="2026-05-04T10:00:00Z"),
        message(message_id="no-phone-last", contact_bsuid="MX.k1", contact_phone=None,
                timestamp="2026-05-05T10:00:00Z"),
        message(message_id="bsuid-only", contact_bsuid="MX.k2", contact_phone=None,
                timestamp="2026-05-01T10:00:00Z"),
    ])
    got = con.execute("select message_id, contact_key, country_code, market from messages "
                      "order by message_id").fetchall()
    assert got == [
        ("br-first", "MX.k1", "BR", "Brazil"),
        ("br-latest-phone", "MX.k1", "BR", "Brazil"),
        ("bsuid-only", "MX.k2", "MX", "Mexico"),
        ("es-again", "MX.k1", "BR", "Brazil"),
        ("es-first", "MX.k1", "BR", "Brazil"),
        ("no-phone-last", "MX.k1", "BR", "Brazil"),
        ("phone-only-es", "MX.k1", "BR", "Brazil"),
    ]


def test_zimbabwe_moves_to_rest_of_africa_at_local_midnight(settings: Settings, tmp_path: Path) -> None:
    # DOMAIN R22 (effective-dated map) and R1 (days cut in the number's timezone):
    # 2025-10-01 02:00 UTC is still 2025-09-30 in Sao Paulo (UTC-3).
    con = built(settings, tmp_path, [
        message(message_id="before", contact_phone="+263771234567", timestamp="2025-10-01T02:00:00Z"),
        message(message_id="after", contact_phone="+263771234567", timestamp="2025-10-01T03:00:00Z"),
    ])
    got = con.execute("select message_id, local_date, market from messages order by sent_at").fetchall()
    assert got == [
        ("before", date(2025, 9, 30), "Other"),
        ("after", date(2025, 10, 1), "Rest of Africa"),
    ]


def test_local_date_follows_each_numbers_timezone(settings: Settings, tmp_path: Path) -> None:
    # DOMAIN R1: 2026-09-01 20:00 UTC is 17:00 in Sao Paulo and 01:30 next day in Kolkata.
    con = built(settings, tmp_path, [
        message(message_id="sp", phone_number_id=555000001, timestamp="2026-09-01T20:00:00Z"),
        message(message_id="kol", phone_number_id=555000002, timestamp="2026-09-01T20:00:00Z"),
        message(message_id="unknown", phone_number_id=999, timestamp="2026-09-01T20:00:00Z"),
    ])
    got = con.execute("select message_id, local_date, timezone, is_configured_number from messages "
                      "order by message_id").fetchall()
    assert got == [
        ("kol", date(2026, 9, 2), "Asia/Kolkata", True),
        ("sp", date(2026, 9, 1), "America/Sao_Paulo", True),
        ("unknown", date(2026, 9, 1), "UTC", False),
    ]


def test_category_is_the_templates_category_at_send_time(settings: Settings, tmp_path: Path) -> None:
    catalog = tmp_path / "exports" / "templates.csv"
    catalog.parent.mkdir(parents=True)
    catalog.write_text("name,language,category,updated_at\n"
                       "order_update,en,utility,2026-01-01T00:00:00Z\n"
                       "order_update,en,marketing,2026-09-15T00:00:00Z\n")
    ingest(settings.lake, [catalog])
    outbound = dict(direction="outbound", type="template", template_name="order_update", status="delivered")
    con = built(settings, tmp_path, [
        message(message_id="before", timestamp="2026-09-10T00:00:00Z", **outbound),
        message(message_id="after", timestamp="2026-09-20T00:00:00Z", **outbound),
        message(message_id="own", timestamp="2026-09-20T00:00:00Z", template_category="authentication", **outbound),
        message(message_id="free-form", direction="outbound", type="text", status="read",
                timestamp="2026-09-20T00:00:00Z"),
        message(message_id="inbound", timestamp="2026-09-20T00:00:00Z"),
    ])
    got = con.execute("select message_id, category from messages order by message_id").fetchall()
    assert got == [
        ("after", "marketing"), ("before", "utility"), ("free-form", "service"),
        ("inbound", None), ("own", "authentication"),
    ]


def test_quarantine_table_names_line_reason_and_detail(settings: Settings, tmp_path: Path) -> None:
    con = built(settings, tmp_path, [message(message_id="a"), "{broken", message(message_id="b", status="??")])
    assert con.execute("select line, reason, detail from quarantine order by line").fetchall() == [
        (2, "malformed_json", None), (3, "unknown_enum", "status"),
    ]


def test_as_of_is_the_given_time_else_the_newest_message(settings: Settings, tmp_path: Path) -> None:
    con = built(settings, tmp_path, [message(message_id="a", timestamp="2026-09-01T10:00:00Z"),
                                     message(message_id="b", timestamp="2026-09-02T08:30:00Z")],
                as_of=datetime(2026, 9, 30, tzinfo=UTC))
    assert con.execute("select as_of from build_info").fetchall() == [(datetime(2026, 9, 30, tzinfo=UTC),)]
    con.close()
    summary = build(settings)
    assert summary.as_of == datetime(2026, 9, 2, 8, 30, tzinfo=UTC)
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        assert con.execute("select as_of from build_info").fetchall() == [(datetime(2026, 9, 2, 8, 30, tzinfo=UTC),)]


def test_a_failed_build_keeps_the_previous_warehouse(settings: Settings, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    con = built(settings, tmp_path, [message(message_id="a")])
    con.close()
    before = settings.warehouse.read_bytes()
    sql_root = tmp_path / "sql"
    shutil.copytree(paths.sql_dir(), sql_root)     # the models and the functions they call
    (sql_root / "marts" / "zz_broken.sql").write_text(
        "-- one row per message\n-- config: kind=cross-thread\nselect no_such_column from messages")
    monkeypatch.setattr("pipeline.paths.sql_dir", lambda: sql_root)
    with pytest.raises(duckdb.BinderException):
        build(settings)
    assert settings.warehouse.read_bytes() == before
    assert not settings.warehouse.with_name(settings.warehouse.name + ".building").exists()


def test_models_come_after_what_they_read() -> None:
    order = [model.name for model in discover()]
    assert order.index("int_contact_keys") < order.index("int_contacts") < order.index("messages")
    assert order.index("stg_messages") < order.index("int_contacts")


def test_out_of_memory_is_one_line_naming_the_model(settings: Settings, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A model DuckDB cannot fit in its memory limit (seen at 100M messages) is a one-line
    BuildError naming the model, and the last warehouse stays."""
    import pipeline.stage as stage_module
    from pipeline.build import BuildError

    con = built(settings, tmp_path, [message(message_id="a")])
    con.close()
    before = settings.warehouse.read_bytes()
    real_run = stage_module._run

    def run(con: duckdb.DuckDBPyConnection, model: stage_module.Model) -> None:
        if model.name == "service_windows":   # what DuckDB raises when it cannot pin a block
            raise duckdb.OutOfMemoryException("Out of Memory Error: failed to pin block of size 256.0 KiB "
                                              "(18.8 GiB/18.8 GiB used)\n\nPossible solutions: ...")
        real_run(con, model)

    monkeypatch.setattr(stage_module, "_run", run)
    with pytest.raises(BuildError) as raised:
        build(settings)
    assert str(raised.value) == (
        "model service_windows: DuckDB ran out of memory (Out of Memory Error: failed to pin block of size "
        "256.0 KiB (18.8 GiB/18.8 GiB used)); the last warehouse is left as it was (a larger [build] "
        "memory_limit or more [build] shards in convo.toml may help)")
    assert settings.warehouse.read_bytes() == before


def test_the_build_runs_under_the_configured_memory_limit(settings: Settings, tmp_path: Path) -> None:
    """[build] memory_limit bounds DuckDB (it spills beyond it); build_info says what it was,
    and the spill folder is gone after the build."""
    limited = dataclasses.replace(settings, build=Build(memory_limit="300MB"))
    con = built(limited, tmp_path, [message(message_id="a")])
    # build_info keeps the limit as DuckDB shows it; compare with DuckDB's own rendering of
    # 300MB rather than pinning its wording (it shows binary units: "286.1 MiB" today).
    shown = duckdb.connect().execute("set memory_limit = '300MB'; select current_setting('memory_limit')").fetchall()
    assert con.execute("select memory_limit from build_info").fetchall() == shown
    con.close()
    assert not Path(str(settings.warehouse) + ".building.tmp").exists()
