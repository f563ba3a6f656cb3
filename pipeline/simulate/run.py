"""simulate(): one tenant's platform exports, streamed contact by contact.

Each contact is built from an RNG derived from (seed, contact index) and written
before the next one is made, so only one contact's messages are ever in memory.
The monthly free allowances (DOMAIN R16, R21) are first-come across threads, which
one contact cannot know: those messages are written charged, the earliest 1,000
claims per (key, month) are tracked in bounded heaps, and the granted ones are
rewritten as free_tier at the end (FreeTierPatches). Meta's pricing_analytics and
conversation_analytics (analytics.py) are aggregated as units are priced and written at the end.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path

import orjson

from pipeline.simulate import incidents as incident_traffic
from pipeline.simulate import webhooks as webhook_files
from pipeline.simulate.analytics import PricingAnalytics
from pipeline.simulate.clock import DAY, day_start, epoch_day
from pipeline.simulate.dirty import Dirt
from pipeline.simulate.lifecycle import Lifecycle, ThreadIdentity
from pipeline.simulate.meta import FREE_TIER_PATCHES, Claim, FreeAllowances, MetaNumber, MetaThread
from pipeline.simulate.threads import INBOUND, OUTBOUND, MessageKeys, Msg, Period, generate_threads
from pipeline.simulate.world import (
    INACTIVE_AFTER_MINUTES,
    MAX_CONTACTS,
    NUMBERS,
    Contact,
    Persona,
    campaigns,
    contact_rng,
    make_contact,
    mix64,
    template_catalog,
)
from pipeline.simulate.writer import (
    CONVERSATION_ANALYTICS_DIR,
    EVENTS_FILE,
    PRICING_ANALYTICS_DIR,
    ConversationPages,
    DayFiles,
    JsonlFile,
    MessageRecords,
    clear_previous,
    messages_file,
    write_config,
    write_templates,
)

FORMATS = ("exports", "meta-webhooks")
MAX_DAYS = 3660
_MESSAGE_SALT = 0x5EED_0F_3E55A6E5
_EVENT_SALT = 0xE7E27_5A17
_CONVERSATIONS_PER_CONTACT = 10_000


@dataclass(frozen=True)
class SimulateSettings:
    out: Path
    contacts: int = 5000
    days: int = 60
    seed: int = 7
    start: date = date(2026, 9, 1)
    dirty: bool = False
    format: str = "exports"      # or "meta-webhooks": Meta Cloud API webhook logs (webhooks.py)
    incidents: tuple[str, ...] = ()   # KIND:YYYY-MM-DD each (incidents.py)


@dataclass(frozen=True)
class SimulateSummary:
    out: Path
    config_path: Path            # out / "convo.toml"
    files: tuple[Path, ...]      # every export file written
    messages: int                # clean message records (dirty extras excluded)
    conversations: int
    events: int
    templates: int
    dirty: dict[str, int] = field(default_factory=dict)   # injected defects by kind (dirty.py)
    pricing_analytics: int = 0   # Meta's per-number daily pricing_analytics data points written (analytics.py)
    conversation_analytics: int = 0   # ... and conversation_analytics ones (CBP days)
    webhook_bodies: int = 0      # --format meta-webhooks: webhook POST bodies written


Progress = Callable[[int], None]
Thread = tuple[Persona, int, list[Msg]]


def simulate(settings: SimulateSettings, progress: Progress | None = None) -> SimulateSummary:
    """Write one tenant's exports under settings.out (deterministic per settings).

    Volume scales linearly with ``contacts``: over 60 days one contact yields about
    60 message records, 14 conversations and 45 events on average (170,000
    contacts give about 10 million messages). ``progress(n)`` is called with the
    number of contacts just finished.
    """
    _validate(settings)
    if settings.format == "meta-webhooks":
        return _webhooks(settings, progress or (lambda done: None))
    return _Run(settings).write(progress or (lambda done: None))


WEBHOOK_EXPORTS = ".exports-for-webhooks"     # hidden: `convo ingest out/` never reads it


def _webhooks(settings: SimulateSettings, progress: Progress) -> SimulateSummary:
    """The same tenant as Meta's webhook logs: the exports are written aside, their message
    records turned into webhook bodies (webhooks.py), and the exports removed; convo.toml is
    the exports' own."""
    out = settings.out
    out.mkdir(parents=True, exist_ok=True)
    aside = out / WEBHOOK_EXPORTS
    shutil.rmtree(aside, ignore_errors=True)
    exported = _Run(replace(settings, out=aside, format="exports")).write(progress)
    webhook_files.clear_previous(out)
    clear_previous(out)                       # exports an earlier run left: one form per folder
    log = webhook_files.WebhookLog(out, day_start(settings.start) + settings.days * DAY)
    for path in sorted(exported.files):
        if path.parent.name == "messages":
            log.add_export_file(path)
    files = log.finish()
    config = out / exported.config_path.name
    os.replace(exported.config_path, config)
    shutil.rmtree(aside)
    return SimulateSummary(out=out, config_path=config, files=tuple(files), messages=exported.messages,
                           conversations=0, events=0, templates=0, webhook_bodies=log.bodies)


