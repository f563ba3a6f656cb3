"""Helpers the test modules share: records, configs, threads, warehouses, HTML text.

Fixtures stay in conftest.py; everything a test module imports from another lives
here, so no test module imports another.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb

from pipeline import lake
from pipeline.build import BuildSummary, build
from pipeline.config import Settings, load
from pipeline.ingest import ingest

UTC = timezone.utc


# --------------------------------------------------------------------------
# Records and the two-number config (Sao Paulo, Kolkata)
# --------------------------------------------------------------------------

CONFIG = """\
[paths]
lake = "lake"
warehouse = "warehouse.duckdb"
reports = "reports_out"

[[phone_numbers]]
phone_number_id = 555000001
tenant_id = 1
waba_id = "waba-1"
timezone = "America/Sao_Paulo"
currency = "USD"

[[phone_numbers]]
phone_number_id = 555000002
tenant_id = 1
waba_id = "waba-1"
timezone = "Asia/Kolkata"
currency = "USD"
"""


def message(**fields: object) -> dict[str, object]:
    """A valid inbound message record; override any field."""
    record: dict[str, object] = {
        "message_id": "wamid.1",
        "tenant_id": 1,
        "phone_number_id": 555000001,
        "contact_bsuid": None,
        "contact_phone": "+5511987654321",
        "contact_name": "Ana",
        "direction": "inbound",
        "type": "text",
        "template_name": None,
        "template_category": None,
        "status": "received",
        "error_code": None,
        "timestamp": "2026-09-01T10:00:00Z",
        "delivered_at": None,
        "referral_source": None,
        "conversation_id": None,
        "pricing": None,
    }
    record.update(fields)
    return record


def write_jsonl(path: Path, records: list[object]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------
# Billing: a hand-made rate card and threads built for real (tests/test_billing*.py)
# --------------------------------------------------------------------------

SAO_PAULO = 555000001      # America/Sao_Paulo, UTC-3 all year
KOLKATA = 555000002        # Asia/Kolkata, UTC+05:30
TIMEZONES = {SAO_PAULO: ZoneInfo("America/Sao_Paulo"), KOLKATA: ZoneInfo("Asia/Kolkata")}

# Brazil: marketing 0.05, utility 0.01, authentication 0.02, service (CBP) 0.005;
# from 2025-07-01 utility has tiers 1-2 at 0.01, 3-4 at 0.008, 5+ at 0.006 and
# authentication 1-3 at 0.02, 4+ at 0.015 (per tenant x market x month, R24).
# India: marketing 0.01, utility 0.001, authentication 0.002, service 0.0005,
# authentication-international 0.03.
CARD = """\
# a test card: small numbers that are easy to add up
effective_from,market,category,currency,tier_from,tier_to,rate_micros,source
2024-10-01,Brazil,marketing,USD,1,,50000,test
2024-10-01,Brazil,utility,USD,1,,10000,test
2024-10-01,Brazil,authentication,USD,1,,20000,test
2024-10-01,Brazil,service,USD,1,,5000,test
2024-10-01,India,marketing,USD,1,,10000,test
2024-10-01,India,utility,USD,1,,1000,test
2024-10-01,India,authentication,USD,1,,2000,test
2024-10-01,India,authentication-international,USD,1,,30000,test
2024-10-01,India,service,USD,1,,500,test
2025-07-01,Brazil,utility,USD,1,2,10000,test
2025-07-01,Brazil,utility,USD,3,4,8000,test
2025-07-01,Brazil,utility,USD,5,,6000,test
2025-07-01,Brazil,authentication,USD,1,3,20000,test
2025-07-01,Brazil,authentication,USD,4,,15000,test
"""

BILLING_CONFIG = """\
[paths]
lake = "lake"
warehouse = "warehouse.duckdb"

[[phone_numbers]]
phone_number_id = 555000001
tenant_id = 1
waba_id = "waba-1"
timezone = "America/Sao_Paulo"
currency = "USD"
display_phone_number = "+5511900000001"

[[phone_numbers]]
phone_number_id = 555000002
tenant_id = 1
waba_id = "waba-1"
timezone = "Asia/Kolkata"
currency = "USD"

[billing]
rate_card = "card.csv"
business_country = "BR"
auth_international_eligible = {eligible}

