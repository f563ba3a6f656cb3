"""Meta's side of the world: the `pricing` object of every delivered message.

A plain-Python, per-thread model of DOMAIN R13-R27, written apart from the SQL
engine and never imported by it (nor the reverse, DESIGN.md): the two
implementations check each other. The regime dates and allowances below are
constants because this module *is* Meta's world in the simulation; the
production engine keeps the same facts as policy data.

Conventions (the same everywhere in this module):
- every window is half-open: something that starts at ``s`` and lasts ``d`` seconds
  is open at ``t`` iff ``s <= t < s + d``; so the customer service window is open
  at ``t`` iff an inbound message lies in ``(t - 24 h, t]`` (DOMAIN R4, R6);
- the delivery time decides the regime, the local billing day and window
  membership (DOMAIN R27); messages of a thread are fed in delivery order;
- the monthly free allowances (R16, R21) are first-come by (time, message id),
  counted across threads by :class:`FreeAllowance`. Regime C's allowance (1,000
  service messages per number and month) is claimed by third parties only, so this
  world has it or not (``assume_service_allowance``; by default as the production
  data assumes it, data/pricing_policy.csv ``assume_unconfirmed_allowance``);
- regime C service messages have no volume tiers and are not counted with utility
  (R21); the pricing object carries no tier, so this only matters to analytics.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import date
from collections.abc import Callable
from functools import lru_cache

from pipeline.simulate.clock import HOUR, LocalClock, epoch_day, month_of_day

# --- Regimes (DOMAIN R13, R18, R21), by local delivery date (R1, R27) -----------------
CBP_LAST_DAY = date(2025, 6, 30)          # regime A: conversation-based pricing
PMP_FIRST_DAY = date(2025, 7, 1)          # regime B: per-message pricing
REGIME_C_FIRST_DAY = date(2026, 10, 1)    # regime C: service messages charged

# --- Windows ---------------------------------------------------------------------------
CSW_SECONDS = 24 * HOUR                   # customer service window (R4)
CBP_CONVERSATION_SECONDS = 24 * HOUR      # a CBP conversation, not extended (R13)
FEP_SECONDS = 72 * HOUR                   # free entry point window (R15, R19)
FEP_REPLY_SECONDS = 24 * HOUR             # the business must answer an ad/CTA arrival within (R15)

# --- Free allowances -------------------------------------------------------------------
CBP_SERVICE_FREE_TIER_FIRST_DAY = date(2023, 6, 1)   # R16: first 1,000 service conv/month/WABA
CBP_SERVICE_ALL_FREE_FIRST_DAY = date(2024, 11, 1)   # R16: all service conversations free
CBP_SERVICE_FREE_TIER = 1000
REGIME_C_SERVICE_FREE_TIER = 1000                    # R21: per business phone number per month
# R21: that allowance is UNCONFIRMED (third parties only); does this world grant it?
REGIME_C_SERVICE_ALLOWANCE_ASSUMED = True

# --- Authentication-international (R25) -----------------------------------------------
AUTH_INTERNATIONAL_COUNTRIES = frozenset({"EG", "IN", "ID", "MY", "NG", "PK", "SA", "ZA", "AE"})

CBP = "CBP"
PMP = "PMP"
REGIME_A = "A"
REGIME_B = "B"
REGIME_C = "C"

_PMP_FIRST = epoch_day(PMP_FIRST_DAY)
_C_FIRST = epoch_day(REGIME_C_FIRST_DAY)
_TIER_FIRST = epoch_day(CBP_SERVICE_FREE_TIER_FIRST_DAY)
_ALL_FREE_FIRST = epoch_day(CBP_SERVICE_ALL_FREE_FIRST_DAY)


def regime_of_local_day(day: int) -> str:
    """The pricing regime of a local calendar day (epoch days). DOMAIN R13/R18/R21."""
    if day >= _C_FIRST:
        return REGIME_C
    if day >= _PMP_FIRST:
        return REGIME_B
    return REGIME_A


def window_open(last_inbound: int | None, t: int) -> bool:
    """DOMAIN R6: some inbound message lies in (t - 24 h, t] (given the latest one <= t)."""
    return last_inbound is not None and last_inbound <= t < last_inbound + CSW_SECONDS


@dataclass(frozen=True, slots=True)
class Pricing:
    """Meta's status-webhook pricing object (DOMAIN R26, R27)."""

    billable: bool
    pricing_model: str
    type: str
    category: str

    def as_dict(self) -> dict[str, object]:
        return _as_dict(self)


