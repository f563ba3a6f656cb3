"""The simulator's model of Meta's pricing, against DOMAIN's worked examples.

Expected values are written by hand from DOMAIN.md's table and rules; they are
not computed by the code under test.
"""

from __future__ import annotations

from datetime import date

import pytest

from pipeline.simulate.clock import DAY, HOUR, LocalClock, epoch_day
from pipeline.simulate.meta import (
    FreeAllowance,
    FreeAllowances,
    MetaNumber,
    MetaThread,
    Pricing,
    regime_of_local_day,
    window_open,
)

SAO_PAULO = LocalClock("America/Sao_Paulo")
KOLKATA = LocalClock("Asia/Kolkata")
MADRID = LocalClock("Europe/Madrid")

CBP_DAY = date(2025, 3, 10)   # regime A, after R16's "all service free" date
PMP_DAY = date(2025, 9, 10)   # regime B
C_DAY = date(2026, 10, 5)     # regime C

M = "marketing"
U = "utility"
A = "authentication"
TEXT = None                   # a free-form (non-template) message

# Meta's pricing objects, spelled out.
CBP_M = Pricing(True, "CBP", "regular", "marketing")
CBP_U = Pricing(True, "CBP", "regular", "utility")
CBP_SERVICE_FREE = Pricing(False, "CBP", "free_customer_service", "service")
CBP_FEP = Pricing(False, "CBP", "free_entry_point", "referral_conversion")
PMP_M = Pricing(True, "PMP", "regular", "marketing")
PMP_U = Pricing(True, "PMP", "regular", "utility")
PMP_U_FREE = Pricing(False, "PMP", "free_customer_service", "utility")
PMP_SERVICE = Pricing(False, "PMP", "free_customer_service", "service")
C_SERVICE_CHARGED = Pricing(True, "PMP", "regular", "service")
C_SERVICE_FREE_TIER = Pricing(False, "PMP", "free_tier", "service")


class Timeline:
    """A thread on one number; hours are local wall-clock hours from midnight of a day."""

    def __init__(self, day: date, clock: LocalClock = SAO_PAULO, allowances: FreeAllowances | None = None,
                 **number: object) -> None:
        self.clock = clock
        self.day = epoch_day(day)
        meta_number = MetaNumber(555, "waba-1", clock, **number)  # type: ignore[arg-type]
        self.thread = MetaThread(meta_number, "BR", allowances or FreeAllowances.counting())
        self.tiebreak = 0

    def at(self, hours: float) -> int:
        return self.clock.local_to_utc(self.day, 0) + int(hours * HOUR)

    def user(self, hours: float, referral: bool = False) -> None:
        self.thread.inbound(self.at(hours), referral)

    def send(self, hours: float, category: str | None) -> Pricing:
        return self.send_at(self.at(hours), category)

    def send_at(self, t: int, category: str | None) -> Pricing:
        self.tiebreak += 1
        return self.thread.outbound(t, category, self.tiebreak)


# --- DOMAIN E1..E6, CBP then PMP ---------------------------------------------------


def test_e1_cbp_two_conversations() -> None:
    # DOMAIN E1: marketing h0, utility h4, utility h10, no user message -> 2 conv: M, U.
    line = Timeline(CBP_DAY)
    assert line.send(0, M) == CBP_M
    assert line.send(4, U) == CBP_U
    assert line.send(10, U) == CBP_U     # absorbed in the utility conversation of h4 (R13)
    assert set(line.thread.cbp_open) == {"marketing", "utility"}


def test_e1_pmp_three_charges() -> None:
    # DOMAIN E1: 3 charges M, U, U.
    line = Timeline(PMP_DAY)
    assert [line.send(0, M), line.send(4, U), line.send(10, U)] == [PMP_M, PMP_U, PMP_U]


def test_e2_cbp_marketing_then_service() -> None:
    # DOMAIN E2: M h0; user h4; list h5; text h25; text h26 -> marketing + service (opened h25).
    line = Timeline(CBP_DAY)
    assert line.send(0, M) == CBP_M
    line.user(4)
    assert line.send(5, TEXT) == CBP_M              # R14: absorbed by the open marketing conv
    assert line.send(25, TEXT) == CBP_SERVICE_FREE  # M expired at h24: service opens (free, R16)
    assert line.send(26, TEXT) == CBP_SERVICE_FREE  # absorbed
    assert line.thread.cbp_open["service"][0] == line.at(25)


