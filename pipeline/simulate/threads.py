"""Behaviour of one thread (business number, user identity): who writes what, when.

A thread is generated in one sequential sweep over triggers (user sessions,
campaigns, notifications, one-time passwords, re-engagement checks). Every message
starts strictly after the previous one was delivered, so the thread's order is the
same by send time and by delivery time (the oracle and the lifecycle rely on it).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from pipeline.simulate.clock import DAY, HOUR, MINUTE
from pipeline.simulate.meta import CSW_SECONDS
from pipeline.simulate.world import (
    AUTH_TEMPLATES,
    COUNTRIES,
    RECATEGORISED_TEMPLATE,
    REENGAGEMENT_TEMPLATE,
    REOPEN_TEMPLATE,
    UTILITY_TEMPLATES,
    BusinessNumber,
    Campaign,
    Contact,
    Persona,
)

RE_ENGAGEMENT_ERROR = 131047   # free-form outside the CSW (DOMAIN R5)
UNDELIVERABLE_ERROR = 131026
MARKETING_LIMIT_ERROR = 131049

INBOUND = 0
OUTBOUND = 1
CLOSE = 2

SESSION, CAMPAIGN, UTILITY, AUTH, REENGAGE = range(5)
_ID_MULTIPLIER = 0x9E3779B97F4A7C15
_MASK64 = (1 << 64) - 1
MAX_DEPTH = 3                   # sessions started from sessions (reopen, answers to templates)


def _table(weights: dict[str, int]) -> tuple[str, ...]:
    """A 100-slot lookup table: table[int(random() * 100)] draws by weight."""
    slots = [name for name, weight in weights.items() for _ in range(weight)]
    assert len(slots) == 100, weights
    return tuple(slots)


INBOUND_TYPES = _table({
    "text": 66, "image": 9, "audio": 7, "interactive": 4, "reaction": 4, "sticker": 2,
    "video": 2, "document": 2, "location": 1, "contacts": 1, "call": 2,
})
AGENT_TYPES = _table({"text": 74, "image": 7, "document": 7, "interactive": 9, "video": 1, "audio": 2})
# Users are awake by their local hour (weights for 00..23).
_HOURLY = (1, 0.5, 0.3, 0.2, 0.2, 0.3, 0.8, 2, 3, 4, 4.5, 4.5, 5, 4.5, 4.5, 4.5, 4.5, 5, 5.5, 6, 6, 5, 3.5, 2)
_HOURLY_TOTAL = sum(_HOURLY)
_HOURLY_CUMULATIVE = tuple(sum(_HOURLY[: hour + 1]) / _HOURLY_TOTAL for hour in range(24))


class Msg:
    """One message of a thread, or a close marker (kind CLOSE)."""

    __slots__ = (
        "ts", "kind", "type", "template", "category", "status", "error", "delivered",
        "referral", "conversation", "pricing", "claim", "key", "close",
    )

    def __init__(self, ts: int, kind: int, mtype: str | None, key: int) -> None:
        self.ts = ts
        self.kind = kind
        self.type = mtype
        self.template: str | None = None
        self.category: str | None = None
        self.status = "received"
        self.error: int | None = None
        self.delivered: int | None = None
        self.referral: str | None = None
        self.conversation: int | None = None
        self.pricing: object | None = None
        self.claim: tuple | None = None   # free-allowance claim of a provisional charge (meta.py)
        self.key = key            # the message id as an integer (also the free-tier tiebreak)
        self.close: str | None = None

    @property
    def is_delivered(self) -> bool:
        return self.status == "delivered" or self.status == "read"


@dataclass(frozen=True)
class Period:
    start: int
    end: int                        # export time: nothing is sent at or after it
    recategorised_at: int           # RECATEGORISED_TEMPLATE is marketing from then on
    campaigns: tuple[tuple[Campaign, ...], ...]


class MessageKeys:
    """Unique 64-bit message ids for one contact: a bijection of (contact, sequence)."""

    __slots__ = ("base", "salt", "next")

    def __init__(self, contact_index: int, salt: int) -> None:
        self.base = contact_index << 24
        self.salt = salt
        self.next = 0

    def take(self) -> int:
        sequence = self.next
        self.next = sequence + 1
        if sequence >= 1 << 24:
            raise RuntimeError("more than 16M messages for one contact")
        # Multiplying by an odd constant modulo 2**64 is a bijection: ids never collide.
        return ((self.base | sequence) * _ID_MULTIPLIER + self.salt) & _MASK64


def _between(rng: random.Random, low: int, high: int) -> int:
    """An integer in [low, high): randrange's distribution, without its overhead."""
    return low + int(rng.random() * (high - low))


def poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 50:
        return max(0, int(rng.gauss(mean, math.sqrt(mean)) + 0.5))
    limit = math.exp(-mean)
    count, product = 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


class ThreadSim:
    """Generates the messages of one thread between persona.active_from and the period end."""

    def __init__(self, rng: random.Random, contact: Contact, persona: Persona, number: BusinessNumber,
                 number_index: int, share: float, primary: bool, period: Period, keys: MessageKeys) -> None:
        self.rng = rng
        self.contact = contact
        self.persona = persona
        self.number = number
        self.number_index = number_index
        self.share = share
        self.primary = primary
        self.period = period
        self.keys = keys
        self.stop = period.end - MINUTE          # margin: deliveries land before the export
        self.msgs: list[Msg] = []
        self.cursor = max(period.start, persona.active_from)
        self.last_inbound: int | None = None
        self.last_reengaged = -10 * DAY

    # --- entry point ------------------------------------------------------------------
    def run(self) -> list[Msg]:
        for at, kind, payload in self._triggers():
            at = max(at, self.cursor)
            if at >= self.stop:
                break
            if kind == SESSION:
                self.session(at, payload, 0)
            elif kind == CAMPAIGN:
                self.template_then_maybe_answer(at, payload, "marketing", self.contact.responsiveness, 0)
            elif kind == UTILITY:
                self.template_then_maybe_answer(at, payload, self._utility_category(at, payload),
                                                self.contact.responsiveness * 0.8, 0)
            elif kind == AUTH:
                self.template_then_maybe_answer(at, payload, "authentication", 0.02, 0)
            else:
                self.reengage(at)
        return self.msgs

    # --- triggers ---------------------------------------------------------------------
    def _triggers(self) -> list[tuple[int, int, object]]:
        rng = self.rng
        low = max(self.period.start, self.persona.active_from)
        high = min(self.period.end, self.persona.active_until)
        if high <= low:
            return []
        days = (high - low) / DAY
        triggers: list[tuple[int, int, object]] = []
        count = poisson(rng, self.contact.sessions_per_day * self.share * days)
        if self.primary and self.contact.index < len(COUNTRIES):
            count = max(count, 1)      # the contacts that cover every country do show up
        sessions = sorted(self._user_time(low, high) for _ in range(count))
        for position, at in enumerate(sessions):
            referral = None
            if position == 0 and self.primary and self.contact.first_arrival and low == self.period.start:
                referral = self.contact.first_arrival      # DOMAIN R15: arrived through an entry point
            elif rng.random() < 0.03:
                referral = "ad" if rng.random() < 0.7 else "page_cta"
            triggers.append((at, SESSION, referral))
        if self.contact.marketing_opt_in:
            for campaign in self.period.campaigns[self.number_index]:
                if low <= campaign.at < high and rng.random() < campaign.audience:
                    spread = int(rng.expovariate(1 / (25 * MINUTE)))
                    triggers.append((campaign.at + spread, CAMPAIGN, campaign.template))
        for _ in range(poisson(rng, 0.045 * self.share * days)):
            name = RECATEGORISED_TEMPLATE if rng.random() < 0.2 else rng.choice(UTILITY_TEMPLATES)
            triggers.append((self._business_time(low, high), UTILITY, name))
        for _ in range(poisson(rng, 0.02 * self.share * days)):
            triggers.append((self._user_time(low, high), AUTH, rng.choice(AUTH_TEMPLATES)))
        check = low + _between(rng, 3 * DAY, 7 * DAY)
        while check < high:
            triggers.append((check, REENGAGE, None))
            check += 7 * DAY
        triggers.sort(key=lambda trigger: (trigger[0], trigger[1]))
        return triggers

    def _user_time(self, low: int, high: int) -> int:
        """A moment the user is likely awake (their country's local hour)."""
        rng = self.rng
        offset = int(self.contact.country.utc_offset_hours * HOUR)
        for _ in range(8):
            day = _between(rng, (low + offset) // DAY, (high + offset) // DAY + 1)
            draw = rng.random()
            hour = 0
            while _HOURLY_CUMULATIVE[hour] < draw:
                hour += 1
            at = day * DAY + hour * HOUR + int(rng.random() * HOUR) - offset
            if low <= at < high:
                return at
        return _between(rng, low, high)

    def _business_time(self, low: int, high: int) -> int:
        """Notifications go out 08:00-21:00 at the business number."""
        rng = self.rng
        clock = self.number.clock
        for _ in range(8):
            at = _between(rng, low, high)
            if 8 <= clock.local_hour(at) < 21:
                return at
        return _between(rng, low, high)

    def _utility_category(self, at: int, name: str) -> str:
        # Templates carry their category at send time (DESIGN messages: template_category).
        if name == RECATEGORISED_TEMPLATE and at >= self.period.recategorised_at:
            return "marketing"
        return "utility"

    # --- the conversation as it unfolds -------------------------------------------------
    def session(self, at: int, referral: str | None, depth: int, first_type: str | None = None) -> None:
        """A user writes; an agent answers; they go back and forth; maybe a close."""
        rng = self.rng
        if not self.user_burst(at, referral, first_type):
            return
        turns = 0
        while True:
            turns += 1
            reply_at = self.agent_time(self.cursor)
            if reply_at >= self.stop:
                return
            if self.last_inbound is None or reply_at >= self.last_inbound + CSW_SECONDS:
                self.free_form_outside_window(reply_at, depth)   # DOMAIN R5
                return
            self.agent_messages(reply_at)
            if rng.random() < 0.08:
                # A utility template inside the CSW (DOMAIN R19: free in B; R21: charged in C).
                name = RECATEGORISED_TEMPLATE if rng.random() < 0.15 else rng.choice(UTILITY_TEMPLATES)
                at2 = self.cursor + _between(rng, 20, 600)
                self.send_template(at2, name, self._utility_category(at2, name))
            if turns >= 6 or rng.random() > 0.62 - 0.07 * turns:
                break
            user_at = self.cursor + self.user_delay()
            if user_at >= self.stop or not self.user_burst(user_at, None, None):
                return
        self.maybe_probe_boundary()
        self.maybe_close(depth)

    def user_burst(self, at: int, referral: str | None, first_type: str | None) -> bool:
        rng = self.rng
        at = max(at, self.cursor)
        if at >= self.stop:
            return False
        count = 1 + (rng.random() < 0.45) + (rng.random() < 0.2) + (rng.random() < 0.1)
        for position in range(count):
            if at >= self.stop:
                break
            mtype = first_type if position == 0 and first_type else INBOUND_TYPES[int(rng.random() * 100)]
            msg = Msg(at, INBOUND, mtype, self.keys.take())
            if position == 0:
                msg.referral = referral
            self.msgs.append(msg)
            self.last_inbound = at
            self.cursor = at + 1
            at += _between(rng, 3, 75)
        return True

    def agent_messages(self, at: int) -> None:
        rng = self.rng
        count = 1 + (rng.random() < 0.3) + (rng.random() < 0.08)
        for _ in range(count):
            at = max(at, self.cursor)
            if at >= self.stop or self.last_inbound is None or at >= self.last_inbound + CSW_SECONDS:
                return
            self.send(at, AGENT_TYPES[int(rng.random() * 100)], None, None)
            at = self.cursor + _between(rng, 5, 120)

    def agent_time(self, at: int) -> int:
        """When an agent answers: minutes by day, slower in the evening, next morning at
        night, slower at weekends (local time of the business number); sometimes forgotten."""
        rng = self.rng
        if rng.random() < 0.025:
            return at + _between(rng, 20 * HOUR, 40 * HOUR)
        clock = self.number.clock
        local = at + clock.offset(at)
        hour = local % DAY // HOUR
        weekend = ((local // DAY) + 3) % 7 >= 5
        if 8 <= hour < 20:
            median = 150.0
        elif 20 <= hour < 23:
            median = 1500.0
        else:
            second_of_day = local % DAY
            wait = (DAY - second_of_day + 8 * HOUR) if hour >= 23 else (8 * HOUR - second_of_day)
            return at + wait + int(rng.lognormvariate(6.8, 0.8))
        if weekend:
            median *= 4
        return at + max(8, int(rng.lognormvariate(math.log(median), 1.0)))

    def user_delay(self) -> int:
        rng = self.rng
        if rng.random() < 0.12:
            return _between(rng, HOUR, 10 * HOUR)
        return max(5, int(rng.lognormvariate(4.2, 1.2)))

    def free_form_outside_window(self, at: int, depth: int) -> None:
        """The agent answers too late: Meta refuses the free-form (131047), then maybe a template."""
        rng = self.rng
        msg = Msg(max(at, self.cursor), OUTBOUND, "text", self.keys.take())
        msg.status = "failed"
        msg.error = RE_ENGAGEMENT_ERROR
        self.msgs.append(msg)
        self.cursor = msg.ts + 1
        if rng.random() < 0.7:
            later = self.cursor + _between(rng, MINUTE, 10 * MINUTE)
            self.template_then_maybe_answer(later, REOPEN_TEMPLATE, "utility", 0.45, depth + 1)

    def maybe_close(self, depth: int) -> None:
        """DOMAIN R8/R9: agents close most conversations, supervisors some; users may write again."""
        rng = self.rng
        draw = rng.random()
        if draw < 0.42:
            reason, at = "agent_close", self.cursor + _between(rng, 30, 20 * MINUTE)
        elif draw < 0.55:
            reason, at = "manual_close", self.cursor + _between(rng, HOUR, 8 * HOUR)
        else:
            return
        if at >= self.stop:
            return
        marker = Msg(at, CLOSE, None, 0)
        marker.close = reason
        self.msgs.append(marker)
        self.cursor = at + 1
        if depth < MAX_DEPTH and rng.random() < 0.18:
            again = at + min(6 * HOUR, max(30, int(rng.lognormvariate(7.0, 1.2))))
            self.session(again, None, depth + 1)           # a reopen (DOMAIN R9)

    def maybe_probe_boundary(self) -> None:
        """Rarely, something lands exactly on the 24 h edge of the CSW (DOMAIN R4, R6)."""
        rng = self.rng
        if rng.random() >= 0.012 or self.last_inbound is None:
            return
        edge = self.last_inbound + CSW_SECONDS
        if edge - 10 <= self.cursor or edge >= self.stop:
            return
        probe = rng.randrange(4)
        if probe == 0:       # a utility template delivered at exactly +24 h: outside
            self.send_template(edge - 3, rng.choice(UTILITY_TEMPLATES), "utility", delivered_at=edge)
        elif probe == 1:     # delivered one second before: inside
            self.send_template(edge - 4, rng.choice(UTILITY_TEMPLATES), "utility", delivered_at=edge - 1)
        elif probe == 2:     # free-form sent at exactly +24 h: fails (R6)
            msg = Msg(edge, OUTBOUND, "text", self.keys.take())
            msg.status = "failed"
            msg.error = RE_ENGAGEMENT_ERROR
            self.msgs.append(msg)
            self.cursor = edge + 1
        else:                # the user writes at exactly +24 h: the window goes on (R4)
            self.user_burst(edge, None, "text")
            reply_at = self.cursor + _between(rng, 30, 300)
            if reply_at < self.stop:
                self.agent_messages(reply_at)

    # --- templates --------------------------------------------------------------------
    def template_then_maybe_answer(self, at: int, name: str, category: str, answer: float, depth: int) -> None:
        msg = self.send_template(at, name, category)
        if msg is None or not msg.is_delivered or depth >= MAX_DEPTH:
            return
        rng = self.rng
        if rng.random() < answer:
            delay = min(20 * HOUR, max(20, int(rng.lognormvariate(7.3, 1.4))))
            first = "button" if category == "marketing" and rng.random() < 0.5 else None
            self.session(msg.delivered + delay, None, depth + 1, first)  # type: ignore[operator]

    def reengage(self, at: int) -> None:
        """Weekly: contacts silent for 10+ days may get a re-engagement template."""
        rng = self.rng
        silent = self.last_inbound is None or at - self.last_inbound > 10 * DAY
        if not silent or at - self.last_reengaged < 20 * DAY or rng.random() >= 0.35:
            return
        self.last_reengaged = at
        name, category = (REENGAGEMENT_TEMPLATE, "marketing") if rng.random() < 0.7 else (
            REOPEN_TEMPLATE, "utility")
        self.template_then_maybe_answer(at, name, category, 0.2, 1)

    def send_template(self, at: int, name: str, category: str, delivered_at: int | None = None) -> Msg | None:
        msg = self.send(at, "template", name, category, delivered_at)
        return msg

    def send(self, at: int, mtype: str, template: str | None, category: str | None,
             delivered_at: int | None = None) -> Msg | None:
        at = max(at, self.cursor)
        if at >= self.stop:
            return None
        msg = Msg(at, OUTBOUND, mtype, self.keys.take())
        msg.template = template
        msg.category = category
        if delivered_at is not None and delivered_at > at:
            msg.status = "delivered"
            msg.delivered = delivered_at
        else:
            self._outcome(msg, category)
        self.msgs.append(msg)
        self.cursor = (msg.delivered or at) + 1
        return msg

    def _outcome(self, msg: Msg, category: str | None) -> None:
        """Delivery statuses: read, delivered, sent (never delivered), failed (R27)."""
        rng = self.rng
        draw = rng.random()
        if not self.contact.reachable:
            if draw < 0.1:
                msg.status, msg.error = "failed", UNDELIVERABLE_ERROR
            else:
                msg.status = "sent"
            return
        if category == "marketing":
            failed, sent = 0.03, 0.09
        elif category is None:
            failed, sent = 0.004, 0.02
        else:
            failed, sent = 0.015, 0.045
        if draw < failed:
            msg.status = "failed"
            msg.error = MARKETING_LIMIT_ERROR if category == "marketing" and draw < failed * 0.6 else UNDELIVERABLE_ERROR
            return
        if draw < sent:
            msg.status = "sent"
            return
        delay = _between(rng, 1, 7)
        if category is not None and rng.random() < 0.04:
            delay += _between(rng, 10 * MINUTE, 6 * HOUR)  # the phone was offline for a while
        delivered = msg.ts + delay
        if delivered >= self.period.end:
            msg.status = "sent"                            # not delivered yet at export time
            return
        msg.delivered = delivered
        msg.status = "read" if rng.random() < 0.68 else "delivered"


def generate_threads(rng: random.Random, contact: Contact, numbers: tuple[BusinessNumber, ...],
                     period: Period, keys: MessageKeys) -> list[tuple[Persona, int, list[Msg]]]:
    """All threads of a contact: each persona with each business number it talks to."""
    threads = []
    for persona in contact.personas:
        for number_index, share in contact.numbers:
            sim = ThreadSim(rng, contact, persona, numbers[number_index], number_index, share,
                            share == 1.0, period, keys)
            msgs = sim.run()
            if msgs:
                threads.append((persona, number_index, msgs))
    return threads
