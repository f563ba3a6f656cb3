"""Incidents injected into a simulated tenant (`convo simulate --incident KIND:DATE`).

Each incident is a realistic burst of traffic on one local day of one business number,
written by extra contacts of the same tenant through the same path as every other
contact (Meta's pricing objects from meta.py, the platform's lifecycle, the day files),
so the alerts (sql/marts/alerts.sql) meet it as they would meet the real thing:

* ``cost_spike``: the São Paulo number sends a marketing template to a large audience in
  Mexico (a campaign aimed at the wrong market) from 11:00 local;
* ``otp_pumping``: the New York number sends one-time codes to many Uzbek numbers it
  never served, none of whom writes back (artificially inflated traffic);
* ``failure_spike``: a bot of the Madrid number messages Spanish contacts free-form days
  after they last wrote: every send fails with 131047 (DOMAIN R5);
* ``window_waste``: the São Paulo number answers Brazilian contacts who just wrote with a
  marketing template instead of a free reply (charged inside the window, DOMAIN R19;
  only regime B prices this as waste: give a date before 2026-10-01);
* ``tier_change``: the São Paulo number sends utility templates outside any window to
  many Brazilian contacts (a volume that crosses a tier when the card's tier is small
  enough: the shipped cards' first tier ends at 100,000);
* ``input_quality``: the messages file of the (UTC) day gets as many truncated lines as
  it has records (an export job cut off mid-write);
* ``reconciliation_drift``: the Kolkata number sends utility templates whose pricing
  objects Meta labels marketing (Meta re-categorised the template; the export still says
  utility).

:data:`SCOPES` says where each alert is expected (number, market, country, category).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from pipeline.simulate.clock import DAY, HOUR, MINUTE, epoch_day
from pipeline.simulate.threads import INBOUND, OUTBOUND, RE_ENGAGEMENT_ERROR, MessageKeys, Msg
from pipeline.simulate.world import (
    COUNTRY_BY_ISO,
    KOLKATA,
    MADRID,
    MAX_CONTACTS,
    NEW_YORK,
    NUMBERS,
    SAO_PAULO,
    Contact,
    Country,
    Persona,
    bsuid,
    contact_name,
    mix64,
    phone_number,
)

KINDS = ("cost_spike", "otp_pumping", "failure_spike", "window_waste", "tier_change", "input_quality",
         "reconciliation_drift")
# A destination the simulated tenant never serves (its mobile numbers: +998 9x xxx xx xx).
PUMPED = Country("UZ", 998, 0, NEW_YORK, 5, "en", (("90", 7, 0), ("91", 7, 0), ("93", 7, 0)))
# The contact indices and phone slots of incidents: far above any simulated contact's.
_INDEX_BASE = MAX_CONTACTS - 1_000_000
_PER_INCIDENT = 100_000


@dataclass(frozen=True)
class Scope:
    """Where an incident's alert is expected."""

    phone_number_id: int | None
    market: str | None = None
    country_code: str | None = None
    category: str | None = None


SCOPES: dict[str, Scope] = {
    "cost_spike": Scope(NUMBERS[SAO_PAULO].phone_number_id, market="Mexico", category="marketing"),
    "otp_pumping": Scope(NUMBERS[NEW_YORK].phone_number_id, country_code="UZ", category="authentication"),
    "failure_spike": Scope(NUMBERS[MADRID].phone_number_id),
    "window_waste": Scope(NUMBERS[SAO_PAULO].phone_number_id),
    "tier_change": Scope(None, market="Brazil", category="utility"),
    "input_quality": Scope(None),
    "reconciliation_drift": Scope(NUMBERS[KOLKATA].phone_number_id),
}


@dataclass(frozen=True)
class Incident:
    kind: str
    day: date

    @property
    def scope(self) -> Scope:
        return SCOPES[self.kind]


def parse(text: str) -> Incident:
    """``KIND:YYYY-MM-DD`` -> Incident; ValueError naming what is wrong."""
    kind, colon, day = text.partition(":")
    if kind not in KINDS or not colon:
        raise ValueError(f"--incident {text!r}: expected KIND:YYYY-MM-DD with KIND one of {', '.join(KINDS)}")
    try:
        return Incident(kind, date.fromisoformat(day))
    except ValueError:
        raise ValueError(f"--incident {text!r}: not a date YYYY-MM-DD: {day!r}") from None