def test_e2_pmp_one_charge() -> None:
    # DOMAIN E2: 1 charge: M.
    line = Timeline(PMP_DAY)
    assert line.send(0, M) == PMP_M
    line.user(4)
    assert [line.send(5, TEXT), line.send(25, TEXT), line.send(26, TEXT)] == [PMP_SERVICE] * 3


def test_e3_cbp() -> None:
    # DOMAIN E3: M h0; user h2; text h3; U h4; U h30 -> M(h0) + U(h4) + U(h30).
    line = Timeline(CBP_DAY)
    assert line.send(0, M) == CBP_M
    line.user(2)
    assert line.send(3, TEXT) == CBP_M
    assert line.send(4, U) == CBP_U
    assert line.thread.cbp_open["utility"][0] == line.at(4)
    assert line.send(30, U) == CBP_U
    assert line.thread.cbp_open["utility"][0] == line.at(30)  # a new utility conversation


def test_e3_pmp() -> None:
    # DOMAIN E3: M, U(h30) charged; U(h4) free in the CSW.
    line = Timeline(PMP_DAY)
    assert line.send(0, M) == PMP_M
    line.user(2)
    assert line.send(3, TEXT) == PMP_SERVICE
    assert line.send(4, U) == PMP_U_FREE
    assert line.send(30, U) == PMP_U


def test_e4_cbp_free_entry_point() -> None:
    # DOMAIN E4: user via ad 10:00; template 22:00 -> 1 free FEP conv 22:00 - +72 h.
    line = Timeline(CBP_DAY)
    line.user(10, referral=True)
    assert line.send(22, M) == CBP_FEP
    assert line.send(30, TEXT) == CBP_FEP
    assert line.send(22 + 71.9, U) == CBP_FEP   # no new conversation opens inside it
    assert line.send(22 + 72, U) == CBP_U       # expired: a utility conversation opens
    assert line.send(22 + 73, M) == CBP_M


def test_e4_pmp_free_entry_point() -> None:
    # DOMAIN E4: everything free until +72 h; free-form only until 10:00 next day.
    line = Timeline(PMP_DAY)
    line.user(10, referral=True)
    assert line.send(22, M) == Pricing(False, "PMP", "free_entry_point", "marketing")
    assert line.send(33.9, TEXT) == Pricing(False, "PMP", "free_entry_point", "service")
    assert line.thread.window_open(line.at(33.9))
    assert not line.thread.window_open(line.at(34))   # 10:00 next day: free-form would fail
    assert line.send(22 + 71.9, M) == Pricing(False, "PMP", "free_entry_point", "marketing")
    assert line.send(22 + 72, M) == PMP_M


def test_e4_no_entry_point_when_answered_after_24h() -> None:
    # DOMAIN R15: the business must answer within 24 h.
    line = Timeline(PMP_DAY)
    line.user(10, referral=True)
    assert line.send(34, M) == PMP_M


def test_e4_regime_c_entry_point_stays_free() -> None:
    # DOMAIN R21: FEP stays free.
    line = Timeline(C_DAY)
    line.user(10, referral=True)
    assert line.send(10.5, TEXT) == Pricing(False, "PMP", "free_entry_point", "service")
    assert line.send(11, U) == Pricing(False, "PMP", "free_entry_point", "utility")


def test_e5() -> None:
    # DOMAIN E5: 09:00 user; 09:30 marketing -> 1 marketing conv / 1 M charge.
    cbp = Timeline(CBP_DAY)
    cbp.user(9)
    assert cbp.send(9.5, M) == CBP_M
    assert set(cbp.thread.cbp_open) == {"marketing"}
    pmp = Timeline(PMP_DAY)
    pmp.user(9)
    assert pmp.send(9.5, M) == PMP_M


def test_e6() -> None:
    # DOMAIN E6: day1 00:00 user; 23:59 text; day2 00:01 text -> 1 service conv / 0 charges;
    # 00:01 fails (131047): never delivered, so never priced.
    cbp = Timeline(CBP_DAY)
    cbp.user(0)
    assert cbp.send(23 + 59 / 60, TEXT) == CBP_SERVICE_FREE
    assert not cbp.thread.window_open(cbp.at(24 + 1 / 60))
    pmp = Timeline(PMP_DAY)
    pmp.user(0)
    assert pmp.send(23 + 59 / 60, TEXT) == PMP_SERVICE
    assert not pmp.thread.window_open(pmp.at(24 + 1 / 60))


# --- the exact 24 h boundary -------------------------------------------------------


