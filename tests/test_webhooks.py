"""Meta Cloud API webhook logs -> the lake (DESIGN.md "Meta Cloud API webhook logs"): every
webhook shape, bad bodies, statuses out of order and twice, Meta's tier updates and their mart,
and the simulated tenant built from webhook logs against the same tenant's platform exports.

Fixtures are hand-written POST bodies; every expected row is worked out from DOMAIN and
META_FACTS by hand. Times: 1788256800 is 2026-09-01T10:00:00Z.
"""

from __future__ import annotations

import gzip
import json
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from pipeline import lake
from pipeline.build import build
from pipeline.cli import cli
from pipeline.config import Settings, load
from pipeline.ingest import ingest
from pipeline.simulate import SimulateSettings, simulate
from tests.helpers import message, write_jsonl

UTC = timezone.utc
T0 = 1788256800                      # 2026-09-01T10:00:00Z
AT_T0 = datetime(2026, 9, 1, 10, 0, 0, tzinfo=UTC)
NUMBER = "555000001"                 # the Sao Paulo number of tests/conftest.py's convo.toml
WABA = "102290129340398"


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(T0 + seconds, UTC)


def body(*changes: dict, waba: str = WABA) -> dict:
    return {"object": "whatsapp_business_account", "entry": [{"id": waba, "changes": list(changes)}]}


def messages_change(contacts: list | None = None, messages: list | None = None,
                    statuses: list | None = None, number: str = NUMBER) -> dict:
    value: dict = {"messaging_product": "whatsapp",
                   "metadata": {"display_phone_number": "5511955510101", "phone_number_id": number}}
    for name, items in (("contacts", contacts), ("messages", messages), ("statuses", statuses)):
        if items is not None:
            value[name] = items
    return {"value": value, "field": "messages"}


def inbound(message_id: str, seconds: int, kind: str = "text", **fields: object) -> dict:
    return {"from": "5511987654321", "id": message_id, "timestamp": str(T0 + seconds), "type": kind,
            kind: {"body": "hi"}, **fields}


def status(message_id: str, state: str, seconds: int, **fields: object) -> dict:
    return {"id": message_id, "status": state, "timestamp": str(T0 + seconds),
            "recipient_id": "5511987654321", **fields}


def contact(name: str = "Ana", **ids: str) -> dict:
    return {"profile": {"name": name}, **(ids or {"wa_id": "5511987654321"})}


MARKETING = {"billable": True, "pricing_model": "PMP", "type": "regular", "category": "marketing"}
SERVICE_FREE = {"billable": False, "pricing_model": "PMP", "type": "free_customer_service", "category": "service"}


def write_bodies(path: Path, bodies: list[object]) -> Path:
    """JSONL, one body a line (a str is written as it is: a broken line)."""
    return write_jsonl(path, bodies)


def rows(lake_dir: Path, dataset: str, columns: str, order: str = "1") -> list[tuple]:
    files = lake.files(lake_dir, dataset)
    if not files:
        return []
    return duckdb.sql(f"select {columns} from read_parquet({lake.sql_list(files)}) order by {order}").fetchall()


MESSAGE_COLUMNS = ("message_id, tenant_id, phone_number_id, contact_bsuid, contact_phone, contact_name, direction, "
                   "type, template_name, template_category, status, error_code, sent_at, delivered_at, "
                   "referral_source, conversation_id, pricing_billable, pricing_model, pricing_type, pricing_category")


def counts(summary: object) -> tuple[int, int, int, int]:
    return (summary.total("read"), summary.total("accepted"),  # type: ignore[attr-defined]
            summary.total("duplicates"), summary.total("quarantined"))  # type: ignore[attr-defined]


# ---- inbound messages ---------------------------------------------------------------------------

