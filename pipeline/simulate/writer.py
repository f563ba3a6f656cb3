"""Export files in DESIGN.md's formats: JSONL messages by UTC day, API pages of
conversations, a JSONL webhook log, a CSV template catalog, and convo.toml."""

from __future__ import annotations

import csv
import io
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import IO

import orjson

from pipeline.simulate.clock import date_of_epoch_day, iso_offset, iso_utc
from pipeline.simulate.threads import INBOUND, Msg
from pipeline.simulate.world import (
    AUTH_INTERNATIONAL_ELIGIBLE,
    BUSINESS_COUNTRY,
    INACTIVE_AFTER_MINUTES,
    TEMPLATE_LANGUAGES,
    TENANT_ID,
    BSUID_FROM,
    BusinessNumber,
    Persona,
    Template,
)

MESSAGES_DIR = "exports/messages"
CONVERSATIONS_DIR = "exports/conversations"
EVENTS_FILE = "exports/events/events.jsonl"
TEMPLATES_FILE = "exports/templates/templates.csv"
PRICING_ANALYTICS_DIR = "exports/pricing_analytics"
CONVERSATION_ANALYTICS_DIR = "exports/conversation_analytics"
PAGE_SIZE = 1000


def messages_file(out: Path, day: int) -> Path:
    return out / MESSAGES_DIR / f"messages-{date_of_epoch_day(day).isoformat()}.jsonl"


def clear_previous(out: Path) -> None:
    """Remove files a previous run left in our folders (only our own file names)."""
    patterns = (
        (MESSAGES_DIR, "messages-*.jsonl"),
        (CONVERSATIONS_DIR, "page-*.json"),
        ("exports/events", "events.jsonl"),
        ("exports/templates", "templates.csv"),
        (PRICING_ANALYTICS_DIR, "pricing_analytics-*.json"),
        (CONVERSATION_ANALYTICS_DIR, "conversation_analytics-*.json"),
    )
    for folder, pattern in patterns:
        for path in (out / folder).glob(pattern):
            path.unlink()


class MessageRecords:
    """Formats the message records of one thread (DESIGN: messages)."""

    __slots__ = ("phone_number_id", "persona", "name", "clock", "_identities")

    def __init__(self, number: BusinessNumber, persona: Persona, name: str | None) -> None:
        self.phone_number_id = number.phone_number_id
        self.persona = persona
        self.name = name
        self.clock = number.clock
        self._identities: dict[tuple[bool, bool], str] = {}

    def _times(self, msg: Msg) -> tuple[str | int, str | int | None]:
        """timestamp and delivered_at as the export writes them (a style per record)."""
        key = msg.key
        ts = msg.ts
        delivered = msg.delivered
        style = (key >> 8) % 100
        if style < 86:                      # most exports write UTC with Z
            return iso_utc(ts), None if delivered is None else iso_utc(delivered)
        if style < 97:                      # some write the business number's local offset
            clock = self.clock
            return (iso_offset(ts, clock.offset(ts)),
                    None if delivered is None else iso_offset(delivered, clock.offset(delivered)))
        return ts, delivered                # a few write Unix seconds

    def _identity(self, msg: Msg) -> tuple[str | None, str | None]:
        phone, bsuid = self.persona.identity(msg.ts)
        if phone is not None and (msg.key >> 20) % 100 < 4:
            phone = phone[1:]               # DESIGN: the + is optional
        return phone, bsuid

    def line(self, msg: Msg) -> bytes:
        """The JSONL line of a message: byte for byte orjson.dumps(record(msg)) + newline,
        built from pre-serialised parts (the hot path; tests check the equality)."""
        key = msg.key
        after = msg.ts >= BSUID_FROM
        bare = (key >> 20) % 100 < 4
        identity = self._identities.get((after, bare))
        if identity is None:
            identity = self._identity_json(msg)
            self._identities[(after, bare)] = identity
        timestamp, delivered_at = self._times(msg)
        pricing = msg.pricing
        template = msg.template
        category = msg.category
        error = msg.error
        referral = msg.referral
        conversation = msg.conversation
        return (
            f'{{"message_id":"wamid.{key:016x}",{identity}'
            f'"direction":"{"inbound" if msg.kind == INBOUND else "outbound"}","type":"{msg.type}",'
            f'"template_name":{"null" if template is None else _quoted(template)},'
            f'"template_category":{"null" if category is None else _quoted(category)},'
            f'"status":"{msg.status}","error_code":{"null" if error is None else error},'
            f'"timestamp":{_json_time(timestamp)},"delivered_at":{_json_time(delivered_at)},'
            f'"referral_source":{"null" if referral is None else _quoted(referral)},'
            f'"conversation_id":{"null" if conversation is None else conversation},'
            f'"pricing":{"null" if pricing is None else _pricing_json(pricing)}}}\n'
        ).encode()

    def _identity_json(self, msg: Msg) -> str:
        phone, bsuid = self._identity(msg)
        part = orjson.dumps({
            "tenant_id": TENANT_ID,
            "phone_number_id": self.phone_number_id,
            "contact_bsuid": bsuid,
            "contact_phone": phone,
            "contact_name": self.name,
        })
        return part[1:-1].decode() + ","

    def record(self, msg: Msg) -> dict:
        """The message record as a dict (DESIGN: messages), in the export's field order."""
        timestamp, delivered_at = self._times(msg)
        phone, bsuid = self._identity(msg)
        pricing = msg.pricing
        return {
            "message_id": f"wamid.{msg.key:016x}",
            "tenant_id": TENANT_ID,
            "phone_number_id": self.phone_number_id,
            "contact_bsuid": bsuid,
            "contact_phone": phone,
            "contact_name": self.name,
            "direction": "inbound" if msg.kind == INBOUND else "outbound",
            "type": msg.type,
            "template_name": msg.template,
            "template_category": msg.category,
            "status": msg.status,
            "error_code": msg.error,
            "timestamp": timestamp,
            "delivered_at": delivered_at,
            "referral_source": msg.referral,
            "conversation_id": msg.conversation,
            "pricing": None if pricing is None else pricing.as_dict(),  # type: ignore[attr-defined]
        }