def test_window_is_half_open() -> None:
    # DOMAIN R6: open at t iff an inbound lies in (t - 24 h, t].
    assert window_open(1000, 1000)
    assert window_open(1000, 1000 + DAY - 1)
    assert not window_open(1000, 1000 + DAY)
    assert not window_open(None, 1000)


def test_utility_at_exactly_24h_is_outside_the_window() -> None:
    line = Timeline(PMP_DAY)
    line.user(1)
    assert line.send_at(line.at(1) + DAY - 1, U) == PMP_U_FREE
    assert line.send_at(line.at(1) + DAY, U) == PMP_U


def test_inbound_exactly_24h_later_continues_the_window() -> None:
    # DOMAIN R4: a gap of exactly 24 h continues the CSW (the new inbound is inside it).
    line = Timeline(PMP_DAY)
    line.user(1)
    line.user(25)
    assert line.send(48.9, U) == PMP_U_FREE


def test_cbp_conversation_lasts_exactly_24h() -> None:
    # DOMAIN R13: 24 h from opening, not extended.
    line = Timeline(CBP_DAY)
    assert line.send(0, M) == CBP_M
    assert line.send_at(line.at(0) + DAY - 1, M) == CBP_M
    line.send_at(line.at(0) + DAY, M)
    assert line.thread.cbp_open["marketing"][0] == line.at(0) + DAY


# --- regime switches at local midnight (DOMAIN R1, R27) -------------------------------


@pytest.mark.parametrize("clock", [SAO_PAULO, KOLKATA, MADRID], ids=lambda clock: clock.name)
def test_cbp_to_pmp_switch_at_local_midnight(clock: LocalClock) -> None:
    switch = clock.local_to_utc(epoch_day(date(2025, 7, 1)), 0)
    before = Timeline(date(2025, 6, 30), clock)
    assert before.send_at(switch - 1, M) == CBP_M
    after = Timeline(date(2025, 6, 30), clock)
    assert after.send_at(switch, M) == PMP_M


def test_same_instant_two_regimes_in_two_timezones() -> None:
    # 2025-07-01T02:30Z is 23:30 on June 30 in Sao Paulo (CBP) and 08:00 July 1 in Kolkata (PMP).
    instant = epoch_day(date(2025, 7, 1)) * DAY + 2 * HOUR + 30 * 60
    assert Timeline(CBP_DAY, SAO_PAULO).send_at(instant, M).pricing_model == "CBP"
    assert Timeline(CBP_DAY, KOLKATA).send_at(instant, M).pricing_model == "PMP"


def test_pmp_to_regime_c_switch_at_local_midnight_for_service() -> None:
    for clock in (SAO_PAULO, KOLKATA):
        switch = clock.local_to_utc(epoch_day(date(2026, 10, 1)), 0)
        line = Timeline(date(2026, 9, 30), clock)
        line.thread.inbound(switch - HOUR)
        assert line.send_at(switch - 1, TEXT) == PMP_SERVICE
        assert line.send_at(switch, TEXT) == C_SERVICE_FREE_TIER


def test_regimes_by_local_day() -> None:
    assert regime_of_local_day(epoch_day(date(2025, 6, 30))) == "A"
    assert regime_of_local_day(epoch_day(date(2025, 7, 1))) == "B"
    assert regime_of_local_day(epoch_day(date(2026, 9, 30))) == "B"
    assert regime_of_local_day(epoch_day(date(2026, 10, 1))) == "C"


# --- R20 carry-over ------------------------------------------------------------------


def test_r20_cbp_utility_conversation_carries_over_the_switch() -> None:
    line = Timeline(date(2025, 6, 30))
    assert line.send(20, U) == CBP_U                  # opens a CBP utility conversation
    assert line.send(20.5, M) == CBP_M                # and a marketing one
    assert line.send(24 + 10, U) == PMP_U_FREE        # July 1, no CSW: free inside it (R20)
    assert line.send(24 + 10.5, M) == PMP_M           # marketing is charged per message (R18)
    assert line.send(24 + 19.99, U) == PMP_U_FREE
    assert line.send(24 + 20, U) == PMP_U             # exactly 24 h: the conversation is over


# --- regime C ------------------------------------------------------------------------