def audience(kind: str, contacts: int) -> int:
    """How many contacts an incident reaches: enough to stand out from a tenant of this size."""
    if kind == "otp_pumping":
        return 40
    if kind in ("failure_spike", "reconciliation_drift"):
        return max(40, contacts // 10)
    if kind == "tier_change":
        return max(300, contacts // 2)
    return max(80, contacts // 3)


Thread = tuple[Persona, int, list[Msg]]


def contacts(incidents: tuple[Incident, ...], seed: int, contacts_count: int,
             end: int) -> Iterator[tuple[Incident, Contact, list[Thread]]]:
    """The extra contacts of every incident, each with its one thread."""
    for position, incident in enumerate(incidents):
        count = 0 if incident.kind == "input_quality" else audience(incident.kind, contacts_count)
        rng = random.Random(f"incident:{seed}:{position}:{incident.kind}:{incident.day}")
        for member in range(count):
            index = _INDEX_BASE + position * _PER_INCIDENT + member
            yield incident, *_contact(incident, index, member, seed, end, rng)


def _contact(incident: Incident, index: int, member: int, seed: int, end: int,
             rng: random.Random) -> tuple[Contact, list[Thread]]:
    kind = incident.kind
    number_index = {"otp_pumping": NEW_YORK, "failure_spike": MADRID, "reconciliation_drift": KOLKATA}.get(
        kind, SAO_PAULO)
    country = {"cost_spike": COUNTRY_BY_ISO["MX"], "otp_pumping": PUMPED, "failure_spike": COUNTRY_BY_ISO["ES"],
               "reconciliation_drift": COUNTRY_BY_ISO["IN"]}.get(kind, COUNTRY_BY_ISO["BR"])
    slot = 2 * MAX_CONTACTS - 1 - (index - _INDEX_BASE)
    day = epoch_day(incident.day)
    number = NUMBERS[number_index]
    start = number.clock.local_to_utc(day, 11 * HOUR) + member * 20   # from 11:00 local, 20 s apart
    active_from = start - 4 * DAY
    persona = Persona(phone_number(country, slot, seed), bsuid(country, slot, seed, rng), True, active_from, end)
    contact = Contact(index=index, country=country, name=contact_name(country, rng),
                      customer_id=None, personas=(persona,), numbers=((number_index, 1.0),), sessions_per_day=0.0,
                      marketing_opt_in=True, reachable=True, responsiveness=0.0, first_arrival=None)
    keys = MessageKeys(index, mix64(seed ^ 0x1AC1DE47))
    msgs: list[Msg] = []
    if kind == "cost_spike":
        msgs.append(_template(start, "spring_sale", "marketing", keys))
    elif kind == "otp_pumping":
        msgs.append(_template(start, "otp_login", "authentication", keys))
        if rng.random() < 0.5:                       # "resend code"
            msgs.append(_template(start + 2 * MINUTE, "otp_login", "authentication", keys))
    elif kind == "failure_spike":
        msgs.append(_inbound(start - 3 * DAY, keys))
        failed = Msg(start, OUTBOUND, "text", keys.take())
        failed.status, failed.error = "failed", RE_ENGAGEMENT_ERROR
        msgs.append(failed)
    elif kind == "window_waste":
        msgs.append(_inbound(start, keys))
        msgs.append(_template(start + 10 * MINUTE, "loyalty_points", "marketing", keys))
    elif kind in ("tier_change", "reconciliation_drift"):
        msgs.append(_template(start, "order_confirmation", "utility", keys))
    return contact, [(persona, number_index, msgs)]


def _inbound(at: int, keys: MessageKeys) -> Msg:
    return Msg(at, INBOUND, "text", keys.take())


def _template(at: int, name: str, category: str, keys: MessageKeys) -> Msg:
    msg = Msg(at, OUTBOUND, "template", keys.take())
    msg.template, msg.category = name, category
    msg.status, msg.delivered = "delivered", at + 2
    return msg


def after_pricing(incident: Incident, threads: list[Thread]) -> None:
    """reconciliation_drift: Meta's pricing object says marketing where convo reads utility."""
    if incident.kind != "reconciliation_drift":
        return
    for _, _, msgs in threads:
        for msg in msgs:
            if msg.pricing is not None and msg.category == "utility":
                msg.pricing = replace(msg.pricing, category="marketing")  # type: ignore[type-var]


def damage(incident: Incident, messages_file: Path) -> int:
    """input_quality: append a truncated copy of every line of the day's messages file."""
    if incident.kind != "input_quality" or not messages_file.is_file():
        return 0
    lines = messages_file.read_bytes().splitlines()
    with open(messages_file, "ab") as out:
        for line in lines:
            out.write(line[: len(line) // 2] + b"\n")
    return len(lines)