_QUOTED: dict[str, str] = {}
_PRICING_JSON: dict[object, str] = {}


def _quoted(value: str) -> str:
    """A JSON string of a value from a small vocabulary (template names, enums)."""
    found = _QUOTED.get(value)
    if found is None:
        found = _QUOTED[value] = orjson.dumps(value).decode()
    return found


def _json_time(value: str | int | None) -> str:
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    return f'"{value}"'


def _pricing_json(pricing: object) -> str:
    found = _PRICING_JSON.get(pricing)
    if found is None:
        found = _PRICING_JSON[pricing] = orjson.dumps(pricing.as_dict()).decode()  # type: ignore[attr-defined]
    return found


class DayFiles:
    """One JSONL file per UTC day, a bounded number of handles kept open."""

    def __init__(self, out: Path, max_open: int = 96) -> None:
        self.out = out
        self.max_open = max_open
        self._open: OrderedDict[int, IO[bytes]] = OrderedDict()
        self._seen: set[int] = set()
        (out / MESSAGES_DIR).mkdir(parents=True, exist_ok=True)

    def write(self, day: int, data: bytes) -> None:
        handle = self._open.get(day)
        if handle is None:
            if len(self._open) >= self.max_open:
                _, oldest = self._open.popitem(last=False)
                oldest.close()
            mode = "ab" if day in self._seen else "wb"
            handle = open(messages_file(self.out, day), mode, buffering=1 << 18)
            self._seen.add(day)
            self._open[day] = handle
        else:
            self._open.move_to_end(day)
        handle.write(data)

    def close(self) -> list[Path]:
        for handle in self._open.values():
            handle.close()
        self._open.clear()
        return [messages_file(self.out, day) for day in sorted(self._seen)]


class ConversationPages:
    """API pages {"data": [...], "page": N, "has_more": bool}, PAGE_SIZE records each
    (records arrive as JSON objects, see lifecycle.py)."""

    def __init__(self, out: Path) -> None:
        self.folder = out / CONVERSATIONS_DIR
        self.folder.mkdir(parents=True, exist_ok=True)
        self.pending: list[str] = []
        self.page = 0
        self.files: list[Path] = []

    def add(self, record: str) -> None:
        if len(self.pending) == PAGE_SIZE:
            self._flush(has_more=True)
        self.pending.append(record)

    def _flush(self, has_more: bool) -> None:
        self.page += 1
        path = self.folder / f"page-{self.page:04d}.json"
        text = f'{{"data":[{",".join(self.pending)}],"page":{self.page},"has_more":{"true" if has_more else "false"}}}'
        path.write_bytes(text.encode())
        self.files.append(path)
        self.pending = []

    def close(self) -> list[Path]:
        if self.pending or not self.files:
            self._flush(has_more=False)
        return self.files


class JsonlFile:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.handle = open(path, "wb", buffering=1 << 18)

    def write(self, data: bytes) -> None:
        self.handle.write(data)

    def close(self) -> Path:
        self.handle.close()
        return self.path


def write_templates(out: Path, catalog: Iterable[Template]) -> tuple[Path, int]:
    """name,language,category,updated_at: one row per (template, language, version)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("name", "language", "category", "updated_at"))
    rows = 0
    for template in catalog:
        for language in TEMPLATE_LANGUAGES:
            writer.writerow((template.name, language, template.category, iso_utc(template.updated_at)))
            rows += 1
    path = out / TEMPLATES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path, rows


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(out: Path, numbers: Iterable[BusinessNumber], header: str) -> Path:
    """convo.toml in DESIGN.md's format, matching the exports."""
    lines = [
        f"# {header}",
        "[paths]",
        'lake = "lake"',
        'warehouse = "warehouse.duckdb"',
        'reports = "reports_out"',
        "",
    ]
    for number in numbers:
        lines += [
            "[[phone_numbers]]",
            f"phone_number_id = {number.phone_number_id}",
            f"tenant_id = {TENANT_ID}",
            f"waba_id = {_toml_string(number.waba_id)}",
            f"timezone = {_toml_string(number.timezone)}",
            'currency = "USD"',
            f"display_phone_number = {_toml_string(number.display_phone_number)}",
            "",
        ]
    lines += [
        "[lifecycle]",
        f"inactive_after_minutes = {INACTIVE_AFTER_MINUTES}",
        "",
        "[billing]",
        'rate_card = "meta_usd"',
        f"business_country = {_toml_string(BUSINESS_COUNTRY)}",
        f"auth_international_eligible = {'true' if AUTH_INTERNATIONAL_ELIGIBLE else 'false'}",
        "",
    ]
    path = out / "convo.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path