def _validate(settings: SimulateSettings) -> None:
    if settings.contacts < 1:
        raise ValueError(f"contacts must be at least 1, got {settings.contacts}")
    if settings.contacts > MAX_CONTACTS:
        raise ValueError(f"contacts must be at most {MAX_CONTACTS:,}, got {settings.contacts:,}")
    if settings.days < 1:
        raise ValueError(f"days must be at least 1, got {settings.days}")
    if settings.days > MAX_DAYS:
        raise ValueError(f"days must be at most {MAX_DAYS}, got {settings.days}")
    if not date(2000, 1, 1) <= settings.start <= date(2100, 1, 1):
        raise ValueError(f"start must be between 2000-01-01 and 2100-01-01, got {settings.start}")
    if settings.format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {settings.format!r}")
    if settings.format == "meta-webhooks" and settings.dirty:
        raise ValueError("--dirty adds defects to the platform exports only, not to --format meta-webhooks")
    for text in settings.incidents:
        incident = incident_traffic.parse(text)
        if not settings.start <= incident.day < settings.start + timedelta(days=settings.days):
            raise ValueError(f"--incident {text}: {incident.day} is not one of the simulated days "
                             f"({settings.start} and {settings.days - 1} after)")
        if incident.kind == "input_quality" and settings.format == "meta-webhooks":
            raise ValueError("--incident input_quality damages the platform exports, not --format meta-webhooks")
    if settings.out.exists() and not settings.out.is_dir():
        raise ValueError(f"out must be a folder, but {settings.out} is a file")


