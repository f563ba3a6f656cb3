"""--dirty: what real exports contain, injected as EXTRA lines next to the clean ones.

Every clean record is still written (so a dirty run's valid rows are the clean
run's rows for the same seed); only ``files_out_of_order`` moves a clean record,
into the file of day D+2. Each extra line carries exactly one defect, so ingest
can assert exact quarantine counts by kind.

Kinds counted in ``SimulateSummary.dirty`` (keys absent when zero):
- messages files: ``duplicate_status_update`` (the same message_id again with the
  earlier status "sent", in another day's file: valid, the latest status wins),
  ``exact_duplicate`` (the same line twice), ``malformed_json``,
  ``missing_required_field`` (message_id, direction, timestamp or phone_number_id),
  ``bad_timestamp`` ("yesterday", "2026-13-45T99:00:00Z", no offset),
  ``unknown_enum`` (direction "sideways", status "bounced", template_category
  "promo"), ``unparseable_phone`` ("+12ab", "call me", "+"; with no bsuid) and
  ``files_out_of_order`` (records moved to the file of day D+2; also the files'
  modification times are not in date order);
- conversation pages: ``conversations_duplicate_record`` (a record listed twice);
- events: ``events_exact_duplicate`` (a webhook delivered twice),
  ``events_malformed_json``.
Extra records that are invalid get fresh message ids ("wamid.dirty…"), so none of
them collides with a clean record.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from pathlib import Path

import orjson

from pipeline.simulate.clock import iso_utc, parse_iso

MESSAGE_RATE = 0.006       # share of clean message lines that get a defect next to them
CONVERSATION_RATE = 0.003
EVENT_RATE = 0.003

_MESSAGE_KINDS = (
    "duplicate_status_update", "exact_duplicate", "malformed_json", "missing_required_field",
    "bad_timestamp", "unknown_enum", "unparseable_phone", "files_out_of_order",
)
_REQUIRED = ("message_id", "direction", "timestamp", "phone_number_id")
_BAD_TIMESTAMPS = ("yesterday", "2026-13-45T99:00:00Z", None)   # None: the time without offset
_UNKNOWN_ENUMS = (("direction", "sideways"), ("status", "bounced"), ("template_category", "promo"))
_BAD_PHONES = ("+12ab", "call me", "+")


class Dirt:
    """Decides and writes the defects; counts them by kind."""

    def __init__(self, seed: int, first_day: int, last_day: int) -> None:
        self.rng = random.Random(f"dirty:{seed}")
        self.first_day = first_day
        self.last_day = last_day
        self.counts: Counter[str] = Counter()
        self._turn = 0
        self._serial = 0

    # --- messages -------------------------------------------------------------------------
    def message(self, line: bytes, day: int, buckets: dict[int, list[bytes]]) -> int:
        """Called for each clean line (already appended to buckets[day]); returns the
        day of the file that finally holds the clean line."""
        if self.rng.random() >= MESSAGE_RATE:
            return day
        record = orjson.loads(line)
        kind = self._next_kind(record, day)
        if kind is None:
            return day
        self.counts[kind] += 1
        getattr(self, f"_{kind}")(record, line, day, buckets)
        return day + 2 if kind == "files_out_of_order" else day

    def _next_kind(self, record: dict, day: int) -> str | None:
        for _ in range(len(_MESSAGE_KINDS)):
            kind = _MESSAGE_KINDS[self._turn % len(_MESSAGE_KINDS)]
            self._turn += 1
            if self._applies(kind, record, day):
                return kind
        return None

    def _applies(self, kind: str, record: dict, day: int) -> bool:
        if kind == "duplicate_status_update":
            return record["status"] in ("delivered", "read") and self.first_day < self.last_day
        if kind == "files_out_of_order":
            return day + 2 <= self.last_day
        return True

    def _fresh(self, record: dict) -> dict:
        self._serial += 1
        copy = dict(record)
        copy["message_id"] = f"wamid.dirty{self._serial:010x}"
        return copy

    def _duplicate_status_update(self, record: dict, line: bytes, day: int, buckets: dict) -> None:
        earlier = dict(record)
        earlier.update(status="sent", delivered_at=None, pricing=None)
        other = day + 1 if day + 1 <= self.last_day else day - 1
        buckets.setdefault(other, []).append(orjson.dumps(earlier, option=orjson.OPT_APPEND_NEWLINE))

    def _exact_duplicate(self, record: dict, line: bytes, day: int, buckets: dict) -> None:
        buckets[day].append(line)

    def _malformed_json(self, record: dict, line: bytes, day: int, buckets: dict) -> None:
        if self._serial % 2:
            bad = line[: len(line) // 2] + b"\n"                 # a truncated write
        else:
            bad = line.rstrip(b"\n") + b',"extra":}\n'           # trailing garbage
        self._serial += 1
        buckets[day].append(bad)

    def _missing_required_field(self, record: dict, line: bytes, day: int, buckets: dict) -> None:
        copy = self._fresh(record)
        del copy[_REQUIRED[self._serial % len(_REQUIRED)]]
        buckets[day].append(orjson.dumps(copy, option=orjson.OPT_APPEND_NEWLINE))

    def _bad_timestamp(self, record: dict, line: bytes, day: int, buckets: dict) -> None:
        copy = self._fresh(record)
        bad = _BAD_TIMESTAMPS[self._serial % len(_BAD_TIMESTAMPS)]
        if bad is None:
            bad = iso_utc(parse_iso(record["timestamp"]))[:-1]    # "2026-09-03T10:00:00": no offset
        copy["timestamp"] = bad
        buckets[day].append(orjson.dumps(copy, option=orjson.OPT_APPEND_NEWLINE))

    def _unknown_enum(self, record: dict, line: bytes, day: int, buckets: dict) -> None:
        copy = self._fresh(record)
        field, value = _UNKNOWN_ENUMS[self._serial % len(_UNKNOWN_ENUMS)]
        copy[field] = value
        buckets[day].append(orjson.dumps(copy, option=orjson.OPT_APPEND_NEWLINE))

    def _unparseable_phone(self, record: dict, line: bytes, day: int, buckets: dict) -> None:
        copy = self._fresh(record)
        copy["contact_phone"] = _BAD_PHONES[self._serial % len(_BAD_PHONES)]
        copy["contact_bsuid"] = None
        buckets[day].append(orjson.dumps(copy, option=orjson.OPT_APPEND_NEWLINE))

    def _files_out_of_order(self, record: dict, line: bytes, day: int, buckets: dict) -> None:
        moved = buckets[day].pop()
        assert moved is line, "the clean line must be the last one of its day"
        buckets.setdefault(day + 2, []).append(line)

    # --- other exports ----------------------------------------------------------------------
    def conversation(self) -> bool:
        """True: list this conversation record twice."""
        if self.rng.random() < CONVERSATION_RATE:
            self.counts["conversations_duplicate_record"] += 1
            return True
        return False

    def event(self, line: bytes) -> bytes:
        """The event line plus, sometimes, a defect after it."""
        if self.rng.random() >= EVENT_RATE:
            return line
        if self.rng.random() < 0.7:
            self.counts["events_exact_duplicate"] += 1
            return line + line
        self.counts["events_malformed_json"] += 1
        return line + line[: len(line) // 3] + b"\n"

    def shuffle_mtimes(self, files: list[Path], base: int) -> None:
        """Modification times not in date order (deterministic)."""
        count = len(files)
        for position, path in enumerate(files):
            moment = base + ((position * 7 + 3) % max(count, 1)) * 60 - (position % 3) * 3600
            os.utime(path, (moment, moment))