[build]
keep_steps = true       # the grain tests and the shard test read the per-thread steps
"""


def project(root: Path, card: str = CARD, eligible: bool = False) -> Settings:
    root.mkdir(parents=True, exist_ok=True)
    (root / "card.csv").write_text(card)
    (root / "convo.toml").write_text(BILLING_CONFIG.format(eligible="true" if eligible else "false"))
    return load(root / "convo.toml")


def local(text: str, phone_number_id: int = SAO_PAULO) -> datetime:
    """A wall-clock time on the business number, e.g. '2025-06-10 10:00'."""
    return datetime.fromisoformat(text).replace(tzinfo=TIMEZONES[phone_number_id])


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Thread:
    """One contact's messages on one business number; ids are name-01, name-02, ..."""

    name: str
    contact: str
    phone_number_id: int = SAO_PAULO
    tenant_id: int = 1
    records: list[dict[str, object]] = field(default_factory=list)

    def _add(self, moment: datetime, **fields: object) -> str:
        message_id = f"{self.name}-{len(self.records) + 1:02d}"
        self.records.append(message(
            message_id=message_id, tenant_id=self.tenant_id, phone_number_id=self.phone_number_id,
            contact_phone=self.contact, timestamp=iso(moment), **fields))
        return message_id

    def user(self, moment: datetime, referral: str | None = None) -> str:
        return self._add(moment, direction="inbound", status="received", referral_source=referral)

    def template(self, moment: datetime, category: str, delivered: datetime | None = None,
                 status: str = "delivered", **fields: object) -> str:
        return self._add(moment, direction="outbound", type="template", template_name=f"{category}_tpl",
                         template_category=category, status=status,
                         delivered_at=iso(delivered or moment) if status in ("delivered", "read") else None,
                         **fields)

    def text(self, moment: datetime, status: str = "delivered", kind: str = "text", **fields: object) -> str:
        failed = status == "failed"
        return self._add(moment, direction="outbound", type=kind, status=status,
                         delivered_at=None if failed or status == "sent" else iso(moment),
                         error_code=131047 if failed else None, **fields)


def build_threads(settings: Settings, threads: list[Thread], tmp: Path,
                  as_of: datetime | None = None) -> tuple[duckdb.DuckDBPyConnection, BuildSummary]:
    records = [record for thread in threads for record in thread.records]
    ingest(settings.lake, [write_jsonl(tmp / "exports" / "messages.jsonl", records)])
    summary = build(settings, as_of=as_of)
    return duckdb.connect(str(settings.warehouse), read_only=True), summary


def units_of(con: duckdb.DuckDBPyConnection, thread: Thread) -> list[tuple[object, ...]]:
    """(unit, category, pricing_type, cost_micros) of a thread's units, in order."""
    return con.execute(
        "select unit, category, pricing_type, cost_micros from billable_units "
        "where contact_key = ? and phone_number_id = ? order by started_at, unit_id",
        [thread.contact, thread.phone_number_id]).fetchall()


def cost_of(con: duckdb.DuckDBPyConnection, thread: Thread) -> int:
    return sum(row[3] for row in units_of(con, thread))


# --------------------------------------------------------------------------
# Windows, lifecycle and outcomes: a third number in Madrid, warehouses from messages
# --------------------------------------------------------------------------

MADRID = 555000003         # Europe/Madrid: DST ends 2026-10-25 03:00 CEST -> 02:00 CET
T0 = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)

WINDOW_CONFIG = CONFIG + """
[[phone_numbers]]
phone_number_id = 555000003
tenant_id = 1
waba_id = "waba-1"
timezone = "Europe/Madrid"
currency = "EUR"

[build]
keep_steps = true       # tests/test_outcomes.py reads the per-thread steps
"""


ts = iso       # the windows and outcomes tests' name for it


def inbound(message_id: str, contact: str, moment: datetime, **fields: object) -> dict[str, object]:
    """An inbound text from a contact given by bsuid (contains a dot) or phone."""
    return message(message_id=message_id, timestamp=ts(moment), **{**_contact(contact), **fields})


def outbound(message_id: str, contact: str, moment: datetime, template: str | None = None,
             **fields: object) -> dict[str, object]:
    """A delivered outbound message: a marketing template when `template` is named, else free-form text."""
    kind = {"type": "template", "template_name": template, "template_category": "marketing"} if template else {}
    return message(message_id=message_id, timestamp=ts(moment),
                   **{"direction": "outbound", "status": "delivered", **_contact(contact), **kind, **fields})


def _contact(contact: str) -> dict[str, object]:
    if "." in contact:
        return {"contact_bsuid": contact, "contact_phone": None}
    return {"contact_bsuid": None, "contact_phone": contact}


