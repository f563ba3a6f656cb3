"""The 2026 changes to who a contact is and where it is billed, through the warehouse:
the standalone markets (DOMAIN R22) on their first day, and the bsuid cut-over of
2026-03-31 (R2: one platform conversation seen by phone before and by bsuid after is
one contact).

For each new market one contact gets a marketing template at 23:30 on the day before
and one at 00:30 on the first day, in the business number's timezone (Sao Paulo,
UTC-3: the market, like the regime, switches at the WABA's local midnight, R1). The
day before is billed in the old regional group, the first day in the new market, each
at the shipped illustrative card's marketing rate written out below by hand (the
regional groups' rates of its 2025-01-01 edition; the new markets' rates of their
first edition, 2026-07-01 or 2026-10-01).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from pipeline.build import build
from pipeline.config import default_rate_card, load
from pipeline.ingest import ingest
from pipeline.simulate.run import SimulateSettings, simulate
from tests.helpers import SAO_PAULO, Thread, build_threads, iso, local, message, project, write_jsonl

JULY = date(2026, 7, 1)
OCTOBER = date(2026, 10, 1)
APAC, CEE, MIDDLE_EAST = "Rest of Asia Pacific", "Rest of Central & Eastern Europe", "Rest of Middle East"

# country, contact phone (or bsuid), first day, (old market, marketing micros), (new market, marketing micros)
CHANGES = [
    ("HK", "+85251234567", JULY, (APAC, 73_200), ("Hong Kong", 73_200)),
    ("SG", "+6581234567", JULY, (APAC, 73_200), ("Singapore", 73_200)),
    ("HU", "+36201234567", JULY, (CEE, 86_000), ("Hungary", 86_000)),
    ("PL", "+48512345678", JULY, (CEE, 86_000), ("Poland", 36_600)),
    ("RO", "+40712034567", JULY, (CEE, 86_000), ("Romania", 86_000)),
    ("QA", "+97433123456", JULY, (MIDDLE_EAST, 34_100), ("Qatar", 34_100)),
    ("BD", "+8801812345678", OCTOBER, (APAC, 73_200), ("Bangladesh", 73_200)),
    ("IQ", "+9647912345678", OCTOBER, (MIDDLE_EAST, 34_100), ("Iraq", 34_100)),
    ("KZ", "+77710009998", OCTOBER, ("Other", 60_400), ("Kazakhstan", 60_400)),
    ("KW", "+96550012345", OCTOBER, (MIDDLE_EAST, 34_100), ("Kuwait", 79_200)),
    ("MA", "+212650123456", OCTOBER, ("Rest of Africa", 22_500), ("Morocco", 41_400)),
    ("NP", "+9779841234567", OCTOBER, (APAC, 73_200), ("Nepal", 73_200)),
    ("OM", "+96892123456", OCTOBER, (MIDDLE_EAST, 34_100), ("Oman", 34_100)),
    ("LK", "+94712345678", OCTOBER, (APAC, 73_200), ("Sri Lanka", 73_200)),
    ("UA", "+380501234567", OCTOBER, (CEE, 86_000), ("Ukraine", 86_000)),
    # Western Sahara shares Morocco's calling code; known here by bsuid only (R2, R22)
    ("EH", "EH.20261001", OCTOBER, ("Rest of Africa", 22_500), ("Morocco", 41_400)),
]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("markets")
    threads = []
    for country, contact, first_day, _, _ in CHANGES:
        bsuid = contact if "." in contact else None
        thread = Thread(country, None if bsuid else contact)
        midnight = local(f"{first_day} 00:00")
        fields = {"contact_bsuid": bsuid} if bsuid else {}
        thread.template(midnight - timedelta(minutes=30), "marketing", **fields)
        thread.template(midnight + timedelta(minutes=30), "marketing", **fields)
        threads.append(thread)
    settings = project(root, card=default_rate_card().read_text())
    con, _ = build_threads(settings, threads, root)
    yield con
    con.close()


@pytest.mark.parametrize(("country", "contact", "first_day", "before", "after"), CHANGES,
                         ids=[change[0] for change in CHANGES])
def test_new_market_on_its_first_day(warehouse, country, contact, first_day, before, after) -> None:
    rows = warehouse.execute(
        "select billable_units.billing_date, billable_units.country_code, billable_units.market, "
        "billable_units.cost_micros, messages.market "
        "from billable_units join messages using (message_id) "
        "where billable_units.message_id like ? order by billable_units.started_at", [f"{country}-%"]).fetchall()
    assert rows == [
        (first_day - timedelta(days=1), country, before[0], before[1], before[0]),
        (first_day, country, after[0], after[1], after[0]),
    ]


# --------------------------------------------------------------------------
# R2: pairing across the bsuid cut-over (2026-03-31)
# --------------------------------------------------------------------------

def record(message_id: str, moment: str, direction: str, conversation_id: int, phone: str | None = None,
           bsuid: str | None = None) -> dict[str, object]:
    outbound = direction == "outbound"
    return message(
        message_id=message_id, phone_number_id=SAO_PAULO, contact_phone=phone, contact_bsuid=bsuid,
        direction=direction, status="delivered" if outbound else "received", timestamp=iso(local(moment)),
        delivered_at=iso(local(moment)) if outbound else None, conversation_id=conversation_id)


def test_r2_a_conversation_across_the_cut_over_is_one_contact(tmp_path: Path) -> None:
    records = [
        # Ana: by phone only before the cut-over, by bsuid only after, one platform conversation
        record("ana-1", "2026-03-30 22:00", "inbound", 4242, phone="+5511990001111"),
        record("ana-2", "2026-03-30 22:05", "outbound", 4242, phone="+5511990001111"),
        record("ana-3", "2026-03-31 10:00", "inbound", 4242, bsuid="BR.cutover1"),
        record("ana-4", "2026-03-31 10:05", "outbound", 4242, bsuid="BR.cutover1"),
        # Bia: phone only, in a conversation with no bsuid-only record: her phone stays her key
        record("bia-1", "2026-03-30 09:00", "inbound", 5555, phone="+5511990002222"),
        # Caio: seen with a bsuid on a record, and in a conversation whose bsuid-only
        # records name another one: the bsuid seen with the phone wins
        record("caio-1", "2026-04-02 09:00", "inbound", 6666, phone="+5511990003333", bsuid="BR.caio"),
        record("caio-2", "2026-04-03 09:00", "inbound", 7777, phone="+5511990003333"),
        record("caio-3", "2026-04-03 09:01", "inbound", 7777, bsuid="BR.other"),
    ]
    settings = project(tmp_path)
    ingest(settings.lake, [write_jsonl(tmp_path / "exports" / "messages.jsonl", records)])
    build(settings)
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    assert con.execute("select * from int_contact_keys order by contact_phone").fetchall() == [
        (1, "+5511990001111", "BR.cutover1"),
        (1, "+5511990003333", "BR.caio"),
    ]
    assert con.execute("select message_id, contact_key from messages order by message_id").fetchall() == [
        ("ana-1", "BR.cutover1"), ("ana-2", "BR.cutover1"), ("ana-3", "BR.cutover1"), ("ana-4", "BR.cutover1"),
        ("bia-1", "+5511990002222"),
        ("caio-1", "BR.caio"), ("caio-2", "BR.caio"), ("caio-3", "BR.other"),
    ]
    # one thread: one customer service window (inbound 22:00 and 10:00, 12 h apart, R4)
    # and one rebuilt conversation of four messages
    assert con.execute(
        "select inbound_count from service_windows where contact_key = 'BR.cutover1'").fetchall() == [(2,)]
    assert con.execute(
        "select messages_count from conversations where contact_key = 'BR.cutover1'").fetchall() == [(4,)]


def test_r2_a_simulated_tenant_across_the_cut_over_reconciles_fully(tmp_path: Path) -> None:
    summary = simulate(SimulateSettings(out=tmp_path, contacts=300, days=25, seed=3, start=date(2026, 3, 20)))
    settings = load(summary.config_path)
    ingest(settings.lake, [tmp_path / "exports"])
    built = build(settings)
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    # the case: platform conversations with phone-only records and bsuid-only records,
    # whose phone no record ever carries beside a bsuid
    spanning = con.execute("""
        select count(*) from (
            select tenant_id, conversation_id, max(contact_phone) as phone
            from messages
            where conversation_id is not null
            group by all
            having count(*) filter (where contact_bsuid is null and contact_phone is not null) > 0
                and count(*) filter (where contact_phone is null and contact_bsuid is not null) > 0
        ) as spanning
        where phone not in (select contact_phone from messages
                            where contact_phone is not null and contact_bsuid is not null)
    """).fetchone()[0]
    assert spanning > 0
    assert con.execute("select distinct outcome from conversation_reconciliation").fetchall() == [("matched",)]
    rebuilt = con.execute("select count(*) from conversations").fetchone()[0]
    assert [line for line in built.checks if line.startswith("conversations:")] == [
        f"conversations: {rebuilt:,} rebuilt, {rebuilt:,} matched exported records (100.0%), 0 differ"]