def test_regime_c_service_charged_after_free_tier_and_utility_in_window_charged() -> None:
    # DOMAIN R21: 1,000 free per business phone number per month, then charged.
    allowances = FreeAllowances.counting()
    line = Timeline(C_DAY, allowances=allowances)
    line.user(0)
    results = [line.send_at(line.at(1) + second, TEXT) for second in range(1001)]
    assert results[:1000] == [C_SERVICE_FREE_TIER] * 1000
    assert results[1000] == C_SERVICE_CHARGED
    assert line.send(2, U) == PMP_U                   # utility inside a CSW is charged in C
    other_number = MetaThread(MetaNumber(556, "waba-1", SAO_PAULO), "BR", allowances)
    other_number.inbound(line.at(3))
    assert other_number.outbound(line.at(3) + 5, TEXT, 99999) == C_SERVICE_FREE_TIER  # per number


def test_regime_c_free_tier_is_per_local_month() -> None:
    allowances = FreeAllowances.counting()
    allowances.regime_c_service.allowance = 1
    line = Timeline(date(2026, 10, 31), allowances=allowances)
    line.user(23)
    assert line.send(23.5, TEXT) == C_SERVICE_FREE_TIER
    assert line.send(23.9, TEXT) == C_SERVICE_CHARGED
    assert line.send(24.1, TEXT) == C_SERVICE_FREE_TIER  # November 1st, local


def test_provisional_allowance_holds_the_earliest_by_time_then_tiebreak() -> None:
    evicted: list = []
    allowance = FreeAllowance(2, "provisional", evicted.append)
    for t, tiebreak in [(50, 1), (10, 9), (10, 3), (70, 2), (10, 5)]:
        assert not allowance.claim(("k",), t, tiebreak)   # charged until the end of the run
    assert allowance.granted() == {(("k",), 10, 3), (("k",), 10, 5)}
    assert evicted == [(("k",), 50, 1), (("k",), 10, 9)]
    assert allowance.held((("k",), 10, 3)) and not allowance.held((("k",), 70, 2))


def test_provisional_claims_name_the_unit_to_patch() -> None:
    # Regime C: each service message is its own claim; CBP (R16): the conversation's.
    evicted: list = []
    line = Timeline(C_DAY, allowances=FreeAllowances.provisional(evicted.append))
    line.user(1)
    assert line.send(2, TEXT) == C_SERVICE_CHARGED
    assert line.thread.last_claim == (("number", 555, (2026, 10)), line.at(2), 1)
    assert line.send(3, M) == PMP_M and line.thread.last_claim is None
    cbp = Timeline(date(2024, 5, 6), allowances=FreeAllowances.provisional(evicted.append))
    cbp.user(1)
    assert cbp.send(2, TEXT) == Pricing(True, "CBP", "regular", "service")
    opener = cbp.thread.last_claim
    assert opener == (("waba", "waba-1", (2024, 5)), cbp.at(2), 1)
    cbp.send(3, TEXT)
    assert cbp.thread.last_claim == opener
    assert evicted == []


def test_cbp_service_free_tier_before_november_2024() -> None:
    # DOMAIN R16: 2023-06-01 .. 2024-10-31 first 1,000 service conversations per WABA free.
    allowances = FreeAllowances.counting()
    allowances.cbp_service.allowance = 1
    first = Timeline(date(2024, 5, 6), allowances=allowances)
    first.user(1)
    assert first.send(2, TEXT) == Pricing(False, "CBP", "free_tier", "service")
    second = Timeline(date(2024, 5, 6), allowances=allowances)
    second.user(3)
    assert second.send(4, TEXT) == Pricing(True, "CBP", "regular", "service")
    before = Timeline(date(2023, 5, 6))
    before.user(1)
    assert before.send(2, TEXT) == Pricing(True, "CBP", "regular", "service")


def test_cbp_free_form_goes_to_the_open_service_conversation_first() -> None:
    line = Timeline(CBP_DAY)
    line.user(0)
    assert line.send(1, TEXT) == CBP_SERVICE_FREE
    assert line.send(2, M) == CBP_M                   # parallel marketing conversation
    assert line.send(3, TEXT) == CBP_SERVICE_FREE


def test_authentication_international() -> None:
    # DOMAIN R25: eligible business, recipient in a listed country other than its own.
    line = Timeline(PMP_DAY, business_country="BR", auth_international_eligible=True)
    line.thread.recipient_country = "IN"
    assert line.send(1, A) == Pricing(True, "PMP", "regular", "authentication-international")
    line.thread.recipient_country = "BR"
    assert line.send(2, A) == Pricing(True, "PMP", "regular", "authentication")
    not_eligible = Timeline(PMP_DAY)
    not_eligible.thread.recipient_country = "IN"
    assert not_eligible.send(1, A) == Pricing(True, "PMP", "regular", "authentication")