@lru_cache(maxsize=None)
def _as_dict(pricing: Pricing) -> dict[str, object]:
    # Shared per distinct object: callers serialise it, never mutate it.
    return {
        "billable": pricing.billable,
        "pricing_model": pricing.pricing_model,
        "type": pricing.type,
        "category": pricing.category,
    }


@lru_cache(maxsize=None)
def pricing(billable: bool, model: str, pricing_type: str, category: str) -> Pricing:
    """Interned Pricing objects (there are only a few dozen distinct ones)."""
    return Pricing(billable, model, pricing_type, category)


Claim = tuple[tuple, int, int]   # (key, time, tiebreak)


class FreeAllowance:
    """The first N units per (key, month), ordered by (time, tiebreak), are free.

    DOMAIN R16 (service conversations per WABA) and R21 (service messages per phone
    number) count across threads, so one thread alone cannot decide. Two modes:
    ``count`` grants claims in call order (right when units arrive in time order,
    e.g. one thread in a test); ``provisional`` grants nothing at claim time but
    keeps, per key, the N earliest claims in a bounded max-heap: a caller writes
    those units as charged, remembers the ones still :meth:`held`, forgets the ones
    reported to ``on_evict``, and at the end turns the held ones free (see
    run.FreeTierPatches). Memory stays bounded by N per key.
    """

    def __init__(self, allowance: int, mode: str = "count",
                 on_evict: Callable[[Claim], None] | None = None) -> None:
        if mode not in ("count", "provisional"):
            raise ValueError(f"mode must be count or provisional, not {mode}")
        self.allowance = allowance
        self.mode = mode
        self.on_evict = on_evict
        self._counts: dict[tuple, int] = {}
        self._heaps: dict[tuple, list[tuple[int, int]]] = {}
        self._held: set[Claim] = set()

    def claim(self, key: tuple, t: int, tiebreak: int) -> bool:
        """Is this unit free? (always False in provisional mode: see held())."""
        if self.mode == "count":
            used = self._counts.get(key, 0)
            self._counts[key] = used + 1
            return used < self.allowance
        heap = self._heaps.setdefault(key, [])
        entry = (-t, -tiebreak)  # a max-heap of the earliest claims
        if len(heap) < self.allowance:
            heapq.heappush(heap, entry)
        elif entry > heap[0]:
            evicted = heapq.heapreplace(heap, entry)
            lost = (key, -evicted[0], -evicted[1])
            self._held.discard(lost)
            if self.on_evict is not None:
                self.on_evict(lost)
        else:
            return False
        self._held.add((key, t, tiebreak))
        return False

    def held(self, claim: Claim) -> bool:
        """Provisional mode: is the claim among the N earliest of its key so far?"""
        return claim in self._held

    def granted(self) -> set[Claim]:
        """Provisional mode, at the end: the claims that are free."""
        return set(self._held)


@dataclass(frozen=True)
class MetaNumber:
    """What Meta knows of a business phone number for pricing."""

    phone_number_id: int
    waba_id: str
    clock: LocalClock
    business_country: str = "BR"
    auth_international_eligible: bool = False


@dataclass
class FreeAllowances:
    """Both cross-thread allowances, shared by every thread of a run.

    In a world without regime C's unconfirmed allowance (R21) ``regime_c_service``
    grants nothing (an allowance of 0): every regime C service message is charged.
    """

    cbp_service: FreeAllowance
    regime_c_service: FreeAllowance

    @classmethod
    def counting(cls, assume_service_allowance: bool | None = None) -> FreeAllowances:
        return cls(FreeAllowance(CBP_SERVICE_FREE_TIER),
                   FreeAllowance(_regime_c_allowance(assume_service_allowance)))

    @classmethod
    def provisional(cls, on_evict: Callable[[Claim], None],
                    assume_service_allowance: bool | None = None) -> FreeAllowances:
        return cls(
            FreeAllowance(CBP_SERVICE_FREE_TIER, "provisional", on_evict),
            FreeAllowance(_regime_c_allowance(assume_service_allowance), "provisional", on_evict),
        )


