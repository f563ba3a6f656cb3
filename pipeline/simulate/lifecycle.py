"""The platform's conversation lifecycle (DOMAIN R7-R11), per thread, in plain Python.

Rules as implemented (the decisions DOMAIN leaves open are marked *):
- R7: a conversation opens on an inbound message, or on an outbound *template*,
  when none of the thread is open. A free-form outbound message never opens one*
  (it gets conversation_id null when none is open, e.g. just after a close).
- R8: inactive once ``inactive_after`` seconds pass with no message (an event each
  time a silence reaches it); ended by ``timeout`` at last message + 24 h, or by a
  close marker (manual_close / agent_close) at its time. Boundaries are inclusive:
  silence of exactly 30 min is inactive, exactly 24 h is ended.
- *Failed messages never reached the user: they do not open, extend or count in a
  conversation; they carry the id of the conversation open at their time (or null).
- R9: an inbound message after a close opens a new conversation.
- The export is taken at ``end``: later events do not exist yet, and the status of a
  conversation still open is inactive or active as of ``end``.
- Identity fields (contact_phone / contact_bsuid) are the ones of the conversation's
  start (DOMAIN R2 cut-over); every event carries the conversation as at its moment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import orjson

from pipeline.simulate.clock import DAY, iso_utc
from pipeline.simulate.threads import CLOSE, INBOUND, Msg
from pipeline.simulate.world import TENANT_ID, Persona, mix64

CREATED = "whatsapp.conversation.created"
INACTIVE = "whatsapp.conversation.inactive"
ENDED = "whatsapp.conversation.ended"
TIMEOUT_SECONDS = DAY                     # DOMAIN R8: ended after 24 h without messages


@dataclass(frozen=True)
class ThreadIdentity:
    """What the platform knows of a thread's contact."""

    phone_number_id: int
    persona: Persona
    contact_name: str | None
    customer_id: str | None


class Conversation:
    __slots__ = ("id", "started", "last", "last_in", "last_out", "count", "inactive_sent", "events", "head")

    def __init__(self, conversation_id: int, started: int, head: str) -> None:
        self.id = conversation_id
        self.started = started
        self.last = started
        self.last_in: int | None = None
        self.last_out: int | None = None
        self.count = 0
        self.inactive_sent = False
        self.events = 0
        self.head = head          # the JSON of the fields that never change, with a trailing comma


class Lifecycle:
    """Runs the lifecycle of threads and hands JSON to two sinks (conversation records,
    event lines). Records are serialised here, from parts, for speed; their fields and
    order are DOMAIN R10's (tests parse them back)."""

    def __init__(self, end: int, inactive_after_seconds: int, event_salt: int,
                 on_conversation: Callable[[str], None], on_event: Callable[[bytes], None]) -> None:
        self.end = end
        self.inactive_after = inactive_after_seconds
        self.event_salt = event_salt
        self.on_conversation = on_conversation
        self.on_event = on_event
        self.conversations = 0
        self.events = 0
        self._iso: dict[int, str] = {}

    def run(self, msgs: list[Msg], who: ThreadIdentity, next_id: Callable[[], int]) -> None:
        """Assign conversation ids to msgs (in place) and emit records and events."""
        self._iso = {}
        inactive_after = self.inactive_after
        conv: Conversation | None = None
        for msg in msgs:
            at = msg.ts
            if conv is not None and at >= conv.last + inactive_after:
                conv = self._age(conv, at, who)
            if msg.kind == CLOSE:
                if conv is not None:
                    self._end(conv, at, msg.close or "manual_close", who)
                    conv = None
                continue
            if msg.status == "failed":
                msg.conversation = None if conv is None else conv.id
                continue
            created = conv is None
            if conv is None:
                if msg.kind != INBOUND and msg.template is None:
                    msg.conversation = None
                    continue
                conv = self._open(next_id(), at, who)
            conv.count += 1
            conv.last = at
            if msg.kind == INBOUND:
                conv.last_in = at
            else:
                conv.last_out = at
            conv.inactive_sent = False
            msg.conversation = conv.id
            if created:   # the created event carries the opening message (DOMAIN R11)
                self._event(conv, CREATED, at, "active", None, None)
        if conv is not None:
            conv = self._age(conv, self.end, who)
            if conv is not None:
                self._record(conv, "inactive" if conv.inactive_sent else "active", None, None)

    def _open(self, conversation_id: int, at: int, who: ThreadIdentity) -> Conversation:
        phone, bsuid = who.persona.identity(at)
        head = orjson.dumps({
            "id": conversation_id,
            "tenant_id": TENANT_ID,
            "customer_id": who.customer_id,
            "phone_number_id": who.phone_number_id,
            "contact_phone": phone,
            "contact_bsuid": bsuid,
            "contact_name": who.contact_name,
        })[1:-1].decode() + ","
        return Conversation(conversation_id, at, head)

    def _age(self, conv: Conversation, at: int, who: ThreadIdentity) -> Conversation | None:
        """Silence until `at`: the inactive event, then the timeout (DOMAIN R8)."""
        if not conv.inactive_sent and at >= conv.last + self.inactive_after:
            conv.inactive_sent = True
            self._event(conv, INACTIVE, conv.last + self.inactive_after, "inactive", None, None)
        if at >= conv.last + TIMEOUT_SECONDS:
            self._end(conv, conv.last + TIMEOUT_SECONDS, "timeout", who)
            return None
        return conv

    def _end(self, conv: Conversation, at: int, reason: str, who: ThreadIdentity) -> None:
        if not conv.inactive_sent and at >= conv.last + self.inactive_after:
            conv.inactive_sent = True
            self._event(conv, INACTIVE, conv.last + self.inactive_after, "inactive", None, None)
        self._event(conv, ENDED, at, "ended", reason, at)
        self._record(conv, "ended", reason, at)

    def _time(self, value: int | None) -> str:
        if value is None:
            return "null"
        found = self._iso.get(value)
        if found is None:
            found = self._iso[value] = f'"{iso_utc(value)}"'
        return found

    def _fields(self, conv: Conversation, status: str, reason: str | None, ended_at: int | None) -> str:
        """The conversation as a JSON object (DOMAIN R10 fields, in order)."""
        time = self._time
        reason_json = "null" if reason is None else f'"{reason}"'
        return (
            f'{{{conv.head}"status":"{status}","ended_reason":{reason_json},'
            f'"messages_count":{conv.count},"last_inbound_at":{time(conv.last_in)},'
            f'"last_outbound_at":{time(conv.last_out)},"started_at":{time(conv.started)},'
            f'"ended_at":{time(ended_at)}}}'
        )

    def _record(self, conv: Conversation, status: str, reason: str | None, ended_at: int | None) -> None:
        self.conversations += 1
        self.on_conversation(self._fields(conv, status, reason, ended_at))

    def _event(self, conv: Conversation, kind: str, at: int, status: str, reason: str | None,
               ended_at: int | None) -> None:
        if at > self.end:
            return
        number = conv.events
        conv.events = number + 1
        self.events += 1
        event_id = mix64((conv.id << 12 | number) ^ self.event_salt)
        data = self._fields(conv, status, reason, ended_at)
        self.on_event(
            f'{{"id":"evt_{event_id:016x}","type":"{kind}","created_at":{self._time(at)},"data":{data}}}\n'.encode())