def test_inbound_text_media_and_interactive_are_received_messages(tmp_path: Path) -> None:
    source = write_bodies(tmp_path / "hooks.jsonl", [
        body(messages_change([contact("Ana")], [inbound("wamid.t", 0)])),
        body(messages_change([contact("Ana")], [
            inbound("wamid.i", 60, "image"),
            inbound("wamid.b", 120, "interactive"),
        ])),
    ])
    summary = ingest(tmp_path / "lake", [source])
    assert counts(summary) == (3, 3, 0, 0)
    assert summary.datasets == ["meta_webhooks"]
    # No tenant (Meta sends none), the phone as E.164, status received, no delivery.
    expected = [
        ("wamid.b", None, 555000001, None, "+5511987654321", "Ana", "inbound", "interactive", None, None,
         "received", None, at(120), None, None, None, None, None, None, None),
        ("wamid.i", None, 555000001, None, "+5511987654321", "Ana", "inbound", "image", None, None,
         "received", None, at(60), None, None, None, None, None, None, None),
        ("wamid.t", None, 555000001, None, "+5511987654321", "Ana", "inbound", "text", None, None,
         "received", None, AT_T0, None, None, None, None, None, None, None),
    ]
    assert rows(tmp_path / "lake", "messages", MESSAGE_COLUMNS) == expected


def test_an_ad_or_post_referral_is_an_entry_point_arrival(tmp_path: Path) -> None:
    # DOMAIN R15: a click-to-WhatsApp ad arrival; Meta's source_type "post" is a Page/post entry point.
    ad = {"source_url": "https://fb.me/x", "source_id": "1", "source_type": "ad", "ctwa_clid": "c"}
    post = dict(ad, source_type="post")
    source = write_bodies(tmp_path / "hooks.jsonl", [
        body(messages_change([contact()], [inbound("wamid.ad", 0, referral=ad),
                                           inbound("wamid.post", 1, referral=post),
                                           inbound("wamid.none", 2)])),
    ])
    ingest(tmp_path / "lake", [source])
    assert rows(tmp_path / "lake", "messages", "message_id, referral_source") == [
        ("wamid.ad", "ad"), ("wamid.none", None), ("wamid.post", "page_cta")]


def test_bsuid_only_phone_only_both_and_parent_ids(tmp_path: Path) -> None:
    # DOMAIN R2: user_id / from_user_id / recipient_user_id (else parent_*) are the bsuid;
    # wa_id / from / recipient_id, when present, the phone. The name comes from the contact
    # whose ids match the message (else a username).
    bsuid, parent = "US.13491208655302741918", "US.11815799212886844830"
    only_bsuid = {"from_user_id": bsuid, "id": "wamid.u", "timestamp": str(T0), "type": "text"}
    only_parent = {"from_parent_user_id": parent, "id": "wamid.p", "timestamp": str(T0 + 1), "type": "text"}
    both = {"from": "16505551234", "from_user_id": bsuid, "id": "wamid.both", "timestamp": str(T0 + 2),
            "type": "text"}
    status_only_bsuid = {"id": "wamid.s", "status": "delivered", "timestamp": str(T0 + 3),
                         "recipient_user_id": bsuid, "pricing": SERVICE_FREE}
    phone_only = inbound("wamid.phone", 4)
    source = write_bodies(tmp_path / "hooks.jsonl", [
        body(messages_change([{"profile": {"name": "Sheena", "username": "@sheena"}, "user_id": bsuid}],
                             [only_bsuid])),
        body(messages_change([{"profile": {"username": "@pablo"}, "parent_user_id": parent}], [only_parent])),
        body(messages_change([{"profile": {"name": "Other"}, "wa_id": "19998887777"},
                              {"profile": {"name": "Sheena"}, "wa_id": "16505551234", "user_id": bsuid}], [both])),
        body(messages_change([{"profile": {"name": "Sheena"}, "user_id": bsuid}], statuses=[status_only_bsuid])),
        body(messages_change([contact("Ana")], [phone_only])),
    ])
    summary = ingest(tmp_path / "lake", [source])
    assert counts(summary) == (5, 5, 0, 0)
    assert rows(tmp_path / "lake", "messages", "message_id, contact_bsuid, contact_phone, contact_name") == [
        ("wamid.both", bsuid, "+16505551234", "Sheena"),
        ("wamid.p", parent, None, "@pablo"),
        ("wamid.phone", None, "+5511987654321", "Ana"),
        ("wamid.s", bsuid, None, "Sheena"),
        ("wamid.u", bsuid, None, "Sheena"),
    ]


