"""`convo window`: may the business send a free-form message to a contact at a time?

DOMAIN R6: yes iff an inbound message from the contact on that phone number lies in
(t - 24 h, t], i.e. iff one of the thread's service windows has
opened_at <= t < expires_at. Answered from the warehouse (opened read-only, every
value a bound parameter), so it knows the messages up to the build's as-of, which
is also the default time asked about. The stored macro ``in_service_window`` asks
the same question of the same table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb

from pipeline.errors import ConvoError
from pipeline.markets import BSUID_PATTERN, E164_MAX_DIGITS

UTC = timezone.utc
_PHONE_PUNCTUATION = re.compile(r"[\s\-().]")


class WindowError(ConvoError, ValueError):
    """A question the warehouse cannot answer (a user-fixable condition)."""


@dataclass(frozen=True)
class WindowAnswer:
    phone_number_id: int
    contact: str                     # as asked
    contact_key: str                 # DOMAIN R2
    at: datetime                     # the time asked about (UTC)
    as_of: datetime                  # the warehouse knows messages up to here
    timezone: str                    # of the business number (DOMAIN R1)
    is_open: bool                    # free-form allowed at `at`
    opened_at: datetime | None       # the window open at `at`, else the last one before it
    last_inbound_at: datetime | None  # the newest inbound message at or before `at`
    expires_at: datetime | None      # when that message's 24 h run out
    window_expires_at: datetime | None  # when the window expires, later inbound messages included


def answer(warehouse: Path, phone_number_id: int, contact: str, at: datetime | None = None) -> WindowAnswer:
    """DOMAIN R6 for one thread at `at` (default: the warehouse's as-of)."""
    if not warehouse.is_file():
        raise WindowError(f"no warehouse at {warehouse}: run `convo build` first")
    try:
        con = duckdb.connect(str(warehouse), read_only=True)
    except duckdb.Error as exc:
        raise WindowError(f"cannot open the warehouse {warehouse}: {_first_line(exc)}") from None
    try:
        return ask(con, phone_number_id, contact, at)
    except duckdb.CatalogException:
        raise WindowError(f"the warehouse {warehouse} has no service windows: rebuild it with `convo build`") from None
    finally:
        con.close()


def ask(con: duckdb.DuckDBPyConnection, phone_number_id: int, contact: str,
        at: datetime | None = None) -> WindowAnswer:
    """:func:`answer` on an open warehouse connection (for many questions in a row)."""
    as_of = _one(con, "select as_of from int_thread_as_of")
    if as_of is None:
        raise WindowError("the warehouse holds no messages: ingest exports and run `convo build`")
    tenant_id = _one(con, "select any_value(tenant_id) from messages where phone_number_id = ?", [phone_number_id])
    configured = _one(con, "select any_value(timezone) from phone_numbers where phone_number_id = ?",
                      [phone_number_id])
    if tenant_id is None:
        raise WindowError(f"unknown phone_number_id {phone_number_id}: the warehouse has no message on it")
    contact_key = _contact_key(con, tenant_id, contact)
    known = _one(con, "select count(*) from messages where phone_number_id = ? and contact_key = ?",
                 [phone_number_id, contact_key])
    if not known:
        raise WindowError(f"unknown contact {contact} on phone_number_id {phone_number_id}: "
                          "the warehouse has no message between them")
    moment = (at or as_of).astimezone(UTC)
    window = con.execute(
        "select opened_at, last_inbound_at, expires_at from service_windows "
        "where phone_number_id = ? and contact_key = ? and opened_at <= ? "
        "order by opened_at desc limit 1",
        [phone_number_id, contact_key, moment],
    ).fetchall()
    opened_at, window_last, window_expires = window[0] if window else (None, None, None)
    last_inbound = window_last
    if window_last is not None and window_last > moment:
        # Asked about a moment inside the window: its newest inbound message up to then.
        last_inbound = _one(
            con,
            "select max(sent_at) from messages where phone_number_id = ? and contact_key = ? "
            "and direction = 'inbound' and sent_at <= ?",
            [phone_number_id, contact_key, moment],
        )
    length: timedelta | None = None if window_last is None else window_expires - window_last
    expires = None if last_inbound is None or length is None else last_inbound + length
    return WindowAnswer(
        phone_number_id=phone_number_id,
        contact=contact,
        contact_key=contact_key,
        at=moment,
        as_of=as_of.astimezone(UTC),
        timezone=configured or "UTC",
        is_open=window_expires is not None and moment < window_expires,
        opened_at=_utc(opened_at),
        last_inbound_at=_utc(last_inbound),
        expires_at=_utc(expires),
        window_expires_at=_utc(window_expires),
    )


def _contact_key(con: duckdb.DuckDBPyConnection, tenant_id: int, contact: str) -> str:
    """A bsuid is its own key; a phone is the bsuid seen with it in the tenant, else itself (R2)."""
    text = contact.strip()
    if BSUID_PATTERN.fullmatch(text):
        return text
    digits = _PHONE_PUNCTUATION.sub("", text).removeprefix("+")
    if not (digits.isascii() and digits.isdigit() and 0 < len(digits) <= E164_MAX_DIGITS):
        raise WindowError(f"--contact must be a bsuid (like BR.1a2b3c) or a phone number "
                          f"(like +5511987654321), got {contact!r}")
    phone = "+" + digits
    bsuid = _one(con, "select contact_bsuid from int_contact_keys where tenant_id = ? and contact_phone = ?",
                 [tenant_id, phone])
    return bsuid or phone


def lines(result: WindowAnswer) -> list[str]:
    """What `convo window` prints."""
    who = result.contact_key if result.contact_key == result.contact.strip() else \
        f"{result.contact_key} ({result.contact.strip()})"
    verdict = "allowed" if result.is_open else "not allowed (templates only)"
    out = [f"free-form to {who} on {result.phone_number_id} at {_show(result.at)}: {verdict}"]
    if result.is_open:
        out.append(f"  window opened {_show(result.opened_at)}, last inbound {_show(result.last_inbound_at)}, "
                   f"open until {_show(result.expires_at, result.timezone)}")
        if result.window_expires_at != result.expires_at:
            out.append(f"  later inbound messages kept it open until {_show(result.window_expires_at, result.timezone)}")
    elif result.last_inbound_at is not None:
        out.append(f"  last inbound {_show(result.last_inbound_at)}; "
                   f"the window expired {_show(result.expires_at, result.timezone)}")
    else:
        out.append("  no inbound message from this contact on this number yet")
    if result.at > result.as_of:
        out.append(f"  note: the warehouse knows messages up to {_show(result.as_of)} (rebuild with `convo build`)")
    return out


def _show(moment: datetime | None, zone: str | None = None) -> str:
    if moment is None:
        return "-"
    text = f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
    if zone is None or zone == "UTC":
        return text
    return f"{text} ({moment.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} {zone})"


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(UTC)


def _one(con: duckdb.DuckDBPyConnection, query: str, parameters: list[object] | None = None) -> object:
    rows = con.execute(query, parameters or []).fetchall()
    return rows[0][0] if rows else None


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