def build_warehouse(root: Path, messages: list[dict[str, object]], as_of: datetime | None = None,
                    conversations: list[dict[str, object]] | list[list[dict[str, object]]] | None = None,
                    events: list[dict[str, object]] | None = None) -> tuple[duckdb.DuckDBPyConnection, BuildSummary]:
    """Write exports, ingest them, build; the warehouse opened read-only and the build's summary.

    `conversations` is one export file's records, or a list of files' records.
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "convo.toml").write_text(WINDOW_CONFIG)
    settings = load(root / "convo.toml")
    sources = [write_jsonl(root / "exports" / "messages.jsonl", messages)]
    if conversations:
        pages = conversations if isinstance(conversations[0], list) else [conversations]
        for number, page in enumerate(pages, start=1):
            sources.append(write_jsonl(root / "exports" / f"conversations-{number}.jsonl", page))
    if events is not None:
        sources.append(write_jsonl(root / "exports" / "events.jsonl", events))
    ingest(settings.lake, sources)
    summary = build(settings, as_of=as_of)
    return duckdb.connect(str(settings.warehouse), read_only=True), summary


def warehouse(root: Path, messages: list[dict[str, object]], as_of: datetime | None = None,
              conversations: list[dict[str, object]] | list[list[dict[str, object]]] | None = None,
              events: list[dict[str, object]] | None = None) -> duckdb.DuckDBPyConnection:
    """Write exports, ingest them, build, and open the warehouse read-only."""
    return build_warehouse(root, messages, as_of, conversations, events)[0]


# --------------------------------------------------------------------------
# The outcomes scenario (tests/test_outcomes.py, tests/test_outcomes_report.py)
# --------------------------------------------------------------------------

HOUR = 3600
DAY = 24 * HOUR


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def template(message_id: str, contact: str, seconds: float) -> dict[str, object]:
    return outbound(message_id, contact, at(seconds), template="order_update", template_category="utility")


def reply(message_id: str, contact: str, seconds: float, **fields: object) -> dict[str, object]:
    """A free-form outbound message (an agent's, unless it comes too fast)."""
    return outbound(message_id, contact, at(seconds), **fields)


def closed(event_id: str, contact: str, seconds: float, reason: str) -> dict[str, object]:
    """An operator's close as the webhook log reports it (DOMAIN R11)."""
    return {"id": event_id, "type": "whatsapp.conversation.ended", "created_at": ts(at(seconds)), "data": {
        "id": 1, "tenant_id": 1, "phone_number_id": SAO_PAULO, "contact_phone": None, "contact_bsuid": contact,
        "status": "ended", "ended_reason": reason, "started_at": ts(T0), "ended_at": ts(at(seconds))}}


# T0 is 2026-09-01 12:00 UTC: 09:00 in Sao Paulo, 14:00 in Madrid; every Sao Paulo
# conversation below starts on the local day 2026-09-01.
MESSAGES = [
    # A template opens it; the user writes at +100 s; an away message 2 s later is
    # automated (under automated_reply_max_seconds = 5), a template is not a reply
    # either; the agent answers at +400 s: first response 300 s.
    template("a0", "BR.template", 0),
    inbound("a1", "BR.template", at(100)),
    reply("a2", "BR.template", 102),
    template("a3", "BR.template", 200),
    reply("a4", "BR.template", 400),
    # Exactly the threshold (5 s) is a human reply; 4 s is automated and answers nothing.
    inbound("e1", "BR.edge", at(0)),
    reply("e2", "BR.edge", 5),
    inbound("o1", "BR.bot", at(0)),
    reply("o2", "BR.bot", 4),
    # Consecutive inbound messages are one wait from the FIRST of them; a template in
    # between ends nothing; the user's last message is still waiting.
    inbound("b1", "BR.burst", at(0)),
    inbound("b2", "BR.burst", at(30)),
    inbound("b3", "BR.burst", at(90)),
    reply("b4", "BR.burst", 600),
    reply("b5", "BR.burst", 660),
    inbound("b6", "BR.burst", at(1000)),
    template("b7", "BR.burst", 1100),
    inbound("b8", "BR.burst", at(1200)),
    reply("b9", "BR.burst", 2800),
    inbound("b10", "BR.burst", at(3000)),
    # Never answered: the agent's late free-form failed (131047), it never reached the user.
    inbound("c1", "BR.silent", at(0)),
    inbound("c2", "BR.silent", at(60)),
    reply("c3", "BR.silent", 2 * HOUR, status="failed", error_code=131047),
    # Closed by the agent at +600 s; the user writes again at +1 h: a reopen, answered
    # exactly 1 h later ('1-4h': lower edges are inclusive), closed by hand 60 s after.
    inbound("d1", "BR.agent", at(0)),
    reply("d2", "BR.agent", 120),
    inbound("d3", "BR.agent", at(HOUR)),
    reply("d4", "BR.agent", 2 * HOUR),
    # One per slower bucket: 5 h, exactly 8 h, and 25 h (the user wrote again at 20 h).
    inbound("s1", "BR.slow4", at(0)),
    reply("s2", "BR.slow4", 5 * HOUR),
    inbound("t1", "BR.slow8", at(0)),
    reply("t2", "BR.slow8", 8 * HOUR),
    inbound("u1", "BR.over24", at(0)),
    inbound("u2", "BR.over24", at(20 * HOUR)),
    reply("u3", "BR.over24", 25 * HOUR),
    # A campaign template nobody answered: not an engaged conversation. A free-form
    # message after its timeout finds no conversation open (R7) and belongs to none.
    outbound("m1", "BR.campaign", at(0), template="promo"),
    reply("m2", "BR.campaign", 30 * HOUR),
    # Asia/Kolkata is UTC+05:30: 18:29:59 UTC is 23:59:59 on Sep 1, 18:30:00 UTC is Sep 2.
    inbound("k1", "IN.late", datetime(2026, 9, 1, 18, 29, 59, tzinfo=UTC), phone_number_id=KOLKATA),
    outbound("k2", "IN.late", datetime(2026, 9, 1, 18, 31, 0, tzinfo=UTC), phone_number_id=KOLKATA),
    inbound("k3", "IN.midnight", datetime(2026, 9, 1, 18, 30, 0, tzinfo=UTC), phone_number_id=KOLKATA),
    # Madrid, one day: first responses 60, 120, 180, 240, 1200 s; p1 has a second
    # exchange of 600 s.
    inbound("p1a", "ES.p1", at(0), phone_number_id=MADRID),
    reply("p1b", "ES.p1", 60, phone_number_id=MADRID),
    inbound("p1c", "ES.p1", at(2000), phone_number_id=MADRID),
    reply("p1d", "ES.p1", 2600, phone_number_id=MADRID),
    *[message
      for number, seconds in ((2, 120), (3, 180), (4, 240), (5, 1200))
      for message in (inbound(f"p{number}a", f"ES.p{number}", at(0), phone_number_id=MADRID),
                      reply(f"p{number}b", f"ES.p{number}", seconds, phone_number_id=MADRID))],
]
EVENTS = [
    closed("ev1", "BR.agent", 600, "agent_close"),
    closed("ev2", "BR.agent", 2 * HOUR + 60, "manual_close"),
]


# --------------------------------------------------------------------------
# HTML text as a reader sees it
# --------------------------------------------------------------------------

class Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.scripts = 0
        self.kpis: dict[str, str] = {}
        self._kpi: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts += 1
        self._kpi = dict(attrs).get("data-kpi")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)
        if self._kpi:
            self.kpis[self._kpi] = data.strip()
            self._kpi = None