def test_a_call_connect_is_an_inbound_call_and_other_call_events_are_quarantined(tmp_path: Path) -> None:
    # DOMAIN R4: a user's call opens a window like a message.
    calls = {"value": {"metadata": {"phone_number_id": NUMBER}, "contacts": [contact()], "calls": [
        {"id": "wacid.1", "event": "connect", "from": "5511987654321", "timestamp": str(T0)},
        {"id": "wacid.1", "event": "terminate", "from": "5511987654321", "timestamp": str(T0 + 90)},
    ]}, "field": "calls"}
    source = write_bodies(tmp_path / "hooks.jsonl", [body(calls)])
    summary = ingest(tmp_path / "lake", [source])
    assert counts(summary) == (2, 1, 0, 1)
    assert summary.quarantine_reasons == {"unsupported_webhook": 1}
    assert rows(tmp_path / "lake", "messages", "message_id, direction, type, status, sent_at") == [
        ("wacid.1", "inbound", "call", "received", AT_T0)]


# ---- statuses -----------------------------------------------------------------------------------

def test_sent_delivered_read_of_one_template_become_one_read_message(tmp_path: Path) -> None:
    # The latest status wins (read); the send is the sent status's time, the delivery the
    # delivered status's (the read one comes later); pricing rides on sent and delivered only
    # (META_FACTS 3.1); a marketing category names a marketing template.
    source = write_bodies(tmp_path / "hooks.jsonl", [
        body(messages_change(statuses=[status("wamid.m", "sent", 0, pricing=MARKETING)])),
        body(messages_change(statuses=[status("wamid.m", "delivered", 5, pricing=MARKETING)])),
        body(messages_change(statuses=[status("wamid.m", "read", 300)])),
    ])
    summary = ingest(tmp_path / "lake", [source])
    assert counts(summary) == (3, 1, 2, 0)
    assert rows(tmp_path / "lake", "messages", MESSAGE_COLUMNS) == [
        ("wamid.m", None, 555000001, None, "+5511987654321", None, "outbound", "template", None, "marketing",
         "read", None, AT_T0, at(5), None, None, True, "PMP", "regular", "marketing"),
    ]


def test_statuses_with_and_without_pricing_and_a_failure(tmp_path: Path) -> None:
    utility_free = {"billable": False, "pricing_model": "PMP", "type": "free_customer_service", "category": "utility"}
    auth_international = {"billable": True, "pricing_model": "PMP", "type": "regular",
                          "category": "authentication-international"}
    failed = status("wamid.f", "failed", 3, errors=[{"code": 131049, "title": "healthy ecosystem"}])
    source = write_bodies(tmp_path / "hooks.jsonl", [
        body(messages_change(statuses=[
            status("wamid.svc", "delivered", 0, pricing=SERVICE_FREE),   # a free-form reply in the CSW
            status("wamid.u", "delivered", 1, pricing=utility_free),     # a utility template in the CSW
            status("wamid.a", "delivered", 2, pricing=auth_international),
            failed,
            status("wamid.n", "sent", 4),                                # no pricing: nothing known
        ])),
    ])
    summary = ingest(tmp_path / "lake", [source])
    assert counts(summary) == (5, 5, 0, 0)
    assert rows(tmp_path / "lake", "messages",
                "message_id, type, template_category, status, error_code, delivered_at, pricing_type, "
                "pricing_category") == [
        # authentication-international is an authentication template (convo applies R25 itself)
        ("wamid.a", "template", "authentication", "delivered", None, at(2), "regular",
         "authentication-international"),
        ("wamid.f", "unknown", None, "failed", 131049, None, None, None),
        ("wamid.n", "unknown", None, "sent", None, None, None, None),
        ("wamid.svc", "unknown", None, "delivered", None, AT_T0, "free_customer_service", "service"),
        ("wamid.u", "template", "utility", "delivered", None, at(1), "free_customer_service", "utility"),
    ]


def test_a_read_status_alone_is_a_delivery_at_its_time(tmp_path: Path) -> None:
    # META_FACTS 3.1: delivered and read at once -> Meta sends only the read status (with pricing).
    source = write_bodies(tmp_path / "hooks.jsonl", [
        body(messages_change(statuses=[status("wamid.r", "read", 10, pricing=MARKETING)]))])
    ingest(tmp_path / "lake", [source])
    assert rows(tmp_path / "lake", "messages", "status, sent_at, delivered_at, type") == [
        ("read", at(10), at(10), "template")]