def _regime_c_allowance(assume_service_allowance: bool | None) -> int:
    assumed = REGIME_C_SERVICE_ALLOWANCE_ASSUMED if assume_service_allowance is None else assume_service_allowance
    return REGIME_C_SERVICE_FREE_TIER if assumed else 0


# What a provisional charge becomes once its claim is granted: (charged, free).
FREE_TIER_PATCHES: dict[str, tuple[Pricing, Pricing]] = {
    "waba": (pricing(True, CBP, "regular", "service"), pricing(False, CBP, "free_tier", "service")),
    "number": (pricing(True, PMP, "regular", "service"), pricing(False, PMP, "free_tier", "service")),
}

_FEP_CBP = pricing(False, CBP, "free_entry_point", "referral_conversion")
_SERVICE_PREFERENCE = "service"


class MetaThread:
    """Meta's pricing state of one thread (phone number, user). DOMAIN R3.

    Feed every inbound message with :meth:`inbound` and every *delivered*
    outbound message with :meth:`outbound`, in delivery order. After each
    outbound message, :attr:`opened` says whether it is a billing unit of Meta's
    pricing_analytics (R26): every message under PMP; under CBP only the message
    that opened a conversation (its category's, a service one, or the free entry
    point conversation), not the ones a conversation already open absorbed.
    """

    __slots__ = (
        "number", "recipient_country", "allowances", "last_inbound",
        "pending_arrival", "fep_until", "cbp_open", "last_claim", "opened",
    )

    def __init__(self, number: MetaNumber, recipient_country: str, allowances: FreeAllowances) -> None:
        self.number = number
        self.recipient_country = recipient_country
        self.allowances = allowances
        self.last_inbound: int | None = None
        self.pending_arrival: int | None = None   # an ad/CTA arrival not yet answered
        self.fep_until: int | None = None         # end of the free entry point window
        # CBP conversations: category -> (opened_at, pricing, free-tier claim or None);
        # opened in regime A only.
        self.cbp_open: dict[str, tuple[int, Pricing, Claim | None]] = {}
        # The free-allowance claim the last priced message belongs to (R16, R21), if any.
        self.last_claim: Claim | None = None
        # Did the last priced message open a billing unit (see the class docstring)?
        self.opened = False

    def inbound(self, t: int, referral: bool = False) -> None:
        """A user message or call at t (DOMAIN R4); referral = arrived via ad / page CTA (R15)."""
        self.last_inbound = t
        if referral:
            self.pending_arrival = t

    def window_open(self, t: int) -> bool:
        return window_open(self.last_inbound, t)

    def outbound(self, t: int, template_category: str | None, tiebreak: int) -> Pricing:
        """The pricing object of an outbound message delivered at t.

        template_category is None for a non-template (free-form) message; tiebreak
        orders units delivered in the same second (the message id as an integer).
        """
        self.last_claim = None
        day = self.number.clock.local_day(t)
        regime = regime_of_local_day(day)
        category = self._category(template_category)
        fep_opened = self._answer_arrival(t, regime)
        fep = self.fep_until is not None and t < self.fep_until
        if regime == REGIME_A:
            self.opened = fep_opened
            return self._cbp(t, day, category, fep, tiebreak)
        self.opened = True
        if fep:
            # DOMAIN R19, R21: everything inside an FEP window is free.
            return pricing(False, PMP, "free_entry_point", category or "service")
        if regime == REGIME_B:
            return self._pmp(t, category)
        return self._regime_c(t, day, category, tiebreak)

    # --- shared ----------------------------------------------------------------------
    def _category(self, template_category: str | None) -> str | None:
        number = self.number
        if (
            template_category == "authentication"
            and number.auth_international_eligible
            and self.recipient_country in AUTH_INTERNATIONAL_COUNTRIES
            and self.recipient_country != number.business_country
        ):
            return "authentication-international"  # DOMAIN R25
        return template_category

    def _answer_arrival(self, t: int, regime: str) -> bool:
        """DOMAIN R15/R19: the first delivered business message after an ad/CTA arrival
        answers it; within 24 h it opens a 72 h free entry point window (unless one is
        already open: then the arrival is simply answered). True when it opened one."""
        arrival = self.pending_arrival
        if arrival is None:
            return False
        self.pending_arrival = None
        if t - arrival >= FEP_REPLY_SECONDS:
            return False
        if self.fep_until is not None and t < self.fep_until:
            return False
        self.fep_until = t + FEP_SECONDS
        if regime == REGIME_A:
            self.cbp_open.clear()  # R15: the FEP conversation closes all others
        return True

    # --- regime A: conversations -------------------------------------------------------
    def _cbp(self, t: int, day: int, category: str | None, fep: bool, tiebreak: int) -> Pricing:
        if fep:
            return _FEP_CBP  # R15: no other conversation opens while it lasts (opened: see outbound)
        still_open = {
            name: opened for name, opened in self.cbp_open.items()
            if t < opened[0] + CBP_CONVERSATION_SECONDS  # R13: 24 h, never extended
        }
        self.cbp_open = still_open
        if category is not None:
            found = still_open.get(category)
            if found is not None:
                return found[1]
            opened = pricing(True, CBP, "regular", category)  # R13, R17
            still_open[category] = (t, opened, None)
            self.opened = True
            return opened
        if still_open:
            # R14: absorbed. With several open, a service conversation takes it, else
            # the earliest opened (a decision of this model; DOMAIN does not say).
            found = still_open.get(_SERVICE_PREFERENCE) or min(still_open.values(), key=lambda item: item[0])
            self.last_claim = found[2]
            return found[1]
        opened, claim = self._cbp_service(t, day, tiebreak)
        still_open["service"] = (t, opened, claim)
        self.last_claim = claim
        self.opened = True
        return opened

    def _cbp_service(self, t: int, day: int, tiebreak: int) -> tuple[Pricing, Claim | None]:
        """R16: the price of a new service conversation (and its free-tier claim)."""
        if day >= _ALL_FREE_FIRST:
            return pricing(False, CBP, "free_customer_service", "service"), None
        if day >= _TIER_FIRST:
            key = ("waba", self.number.waba_id, month_of_day(day))
            if self.allowances.cbp_service.claim(key, t, tiebreak):
                return pricing(False, CBP, "free_tier", "service"), None
            return pricing(True, CBP, "regular", "service"), (key, t, tiebreak)
        return pricing(True, CBP, "regular", "service"), None

    # --- regime B: per message ---------------------------------------------------------
    def _pmp(self, t: int, category: str | None) -> Pricing:
        if category is None:
            return pricing(False, PMP, "free_customer_service", "service")  # R19
        if category == "utility":
            if self.window_open(t):
                return pricing(False, PMP, "free_customer_service", "utility")  # R19
            carried = self.cbp_open.get("utility")
            if carried is not None and t < carried[0] + CBP_CONVERSATION_SECONDS:
                return pricing(False, PMP, "free_customer_service", "utility")  # R20
        return pricing(True, PMP, "regular", category)  # R18

    # --- regime C ----------------------------------------------------------------------
    def _regime_c(self, t: int, day: int, category: str | None, tiebreak: int) -> Pricing:
        if category is None:
            allowance = self.allowances.regime_c_service
            if allowance.allowance == 0:
                return pricing(True, PMP, "regular", "service")  # R21 without the unconfirmed allowance
            key = ("number", self.number.phone_number_id, month_of_day(day))
            if allowance.claim(key, t, tiebreak):
                return pricing(False, PMP, "free_tier", "service")  # R21
            self.last_claim = (key, t, tiebreak)
            return pricing(True, PMP, "regular", "service")
        return pricing(True, PMP, "regular", category)  # R21: utility in a CSW is charged too


__all__ = [
    "AUTH_INTERNATIONAL_COUNTRIES", "CBP_LAST_DAY", "PMP_FIRST_DAY", "REGIME_C_FIRST_DAY",
    "CSW_SECONDS", "CBP_CONVERSATION_SECONDS", "FEP_SECONDS", "FEP_REPLY_SECONDS",
    "CBP_SERVICE_FREE_TIER_FIRST_DAY", "CBP_SERVICE_ALL_FREE_FIRST_DAY", "CBP_SERVICE_FREE_TIER",
    "REGIME_C_SERVICE_FREE_TIER", "REGIME_C_SERVICE_ALLOWANCE_ASSUMED", "Claim", "FREE_TIER_PATCHES", "FreeAllowance", "FreeAllowances", "MetaNumber", "MetaThread",
    "Pricing", "pricing", "regime_of_local_day", "window_open",
]