def parse(html: str) -> Text:
    parser = Text()
    parser.feed(html)
    return parser


def rows(lake_dir: Path, dataset: str, columns: str = "*", order: str = "1") -> list[tuple]:
    """A lake dataset's rows (all of its Parquet files), ordered."""
    files = lake.files(lake_dir, dataset)
    if not files:
        return []
    return duckdb.sql(f"select {columns} from read_parquet({lake.sql_list(files)}) order by {order}").fetchall()


def simulated_tenant(root: Path, contacts: int, seed: int) -> Settings:
    """A dirty simulated tenant across the CBP -> PMP switch (2025-07-01), the bsuid
    cut-over (2026-03-31) and regime C (2026-10-01), ingested (470 days from 2025-06-20)."""
    from click.testing import CliRunner

    from pipeline.cli import cli

    result = CliRunner().invoke(cli, ["simulate", "--out", str(root / "sim"), "--contacts", str(contacts),
                                      "--days", "470", "--start", "2025-06-20", "--seed", str(seed), "--dirty"])
    assert result.exit_code == 0, result.output
    settings = load(root / "sim" / "convo.toml")
    ingest(settings.lake, [root / "sim" / "exports"])
    return settings


# Tables a build writes whatever ran it (build_info and build_lake_files say how and when).
BUILD_RECORDS = {"build_info", "build_lake_files"}


def warehouse_tables(con: duckdb.DuckDBPyConnection, database: str) -> set[str]:
    """The tables of an attached warehouse, less the build's own records of itself."""
    return {row[0] for row in con.execute(
        "select table_name from duckdb_tables() where database_name = ?", [database]).fetchall()} - BUILD_RECORDS


def rows_differing(con: duckdb.DuckDBPyConnection, left: str, right: str, table: str) -> int:
    """Rows of `table` in one attached warehouse and not the other, counted with their
    repeats (except all, both ways): 0 when the two hold the same rows."""
    return con.execute(f"""
        select count(*) from (
            (select * from {left}."{table}" except all select * from {right}."{table}")
            union all
            (select * from {right}."{table}" except all select * from {left}."{table}")
        )""").fetchone()[0]