def test_a_status_before_its_send_and_the_same_event_twice(tmp_path: Path) -> None:
    # Webhooks arrive out of order: delivered comes first, in one ingest; sent and read in a
    # later one; the read status is delivered twice. The message is read, sent at the sent
    # status's time, delivered at the delivered status's.
    first = write_bodies(tmp_path / "a" / "hooks.jsonl", [
        body(messages_change(statuses=[status("wamid.m", "delivered", 7, pricing=MARKETING)]))])
    summary = ingest(tmp_path / "lake", [first])
    assert counts(summary) == (1, 1, 0, 0)
    assert rows(tmp_path / "lake", "messages", "status, sent_at, delivered_at") == [("delivered", at(7), at(7))]
    read = body(messages_change(statuses=[status("wamid.m", "read", 60)]))
    second = write_bodies(tmp_path / "b" / "hooks.jsonl", [
        read, body(messages_change(statuses=[status("wamid.m", "sent", 0, pricing=MARKETING)])), read])
    summary = ingest(tmp_path / "lake", [second])
    assert counts(summary) == (3, 0, 3, 0)
    assert rows(tmp_path / "lake", "messages", "status, sent_at, delivered_at, type, pricing_category") == [
        ("read", AT_T0, at(7), "template", "marketing")]
    # The same event again changes nothing.
    again = write_bodies(tmp_path / "c" / "hooks.jsonl", [read])
    summary = ingest(tmp_path / "lake", [again])
    assert counts(summary) == (1, 0, 1, 0)
    assert summary.partitions_written == 0


def test_a_status_keeps_what_the_platform_export_of_its_message_knows(tmp_path: Path) -> None:
    # An export's send record (tenant, template name, platform conversation) and Meta's later
    # delivered status for it: the status wins, and takes nothing away.
    sent = message(message_id="wamid.x", direction="outbound", type="template", template_name="promo",
                   template_category="marketing", status="sent", contact_phone="+5511987654321",
                   timestamp="2026-09-01T10:00:00Z", conversation_id=42)
    exported = write_jsonl(tmp_path / "exports" / "messages.jsonl", [sent])
    hooks = write_bodies(tmp_path / "hooks" / "hooks.jsonl", [
        body(messages_change(statuses=[status("wamid.x", "delivered", 9, pricing=MARKETING)]))])
    ingest(tmp_path / "lake", [exported])
    ingest(tmp_path / "lake", [hooks])
    assert rows(tmp_path / "lake", "messages",
                "tenant_id, type, template_name, template_category, status, sent_at, delivered_at, "
                "conversation_id, contact_name, pricing_type") == [
        (1, "template", "promo", "marketing", "delivered", AT_T0, at(9), 42, "Ana", "regular")]


# ---- bad input ----------------------------------------------------------------------------------

