"""The simulated tenant as Meta Cloud API webhook logs (DESIGN.md "Meta Cloud API webhook logs").

A business on Meta's Cloud API directly has no platform exports: it has the POST bodies Meta
sent to its webhook. This module turns the simulator's message records (writer.MessageRecords,
read back from the day files run.py wrote) into those bodies, one event per body:

- an inbound message: a ``messages`` change with ``messages[]`` (``from`` / ``from_user_id`` as
  the record's identity had them, ``referral`` for an ad or Page arrival) and ``contacts[]``;
  a call (type ``call``) is a ``calls`` change with a ``connect`` event;
- an outbound message: its statuses, each at its own time: ``sent`` at the send, ``delivered``
  at the delivery, ``read`` a little after it (or alone, at the delivery, when both came at
  once: then Meta sends no ``delivered``), ``failed`` alone with ``errors[].code``. The pricing
  object rides on ``sent`` and ``delivered`` when the simulator priced the message (it prices at
  delivery, so a never-delivered send has none); ``contacts[]`` rides on every status but
  ``failed`` once the record has a bsuid (META_FACTS 2.4).

What Meta does not send is not written: the tenant, the template's name, the platform's
conversation id, a free-form message's type. Bodies go to one file per UTC day of the event:
most days JSONL, every third day gzipped JSONL, every third day a JSON array.
"""

from __future__ import annotations

import gzip
import os
from collections import OrderedDict
from datetime import datetime
from pathlib import Path
from typing import IO

import orjson

from pipeline.simulate.clock import DAY, date_of_epoch_day
from pipeline.simulate.world import NUMBERS

WEBHOOKS_DIR = "webhooks"
OBJECT = "whatsapp_business_account"
# Seconds from delivery to the read status: a spread taken from the message id.
READ_DELAYS = (0, 0, 5, 40, 180, 900, 3600, 4 * 3600)
ERROR_TITLES = {131047: "Re-engagement message", 131049: "This message was not delivered to maintain "
                "healthy ecosystem engagement.", 131026: "Message undeliverable"}


def clear_previous(out: Path) -> None:
    for path in (out / WEBHOOKS_DIR).glob("webhooks-*"):
        path.unlink()


def _seconds(value: object) -> int:
    if isinstance(value, int):
        return value
    return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp())