class _Run:
    def __init__(self, settings: SimulateSettings) -> None:
        self.settings = settings
        self.start = day_start(settings.start)
        self.end = self.start + settings.days * DAY
        self.catalog, recategorised = template_catalog(self.start, self.end)
        self.period = Period(self.start, self.end, recategorised, campaigns(settings.seed, self.start, self.end))
        self.meta_numbers: tuple[MetaNumber, ...] = tuple(number.meta for number in NUMBERS)
        self.message_salt = mix64(settings.seed ^ _MESSAGE_SALT)

    def contact(self, index: int) -> tuple[Contact, list[Thread]]:
        settings = self.settings
        rng = contact_rng(settings.seed, index)
        contact = make_contact(index, settings.contacts, settings.seed, self.start, self.end, rng)
        keys = MessageKeys(index, self.message_salt)
        return contact, generate_threads(rng, contact, NUMBERS, self.period, keys)

    def price(self, contact: Contact, threads: list[Thread], allowances: FreeAllowances,
              analytics: PricingAnalytics | None = None) -> None:
        """Meta's pricing object on every delivered outbound message (DOMAIN R13-R27),
        and each billing unit into Meta's pricing_analytics (R26)."""
        country = contact.country.iso
        for _, number_index, msgs in threads:
            meta = MetaThread(self.meta_numbers[number_index], country, allowances)
            for msg in msgs:
                if msg.kind == INBOUND:
                    meta.inbound(msg.ts, msg.referral is not None)
                elif msg.kind == OUTBOUND and msg.delivered is not None:
                    msg.pricing = meta.outbound(msg.delivered, msg.category, msg.key)
                    msg.claim = meta.last_claim
                    if analytics is not None and meta.opened:
                        analytics.add(number_index, country, msg.delivered, msg.key,
                                      msg.pricing, meta.last_claim)  # type: ignore[arg-type]

    def write(self, progress: Progress) -> SimulateSummary:
        settings = self.settings
        out = settings.out
        out.mkdir(parents=True, exist_ok=True)
        clear_previous(out)
        webhook_files.clear_previous(out)
        dirt = Dirt(settings.seed, self.start // DAY, (self.end - 1) // DAY) if settings.dirty else None
        patches = FreeTierPatches()
        allowances = FreeAllowances.provisional(patches.forget)
        analytics = PricingAnalytics(NUMBERS)
        days = DayFiles(out)
        pages = ConversationPages(out)
        events = JsonlFile(out / EVENTS_FILE)

        def on_conversation(record: str) -> None:
            pages.add(record)
            if dirt is not None and dirt.conversation():
                pages.add(record)

        def on_event(line: bytes) -> None:
            events.write(line if dirt is None else dirt.event(line))

        lifecycle = Lifecycle(self.end, INACTIVE_AFTER_MINUTES * 60, mix64(settings.seed ^ _EVENT_SALT),
                              on_conversation, on_event)
        messages = 0

        def write_contact(contact: Contact, threads: list[Thread], dirt: Dirt | None) -> int:
            next_id = _conversation_ids(contact.index)
            buckets: dict[int, list[bytes]] = {}
            written = 0
            for persona, number_index, msgs in threads:
                number = NUMBERS[number_index]
                lifecycle.run(msgs, ThreadIdentity(number.phone_number_id, persona, contact.name,
                                                   contact.customer_id), next_id)
                records = MessageRecords(number, persona, contact.name)
                written += _thread_lines(records, msgs, buckets, dirt, patches, allowances)
            for day, lines in buckets.items():
                days.write(day, b"".join(lines))
            return written

        for index in range(settings.contacts):
            contact, threads = self.contact(index)
            self.price(contact, threads, allowances, analytics)
            messages += write_contact(contact, threads, dirt)
            progress(1)
        incidents = tuple(incident_traffic.parse(text) for text in settings.incidents)
        for incident, contact, threads in incident_traffic.contacts(incidents, settings.seed, settings.contacts,
                                                                    self.end):
            self.price(contact, threads, allowances, analytics)
            incident_traffic.after_pricing(incident, threads)
            messages += write_contact(contact, threads, None)
        message_files = days.close()
        for incident in incidents:
            incident_traffic.damage(incident, messages_file(out, epoch_day(incident.day)))
        patches.apply(allowances, out)
        analytics.finish(allowances.cbp_service.granted() | allowances.regime_c_service.granted())
        analytics_files = analytics.write(out / PRICING_ANALYTICS_DIR, self.start, self.end,
                                          out / CONVERSATION_ANALYTICS_DIR)
        page_files = pages.close()
        events_file = events.close()
        templates_file, templates = write_templates(out, self.catalog)
        if dirt is not None:
            dirt.shuffle_mtimes(message_files, self.end)
        config = write_config(out, NUMBERS, f"written by convo simulate: seed {settings.seed}, "
                              f"{settings.contacts} contacts, {settings.days} days from {settings.start.isoformat()}")
        return SimulateSummary(
            out=out,
            config_path=config,
            files=(*message_files, *page_files, events_file, templates_file, *analytics_files),
            messages=messages,
            conversations=lifecycle.conversations,
            events=lifecycle.events,
            templates=templates,
            dirty=dict(sorted(dirt.counts.items())) if dirt is not None else {},
            pricing_analytics=analytics.written["pricing_analytics"],
            conversation_analytics=analytics.written["conversation_analytics"],
        )


def _conversation_ids(contact_index: int) -> Callable[[], int]:
    """Conversation ids unique per tenant: contact index * 10,000 + a counter."""
    counter = [0]

    def next_id() -> int:
        counter[0] += 1
        if counter[0] >= _CONVERSATIONS_PER_CONTACT:
            raise RuntimeError(f"contact {contact_index} has over {_CONVERSATIONS_PER_CONTACT} conversations")
        return contact_index * _CONVERSATIONS_PER_CONTACT + counter[0]

    return next_id


def _thread_lines(records: MessageRecords, msgs: list[Msg], buckets: dict[int, list[bytes]],
                  dirt: Dirt | None, patches: FreeTierPatches, allowances: FreeAllowances) -> int:
    written = 0
    for msg in msgs:
        if msg.kind != INBOUND and msg.kind != OUTBOUND:
            continue                                   # a close marker, not a message
        line = records.line(msg)
        day = msg.ts // DAY
        bucket = buckets.get(day)
        if bucket is None:
            bucket = buckets[day] = []
        bucket.append(line)
        if dirt is not None:
            day = dirt.message(line, day, buckets)
        if msg.claim is not None:
            patches.remember(msg.claim, day, f"wamid.{msg.key:016x}", allowances)
        written += 1
    return written


class FreeTierPatches:
    """Messages written as charged whose free-allowance claim may still be granted.

    DOMAIN R16/R21 allowances are first-come across threads, but contacts are
    written one at a time: such messages are written charged, the lines of claims
    still among the N earliest are remembered (forgotten when evicted), and at the
    end the granted ones are rewritten as free_tier in their day files. Memory is
    bounded by N claims per (key, month) and their messages.
    """

    def __init__(self) -> None:
        self.lines: dict[Claim, list[tuple[int, str]]] = {}

    def remember(self, claim: Claim, day: int, message_id: str, allowances: FreeAllowances) -> None:
        allowance = allowances.cbp_service if claim[0][0] == "waba" else allowances.regime_c_service
        if allowance.held(claim):
            self.lines.setdefault(claim, []).append((day, message_id))

    def forget(self, claim: Claim) -> None:
        self.lines.pop(claim, None)

    def apply(self, allowances: FreeAllowances, out: Path) -> None:
        granted = allowances.cbp_service.granted() | allowances.regime_c_service.granted()
        by_day: dict[int, dict[bytes, tuple[bytes, bytes]]] = {}
        for claim, lines in self.lines.items():
            if claim not in granted:
                continue
            charged, free = FREE_TIER_PATCHES[claim[0][0]]
            change = (orjson.dumps(charged.as_dict()), orjson.dumps(free.as_dict()))
            for day, message_id in lines:
                by_day.setdefault(day, {})[message_id.encode()] = change
        for day in sorted(by_day):
            _rewrite(messages_file(out, day), by_day[day])


_ID_START = len(b'{"message_id":"')


def _rewrite(path: Path, changes: dict[bytes, tuple[bytes, bytes]]) -> None:
    """Replace the pricing object of the given message ids, streaming the file."""
    temporary = path.with_suffix(".jsonl.partial")
    with open(path, "rb") as source, open(temporary, "wb", buffering=1 << 18) as target:
        for line in source:
            end = line.find(b'"', _ID_START)
            change = changes.get(line[_ID_START:end]) if end > 0 else None
            if change is not None:
                line = line.replace(change[0], change[1], 1)
            target.write(line)
    os.replace(temporary, path)