def test_bad_bodies_changes_and_elements_are_quarantined_and_the_rest_kept(tmp_path: Path) -> None:
    good = inbound("wamid.ok", 0)
    mixed = body(
        messages_change([contact()], [good, {"id": "wamid.no-time", "from": "5511987654321", "type": "text"},
                                      "not an object"],
                        [status("wamid.s", "played", 1), status("wamid.s2", "delivered", 2, pricing=MARKETING),
                         status("wamid.g", "sent", 3, recipient_type="group")]),
        {"value": {"metadata": {"phone_number_id": "not-a-number"}, "messages": [good]}, "field": "messages"},
        {"value": {"event": "SOMETHING"}, "field": "account_update"},
        {"value": {}, "field": "message_template_status_update"},
    )
    source = write_bodies(tmp_path / "hooks.jsonl", [
        "{not json",
        {"object": "page", "entry": []},
        {"object": "whatsapp_business_account"},
        {"object": "whatsapp_business_account", "entry": {"id": "1"}},
        body({"field": "messages"}),
        mixed,
        body(),                                         # an entry with no changes: nothing to read
    ])
    summary = ingest(tmp_path / "lake", [source])
    # Read: 6 bad bodies, entries or changes + (3 messages + 3 statuses + 3 changes) of the mixed body.
    assert counts(summary) == (15, 2, 0, 13)
    assert rows(tmp_path / "lake", "messages", "message_id") == [("wamid.ok",), ("wamid.s2",)]
    quarantined = rows(tmp_path / "lake", "quarantine", "line, dataset, reason, detail", "line, detail")
    assert quarantined == [
        (1, "meta_webhooks", "malformed_json", None),
        (2, "meta_webhooks", "bad_value", "object"),
        (3, "meta_webhooks", "missing_required_field", "entry"),
        (4, "meta_webhooks", "bad_value", "entry"),
        (5, "meta_webhooks", "missing_required_field", "entry[0].changes[0].value"),
        (6, "meta_webhooks", "missing_required_field", "entry[0].changes[0].value.messages[1].timestamp"),
        (6, "meta_webhooks", "bad_value", "entry[0].changes[0].value.messages[2]"),
        (6, "meta_webhooks", "unknown_enum", "entry[0].changes[0].value.statuses[0].status"),
        (6, "meta_webhooks", "unsupported_webhook", "entry[0].changes[0].value.statuses[2].group"),
        (6, "meta_webhooks", "bad_value", "entry[0].changes[1].value.metadata.phone_number_id"),
        (6, "meta_webhooks", "unsupported_webhook", "entry[0].changes[2].value.event SOMETHING"),
        (6, "meta_webhooks", "unsupported_webhook", "entry[0].changes[3].field message_template_status_update"),
        (7, "meta_webhooks", "missing_required_field", "entry[0].changes[]"),
    ]
    # A bad element's raw text is the element as written.
    raws = dict(rows(tmp_path / "lake", "quarantine", "detail, raw"))
    assert json.loads(raws["entry[0].changes[0].value.statuses[0].status"])["status"] == "played"


def test_metas_published_text_example_is_malformed_json(tmp_path: Path) -> None:
    # META_FACTS 3.6: Meta's published inbound example lacks a comma after "type": "text".
    published = ('{"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"value": '
                 '{"metadata": {"phone_number_id": "106540352242922"}, "messages": [{"from": "16505551234", '
                 '"id": "wamid.x", "timestamp": "1749416383", "type": "text" "text": {"body": "?"}}]}, '
                 '"field": "messages"}]}]}')
    source = write_bodies(tmp_path / "hooks.jsonl", [published, body(messages_change([contact()], [inbound("wamid.y", 0)]))])
    summary = ingest(tmp_path / "lake", [source])
    assert counts(summary) == (2, 1, 0, 1)
    assert summary.quarantine_reasons == {"malformed_json": 1}


# ---- file forms ---------------------------------------------------------------------------------

def test_a_json_array_and_gzipped_jsonl_are_read_by_content(tmp_path: Path) -> None:
    array = tmp_path / "in" / "hooks-array.json"
    array.parent.mkdir()
    array.write_text(json.dumps([body(messages_change([contact()], [inbound("wamid.a", 0)])),
                                 body(messages_change(statuses=[status("wamid.b", "sent", 1)]))]))
    zipped = tmp_path / "in" / "log.gz"          # no telling extension: recognised by content
    with gzip.open(zipped, "wt") as handle:
        handle.write(json.dumps(body(messages_change([contact()], [inbound("wamid.c", 2)]))) + "\n")
    summary = ingest(tmp_path / "lake", [tmp_path / "in"])
    assert sorted((f.path.name, f.format, f.dataset, f.read) for f in summary.files) == [
        ("hooks-array.json", "json", "meta_webhooks", 2), ("log.gz", "jsonl", "meta_webhooks", 1)]
    assert rows(tmp_path / "lake", "messages", "message_id") == [("wamid.a",), ("wamid.b",), ("wamid.c",)]


# ---- tier updates -------------------------------------------------------------------------------