class WebhookLog:
    """Webhook bodies written to their event's day file (JSONL while writing; finish() gives each
    day its final form: plain, gzipped or a JSON array)."""

    def __init__(self, out: Path, end: int, max_open: int = 64) -> None:
        self.folder = out / WEBHOOKS_DIR
        self.folder.mkdir(parents=True, exist_ok=True)
        self.end = end
        self.max_open = max_open
        self.bodies = 0
        self._open: OrderedDict[int, IO[bytes]] = OrderedDict()
        self._seen: set[int] = set()
        self._wabas = {number.phone_number_id: number for number in NUMBERS}

    def _partial(self, day: int) -> Path:
        return self.folder / f"webhooks-{date_of_epoch_day(day).isoformat()}.partial"

    def _write(self, at: int, body: dict) -> None:
        day = at // DAY
        handle = self._open.get(day)
        if handle is None:
            if len(self._open) >= self.max_open:
                _, oldest = self._open.popitem(last=False)
                oldest.close()
            handle = open(self._partial(day), "ab" if day in self._seen else "wb", buffering=1 << 16)
            self._seen.add(day)
            self._open[day] = handle
        else:
            self._open.move_to_end(day)
        handle.write(orjson.dumps(body) + b"\n")
        self.bodies += 1

    def _body(self, phone_number_id: int, field: str, value: dict) -> dict:
        number = self._wabas[phone_number_id]
        metadata = {"display_phone_number": number.display_phone_number, "phone_number_id": str(phone_number_id)}
        return {"object": OBJECT, "entry": [{"id": number.waba_id, "changes": [
            {"value": {"messaging_product": "whatsapp", "metadata": metadata, **value}, "field": field}]}]}

    def add_export_file(self, path: Path) -> None:
        with open(path, "rb") as handle:
            for line in handle:
                self.add(orjson.loads(line))

    def add(self, record: dict) -> None:
        """The webhook bodies of one message record (writer.MessageRecords.record)."""
        phone = record["contact_phone"]
        phone = phone.lstrip("+") if phone else None
        bsuid = record["contact_bsuid"]
        contact: dict = {}
        if record["contact_name"] is not None:
            contact["profile"] = {"name": record["contact_name"]}
        if phone is not None:
            contact["wa_id"] = phone
        if bsuid is not None:
            contact["user_id"] = bsuid
        key = int(record["message_id"].removeprefix("wamid."), 16)
        sent = _seconds(record["timestamp"])
        number = record["phone_number_id"]
        if record["direction"] == "inbound":
            self._inbound(record, number, sent, phone, bsuid, contact)
            return
        recipient = {}
        if phone is not None:
            recipient["recipient_id"] = phone
        if bsuid is not None:
            recipient["recipient_user_id"] = bsuid
        contacts = {"contacts": [contact]} if bsuid is not None else {}
        status = record["status"]
        pricing = record["pricing"]
        priced = {"pricing": pricing} if pricing is not None else {}
        message_id = record["message_id"]
        if status == "failed":
            code = record["error_code"]
            error = {"code": code, "title": ERROR_TITLES.get(code, "Message failed")}
            self._status(number, sent, {"id": message_id, "status": "failed", "timestamp": str(sent),
                                        **recipient, "errors": [error]}, {})
            return
        self._status(number, sent, {"id": message_id, "status": "sent", "timestamp": str(sent),
                                    **recipient, **priced}, contacts)
        if status not in ("delivered", "read"):
            return
        delivered = _seconds(record["delivered_at"])
        read = min(delivered + READ_DELAYS[key % len(READ_DELAYS)], self.end - 1)
        if status == "delivered" or read > delivered:
            self._status(number, delivered, {"id": message_id, "status": "delivered",
                                             "timestamp": str(delivered), **recipient, **priced}, contacts)
        if status == "read":
            # Read with the delivery at the same second: Meta sends the read status alone.
            self._status(number, read, {"id": message_id, "status": "read", "timestamp": str(read),
                                        **recipient, **({} if read > delivered else priced)}, contacts)

    def _status(self, number: int, at: int, status: dict, contacts: dict) -> None:
        self._write(at, self._body(number, "messages", {**contacts, "statuses": [status]}))

    def _inbound(self, record: dict, number: int, at: int, phone: str | None, bsuid: str | None,
                 contact: dict) -> None:
        sender: dict = {}
        if phone is not None:
            sender["from"] = phone
        if bsuid is not None:
            sender["from_user_id"] = bsuid
        message_id = record["message_id"]
        if record["type"] == "call":
            call = {"id": message_id, "event": "connect", **sender, "timestamp": str(at)}
            self._write(at, self._body(number, "calls", {"contacts": [contact], "calls": [call]}))
            return
        message = {**sender, "id": message_id, "timestamp": str(at), "type": record["type"]}
        message[record["type"]] = _content(record["type"], message_id)
        if record["referral_source"] is not None:
            message["referral"] = {
                "source_url": "https://fb.me/simulated",
                "source_id": str(number),
                "source_type": "ad" if record["referral_source"] == "ad" else "post",
            }
        self._write(at, self._body(number, "messages", {"contacts": [contact], "messages": [message]}))

    def finish(self) -> list[Path]:
        """Each day's final file: days alternate JSONL, gzipped JSONL and a JSON array."""
        for handle in self._open.values():
            handle.close()
        self._open.clear()
        files = []
        for day in sorted(self._seen):
            partial = self._partial(day)
            stem = partial.with_suffix("")
            form = day % 3
            if form == 0:
                final = stem.with_name(stem.name + ".jsonl")
                os.replace(partial, final)
            elif form == 1:
                final = stem.with_name(stem.name + ".jsonl.gz")
                with open(partial, "rb") as source, open(final, "wb") as raw, \
                        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as target:
                    for line in source:                         # mtime 0: same seed, same bytes
                        target.write(line)
                partial.unlink()
            else:
                final = stem.with_name(stem.name + ".json")
                with open(partial, "rb") as source, open(final, "wb") as target:
                    target.write(b"[")
                    for index, line in enumerate(source):
                        target.write((b",\n" if index else b"") + line.rstrip(b"\n"))
                    target.write(b"]\n")
                partial.unlink()
            files.append(final)
        return files


def _content(message_type: str, message_id: str) -> object:
    """A placeholder body of a message type (convo reads none of it)."""
    if message_type == "text":
        return {"body": "(simulated)"}
    if message_type == "interactive":
        return {"type": "button_reply", "button_reply": {"id": "simulated", "title": "OK"}}
    if message_type == "location":
        return {"latitude": 0.0, "longitude": 0.0}
    if message_type == "contacts":
        return [{"name": {"formatted_name": "(simulated)"}}]
    return {"id": message_id.removeprefix("wamid."), "mime_type": "application/octet-stream"}