def tier_update(seconds: int, tier: str, category: str = "UTILITY", region: str = "Brazil",
                month: str = "2026-09", waba: str = "waba-1") -> dict:
    return body({"value": {"volume_tier_info": {"tier_update_time": T0 + seconds, "pricing_category": category,
                                                "tier": tier, "effective_month": month, "region": region},
                           "event": "VOLUME_BASED_PRICING_TIER_UPDATE"}, "field": "account_update"}, waba=waba)


def test_tier_updates_keep_the_earliest_of_one_change(tmp_path: Path) -> None:
    # META_FACTS 2.3: several webhooks for one change -> the lowest tier_update_time.
    source = write_bodies(tmp_path / "hooks.jsonl", [
        tier_update(100, "25000001:50000000", region="India", waba=WABA),
        tier_update(50, "25000001:50000000", region="India", waba=WABA),
        tier_update(70, "50000001:MAX", region="India", waba=WABA),
        tier_update(0, "lots", region="India", waba=WABA),
    ])
    summary = ingest(tmp_path / "lake", [source])
    assert counts(summary) == (4, 2, 1, 1)
    assert summary.quarantine_reasons == {"bad_value": 1}
    assert rows(tmp_path / "lake", "meta_tier_updates",
                "waba_id, tier_update_time, pricing_category, tier_lower, tier_upper, effective_month, region") == [
        (WABA, at(50), "utility", 25000001, 50000000, "2026-09", "India"),
        (WABA, at(70), "utility", 50000001, None, "2026-09", "India"),
    ]


def test_meta_tier_updates_mart_sets_metas_tier_beside_convos(settings: Settings, tmp_path: Path) -> None:
    # Two utility templates to a Brazilian phone, delivered outside any window in September 2026
    # (regime B, DOMAIN R18): charged, counted in the first utility tier of Brazil (R24), which
    # billable_units writes "1:<upper>". Meta's updates for waba-1 (tenant 1 in convo.toml):
    # the first tier, written from 0 (agrees); a higher tier than convo counted (convo lower);
    # authentication, of which convo charged nothing; and a WABA convo.toml does not name.
    templates = [
        message(message_id=f"wamid.u{index}", direction="outbound", type="template", template_name="bill",
                template_category="utility", status="delivered", timestamp=f"2026-09-0{index}T12:00:00Z",
                delivered_at=f"2026-09-0{index}T12:00:05Z")
        for index in (1, 2)
    ]
    exported = write_jsonl(tmp_path / "exports" / "messages.jsonl", templates)
    ingest(settings.lake, [exported])
    hooks = write_bodies(tmp_path / "hooks" / "hooks.jsonl", [
        tier_update(0, "0:TIER_UPPER"), tier_update(10, "100000001:MAX"),
        tier_update(20, "100000001:MAX", category="AUTHENTICATION"),
        tier_update(30, "25000001:50000000", region="India", waba=WABA),
    ])
    build(settings)
    # The shipped card's first Brazil utility tier, as billable_units labels it (the card is data).
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    (first_tier,) = con.execute(
        "select distinct tier from billable_units where category = 'utility' and pricing_type = 'regular'"
    ).fetchone()
    con.close()
    assert first_tier.startswith("1:")
    hooks.write_text(hooks.read_text().replace("TIER_UPPER", first_tier.split(":")[1]))
    ingest(settings.lake, [hooks])
    build(settings)
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    got = con.execute("""
        select tier_update_at, effective_month, region, pricing_category, tier_lower, tier_upper,
               tenant_id, convo_tier, convo_charged_units, outcome
        from meta_tier_updates order by tier_update_at
    """).fetchall()
    upper = int(first_tier.split(":")[1])
    assert got == [
        (AT_T0, date(2026, 9, 1), "Brazil", "utility", 0, upper, 1, first_tier, 2, "agrees"),
        (at(10), date(2026, 9, 1), "Brazil", "utility", 100000001, None, 1, first_tier, 2, "convo_tier_lower"),
        (at(20), date(2026, 9, 1), "Brazil", "authentication", 100000001, None, 1, None, 0, "no_convo_units"),
        (at(30), date(2026, 9, 1), "India", "utility", 25000001, 50000000, None, None, 0, "waba_not_configured"),
    ]
    # The grain: one row per update (waba_id x effective_month x pricing_category x region x tier_lower).
    assert con.execute("""
        select count(*) = count(distinct (waba_id, effective_month, pricing_category, region, tier_lower))
        from meta_tier_updates
    """).fetchone() == (True,)


# ---- the simulated tenant, both ways -------------------------------------------------------------

def test_simulate_meta_webhooks_writes_jsonl_gzip_and_arrays(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["simulate", "--out", str(tmp_path / "sim"), "--contacts", "20",
                                      "--days", "3", "--format", "meta-webhooks"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    names = sorted(path.name for path in (tmp_path / "sim" / "webhooks").iterdir())
    assert names == ["webhooks-2026-09-01.jsonl", "webhooks-2026-09-02.jsonl.gz", "webhooks-2026-09-03.json"]
    assert "webhook bodies" in result.output
    assert not (tmp_path / "sim" / "exports").exists()
    assert (tmp_path / "sim" / "convo.toml").is_file()


def test_simulate_refuses_dirty_webhooks(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--dirty"):
        simulate(SimulateSettings(out=tmp_path / "sim", contacts=2, days=1, dirty=True, format="meta-webhooks"))


# Tables a webhook log cannot fill: the platform's conversations (their ids, closes and events),
# Meta's pricing_analytics, and the build's own bookkeeping. README "From Meta's webhooks" lists them.
EXPORT_ONLY_TABLES = {
    "conversations", "conversation_outcomes", "conversation_reconciliation", "close_rates_daily",
    "analytics_reconciliation", "build_info", "build_lake_files",
}
# Columns Meta's webhooks do not carry: the template's name, a free-form outbound message's type,
# the category of a template never delivered (no pricing object), a failed message's contact
# name (Meta sends no contacts with failed), the platform's conversation id, and where a row came from.
EXPORT_ONLY_COLUMNS = {
    "messages": {"type", "template_name", "category", "is_template", "tie_rank", "contact_name", "conversation_id", "source_file",
                 "source_line"},
    "billable_units": {"template_name"},
    "wasted_spend": {"template_name"},
    "pricing_reconciliation": {"type", "template_name"},
}


def warehouse_of(out: Path, inputs: str) -> Path:
    settings = load(out / "convo.toml")
    ingest(settings.lake, [out / inputs])
    build(settings)
    return settings.warehouse


def test_the_same_tenant_builds_the_same_warehouse_from_webhooks_and_exports(tmp_path: Path) -> None:
    for form in ("exports", "meta-webhooks"):
        simulate(SimulateSettings(out=tmp_path / form, contacts=40, days=20, seed=11, format=form))
    exports = warehouse_of(tmp_path / "exports", "exports")
    webhooks = warehouse_of(tmp_path / "meta-webhooks", "webhooks")
    con = duckdb.connect()
    con.execute(f"attach '{exports}' as exports (read_only)")
    con.execute(f"attach '{webhooks}' as hooks (read_only)")
    tables = [row[0] for row in con.execute(
        "select table_name from duckdb_tables() where database_name = 'exports' order by 1").fetchall()]
    compared = [table for table in tables if table not in EXPORT_ONLY_TABLES and not table.startswith("int_")]
    assert {"messages", "billable_units", "costs_daily", "costs_monthly", "service_windows",
            "wasted_spend", "pricing_reconciliation", "regime_whatif"} <= set(compared)
    different = {}
    for table in compared:
        columns = [row[0] for row in con.execute(
            "select column_name from duckdb_columns() where database_name = 'exports' and table_name = ? "
            "order by column_index", [table]).fetchall()
                   if row[0] not in EXPORT_ONLY_COLUMNS.get(table, set())]
        listed = ", ".join(f'"{column}"' for column in columns)
        one_way = f'select count(*) from (select {listed} from exports."{table}" except all select {listed} from hooks."{table}")'
        other_way = f'select count(*) from (select {listed} from hooks."{table}" except all select {listed} from exports."{table}")'
        missing, extra = con.execute(one_way).fetchone()[0], con.execute(other_way).fetchone()[0]
        if missing or extra:
            different[table] = (missing, extra)
    assert different == {}
    assert con.execute("select count(*) from exports.billable_units where cost_micros > 0").fetchone()[0] > 0
