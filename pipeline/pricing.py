"""Meta's pricing rules as effective-dated data, and their registration for a build.

Three files in ``data/`` (columns in ``data/README.md``), plus the rate card
(:mod:`pipeline.rates`):

* ``pricing_rules.csv``: one row per period x category: the regime (A, B, C) and
  pricing model (CBP, PMP) in force, and how a unit of that category is priced
  inside a free entry point window, inside an open customer service window and
  outside it (DOMAIN R13-R21, R27), the rate category it is charged at, its monthly
  free allowance (R16, R21) and whether Meta states it (``free_allowance_status``
  ``confirmed`` / ``unconfirmed``), for a PMP period how a template is priced inside a
  conversation of its category opened under CBP before the switch (R20), and whether
  a charged unit counts in its rate category's volume tiers (``volume_tiers``
  ``tiered``, R24) or is always priced at the first tier's rate and counted nowhere
  (``untiered``: regime C service, R21). A future Meta change is a new period here, not code.
* ``pricing_policy.csv``: the durations and tolerances, in the same shape as
  ``data/policy.csv`` (read by :func:`pipeline.policy.load`).
* ``auth_international.csv``: the countries with an authentication-international
  rate, from which date (R25).

:func:`register` validates everything (one-line errors naming file and line) and
loads ``ref_pricing_rules``, ``ref_pricing_policy``, ``ref_auth_international`` and
``ref_rate_card`` into the build's DuckDB connection, plus the variables the billing
SQL reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa

from pipeline import markets, policy, rates, refdata
from pipeline.config import Settings
from pipeline.errors import BuildError, ConvoError
from pipeline.paths import data_dir

RULES_FILE = "pricing_rules.csv"
POLICY_FILE = "pricing_policy.csv"
AUTH_INTERNATIONAL_FILE = "auth_international.csv"

RULE_COLUMNS = (
    "regime", "pricing_model", "effective_from", "effective_to", "category",
    "in_entry_point_window", "in_service_window", "outside_service_window",
    "rate_category", "free_allowance", "free_allowance_per", "free_allowance_status", "in_open_cbp_conversation",
    "volume_tiers", "domain_rule", "note",
)
AUTH_COLUMNS = ("country_code", "effective_from", "effective_to", "domain_rule", "note")
PRICING_MODELS = ("CBP", "PMP")
PRICING_TYPES = ("regular", "free_customer_service", "free_entry_point", "free_tier")
# The CBP free entry point conversation's category as Meta reports it (DOMAIN R27).
ENTRY_POINT_CATEGORY = "referral_conversion"
RULE_CATEGORIES = rates.CATEGORIES + (ENTRY_POINT_CATEGORY,)
ALLOWANCE_SCOPES = ("waba_month", "phone_number_month")
ALLOWANCE_STATUSES = ("confirmed", "unconfirmed")
VOLUME_TIERS = ("tiered", "untiered")
# pricing_policy.csv: does an unconfirmed free allowance price the months of its rule
# (1) or not (0), unless [billing] assume_service_allowance says (DOMAIN R21).
ASSUME_UNCONFIRMED_KEY = "assume_unconfirmed_allowance"
# Keys of pricing_policy.csv the billing SQL reads.
POLICY_KEYS = (
    "cbp_conversation_hours", "entry_point_reply_within_hours", "entry_point_window_hours",
    "re_engagement_reply_within_hours", "analytics_tolerance_units", "analytics_tolerance_ratio",
)

_REGIME = re.compile(r"[A-Za-z0-9_]+")
_WHOLE = re.compile(r"\d+")

RULES_SCHEMA = pa.schema([
    ("regime", pa.string()),
    ("pricing_model", pa.string()),
    ("effective_from", pa.date32()),
    ("effective_to", pa.date32()),
    ("category", pa.string()),
    ("in_entry_point_window", pa.string()),
    ("in_service_window", pa.string()),
    ("outside_service_window", pa.string()),
    ("rate_category", pa.string()),
    ("free_allowance", pa.int64()),
    ("free_allowance_per", pa.string()),
    ("free_allowance_status", pa.string()),
    ("is_free_allowance_applied", pa.bool_()),
    ("in_open_cbp_conversation", pa.string()),
    ("volume_tiers", pa.string()),
    ("domain_rule", pa.string()),
    ("note", pa.string()),
])
AUTH_SCHEMA = pa.schema([
    ("country_code", pa.string()),
    ("effective_from", pa.date32()),
    ("effective_to", pa.date32()),
])


class PricingDataError(ConvoError, ValueError):
    """A pricing data file that cannot be used; the message names file and line."""


@dataclass(frozen=True)
class Rule(refdata.Dated):
    regime: str
    pricing_model: str
    effective_from: date
    effective_to: date | None
    category: str
    in_entry_point_window: str
    in_service_window: str
    outside_service_window: str
    rate_category: str | None
    free_allowance: int | None
    free_allowance_per: str | None
    free_allowance_status: str | None
    in_open_cbp_conversation: str | None
    volume_tiers: str | None
    domain_rule: str
    note: str
    line: int

    @property
    def is_chargeable(self) -> bool:
        return "regular" in (self.in_entry_point_window, self.in_service_window, self.outside_service_window,
                             self.in_open_cbp_conversation)


@dataclass(frozen=True)
class AuthInternational(refdata.Dated):
    country_code: str
    effective_from: date
    effective_to: date | None
    line: int


def rules_path() -> Path:
    return data_dir() / RULES_FILE


def policy_path() -> Path:
    return data_dir() / POLICY_FILE


def auth_international_path() -> Path:
    return data_dir() / AUTH_INTERNATIONAL_FILE


# --------------------------------------------------------------------------
# pricing_rules.csv
# --------------------------------------------------------------------------

def load_rules(path: Path | None = None) -> tuple[Rule, ...]:
    """Read and validate a pricing rules file (default: the shipped one)."""
    source = path or rules_path()
    _header, records = refdata.read_csv(source, RULE_COLUMNS, PricingDataError)
    rules = tuple(_rule(source, line, fields) for line, fields in records)
    if not rules:
        raise PricingDataError(f"{source}:1: no rules")
    _check_rule_periods(source, rules)
    return rules


def _rule(source: Path, line: int, fields: list[str]) -> Rule:
    where = f"{source}:{line}"
    (regime, model, start, end, category, in_entry_point, in_window, outside, rate_category,
     allowance, allowance_per, allowance_status, in_cbp_conversation, volume_tiers, domain_rule, note) = fields
    if not _REGIME.fullmatch(regime):
        raise PricingDataError(f"{where}: regime: must be a short label like A, got {regime!r}")
    if model not in PRICING_MODELS:
        raise PricingDataError(f"{where}: pricing_model: must be CBP or PMP, got {model!r}")
    effective_from, effective_to = refdata.period(where, start, end, PricingDataError)
    if category not in RULE_CATEGORIES:
        raise PricingDataError(f"{where}: category: unknown category {category!r} (one of {', '.join(RULE_CATEGORIES)})")
    for column, value in (("in_entry_point_window", in_entry_point), ("in_service_window", in_window),
                          ("outside_service_window", outside)):
        if value not in PRICING_TYPES or value == "free_tier":
            raise PricingDataError(f"{where}: {column}: must be regular, free_customer_service or "
                                   f"free_entry_point (free_tier comes from free_allowance), got {value!r}")
    chargeable = "regular" in (in_entry_point, in_window, outside)
    if rate_category and rate_category not in rates.CATEGORIES:
        raise PricingDataError(f"{where}: rate_category: must be a rate card category "
                               f"({', '.join(rates.CATEGORIES)}), got {rate_category!r}")
    if chargeable and not rate_category:
        raise PricingDataError(f"{where}: rate_category: required when a unit can be charged (regular)")
    if allowance and not _WHOLE.fullmatch(allowance):
        raise PricingDataError(f"{where}: free_allowance: must be a whole number of units, got {allowance!r}")
    if allowance and allowance_per not in ALLOWANCE_SCOPES:
        raise PricingDataError(f"{where}: free_allowance_per: must be {' or '.join(ALLOWANCE_SCOPES)}, "
                               f"got {allowance_per!r}")
    if allowance_per and not allowance:
        raise PricingDataError(f"{where}: free_allowance_per: given without a free_allowance")
    if allowance and allowance_status not in ALLOWANCE_STATUSES:
        raise PricingDataError(f"{where}: free_allowance_status: must be confirmed or unconfirmed (does Meta state "
                               f"the allowance?), got {allowance_status!r}")
    if allowance_status and not allowance:
        raise PricingDataError(f"{where}: free_allowance_status: given without a free_allowance")
    if in_cbp_conversation and (in_cbp_conversation not in PRICING_TYPES or in_cbp_conversation == "free_tier"):
        raise PricingDataError(f"{where}: in_open_cbp_conversation: must be empty, regular, free_customer_service "
                               f"or free_entry_point, got {in_cbp_conversation!r}")
    if in_cbp_conversation and model != "PMP":
        raise PricingDataError(f"{where}: in_open_cbp_conversation: only a PMP period follows a CBP one")
    if in_cbp_conversation == "regular" and not rate_category:
        raise PricingDataError(f"{where}: rate_category: required when a unit can be charged (regular)")
    can_charge = chargeable or in_cbp_conversation == "regular"
    if can_charge and volume_tiers not in VOLUME_TIERS:
        raise PricingDataError(f"{where}: volume_tiers: must be tiered or untiered when a unit can be charged "
                               f"(regular), got {volume_tiers!r}")
    if volume_tiers and not can_charge:
        raise PricingDataError(f"{where}: volume_tiers: given for a rule that charges nothing")
    return Rule(regime=regime, pricing_model=model, effective_from=effective_from, effective_to=effective_to,
                category=category, in_entry_point_window=in_entry_point, in_service_window=in_window,
                outside_service_window=outside, rate_category=rate_category or None,
                free_allowance=int(allowance) if allowance else None, free_allowance_per=allowance_per or None,
                free_allowance_status=allowance_status or None, in_open_cbp_conversation=in_cbp_conversation or None,
                volume_tiers=volume_tiers or None, domain_rule=domain_rule, note=note, line=line)


def _check_rule_periods(source: Path, rules: tuple[Rule, ...]) -> None:
    """From the first date on, every day has exactly one rule per category, one
    regime and one pricing model, and a regime keeps its pricing model."""
    models: dict[str, Rule] = {}
    for rule in rules:
        first = models.setdefault(rule.regime, rule)
        if first.pricing_model != rule.pricing_model:
            raise PricingDataError(f"{source}:{rule.line}: regime {rule.regime} is {first.pricing_model} "
                                   f"on line {first.line}, not {rule.pricing_model}")
    boundaries = sorted({rule.effective_from for rule in rules}
                        | {rule.effective_to for rule in rules if rule.effective_to is not None})
    for day in boundaries:
        in_force = [rule for rule in rules if rule.in_force(day)]
        if not in_force:
            line = min(rule.line for rule in rules if rule.effective_to == day)
            raise PricingDataError(f"{source}:{line}: gap in dates: no rule in force on {day}")
        for category in RULE_CATEGORIES:
            matching = [rule for rule in in_force if rule.category == category]
            if len(matching) > 1:
                raise PricingDataError(f"{source}:{max(rule.line for rule in matching)}: {category}: its period "
                                       f"overlaps the row on line {min(rule.line for rule in matching)} on {day}")
        regimes = {(rule.regime, rule.pricing_model) for rule in in_force}
        if len(regimes) > 1:
            counts = {regime: sum(1 for rule in in_force if rule.regime == regime) for regime, _ in regimes}
            usual = max(sorted(counts), key=lambda regime: counts[regime])
            line = min(rule.line for rule in in_force if rule.regime != usual)
            raise PricingDataError(f"{source}:{line}: two regimes in force on {day}: "
                                   f"{', '.join(sorted(counts))}")
        model = in_force[0].pricing_model
        needed = RULE_CATEGORIES if model == "CBP" else rates.CATEGORIES
        for category in needed:
            matching = [rule for rule in in_force if rule.category == category]
            if not matching:
                line = min(rule.line for rule in in_force)
                raise PricingDataError(f"{source}:{line}: missing category: no {category} rule in force on {day}")


def regime_in_force(rules: tuple[Rule, ...], day: date) -> tuple[str, str] | None:
    """(regime, pricing model) on a local date, or None before the first rule."""
    for rule in rules:
        if rule.in_force(day):
            return rule.regime, rule.pricing_model
    return None


# --------------------------------------------------------------------------
# pricing_policy.csv and auth_international.csv
# --------------------------------------------------------------------------

def load_policy(path: Path | None = None, since: date | None = None) -> tuple[policy.PolicyRow, ...]:
    """Read the billing durations and tolerances; every key of POLICY_KEYS must be
    in force without a gap from ``since`` (the first pricing rule) on."""
    source = path or policy_path()
    try:
        rows = policy.load(source)
    except policy.PolicyError as exc:
        raise PricingDataError(str(exc)) from None
    for key in POLICY_KEYS:
        periods = sorted((row for row in rows if row.key == key), key=lambda row: row.effective_from)
        if not periods:
            raise PricingDataError(f"{source}: {key}: missing (the billing SQL reads it)")
        if since is not None and periods[0].effective_from > since:
            raise PricingDataError(f"{source}:{periods[0].line}: {key}: no row in force on {since}")
        for earlier, later in zip(periods, periods[1:]):
            if earlier.effective_to != later.effective_from:
                raise PricingDataError(f"{source}:{later.line}: {key}: gap in dates before {later.effective_from}")
        if periods[-1].effective_to is not None:
            raise PricingDataError(f"{source}:{periods[-1].line}: {key}: the last period must be open-ended")
    for row in rows:
        if row.key.endswith("_hours") and not isinstance(row.value, int):
            raise PricingDataError(f"{source}:{row.line}: {row.key}: must be a whole number of hours, got {row.value}")
    for day in sorted({row.effective_from for row in rows}):
        values = policy.in_force(rows, day)
        conversation, window = values.get("cbp_conversation_hours"), values.get("entry_point_window_hours")
        if conversation is not None and window is not None and conversation > window:
            line = max(row.line for row in rows if row.in_force(day) and row.key in
                       ("cbp_conversation_hours", "entry_point_window_hours"))
            raise PricingDataError(f"{source}:{line}: cbp_conversation_hours ({conversation}) must not exceed "
                                   f"entry_point_window_hours ({window}) on {day}: billing assumes a conversation "
                                   "never outlives the entry point window that closed it")
    return rows


def load_auth_international(path: Path | None = None) -> tuple[AuthInternational, ...]:
    source = path or auth_international_path()
    regions = markets.known_regions()
    result = []
    _header, records = refdata.read_csv(source, AUTH_COLUMNS, PricingDataError)
    for line, fields in records:
        where = f"{source}:{line}"
        country, start, end, _rule_text, _note = fields
        if country not in regions:
            raise PricingDataError(f"{where}: country_code: unknown country code {country!r}")
        effective_from, effective_to = refdata.period(where, start, end, PricingDataError)
        result.append(AuthInternational(country, effective_from, effective_to, line))
    refdata.check_overlaps(source, result, lambda row: row.country_code, PricingDataError)
    return tuple(result)


# --------------------------------------------------------------------------
# The rate card against the rules
# --------------------------------------------------------------------------

def requirement(rules: tuple[Rule, ...], auth: tuple[AuthInternational, ...], market_map: pa.Table,
                auth_international_eligible: bool) -> rates.Requirement:
    """Per market, the rate categories that can be charged on some day of a period."""
    def required(start: date, end: date | None) -> dict[str, set[str]]:
        needed: dict[str, set[str]] = {}
        for rule in rules:
            if not (rule.is_chargeable and rule.rate_category and rule.overlaps(start, end)):
                continue
            if rule.rate_category == "authentication-international":
                if not auth_international_eligible:
                    continue
                names = {markets.market_for(row.country_code, max(start, row.effective_from), market_map)
                         for row in auth if row.overlaps(start, end)}
            else:
                names = set(markets.MARKETS)
            for name in names:
                needed.setdefault(name, set()).add(rule.rate_category)
        return needed
    return required


def market_since(market_map: pa.Table) -> dict[str, date]:
    first: dict[str, date] = {}
    for market, day in zip(market_map["market"].to_pylist(), market_map["effective_from"].to_pylist()):
        if market not in first or day < first[market]:
            first[market] = day
    return first


def load_rate_card(settings: Settings, rules: tuple[Rule, ...] | None = None,
                   auth: tuple[AuthInternational, ...] | None = None) -> rates.RateCard:
    """The configured rate card, validated row by row and against the rules."""
    rules = rules if rules is not None else load_rules()
    auth = auth if auth is not None else load_auth_international()
    card = rates.load_cards(settings.billing.card_paths)
    market_map = markets.load_market_map()
    rates.check_coverage(card, requirement(rules, auth, market_map, settings.billing.auth_international_eligible),
                         market_since(market_map))
    return card


# --------------------------------------------------------------------------
# DuckDB
# --------------------------------------------------------------------------

def register(con: duckdb.DuckDBPyConnection, settings: Settings, as_of: datetime | None) -> None:
    """Load the pricing reference tables and variables into a build's connection.

    Tables: ``ref_pricing_rules``, ``ref_pricing_policy``, ``ref_auth_international``,
    ``ref_rate_card``. Variables: every key of pricing_policy.csv in force on
    as_of's UTC date, ``billing_business_country`` ('' when not set),
    ``billing_auth_international_eligible``, ``billing_default_currency`` (the
    card's currency for numbers not in convo.toml). A problem is a one-line
    BuildError naming file and line.
    """
    try:
        rules = load_rules()
        policy_rows = load_policy(since=min(rule.effective_from for rule in rules))
        auth = load_auth_international()
        card = load_rate_card(settings, rules, auth)
    except (PricingDataError, rates.RateCardError, markets.MarketMapError) as exc:
        raise BuildError(str(exc)) from None
    try:
        applied = allowances_applied(rules, policy_rows, getattr(settings.billing, "assume_service_allowance", None))
    except PricingDataError as exc:
        raise BuildError(str(exc)) from None
    refdata.replace_table(con, "ref_pricing_rules", _rules_table(rules, applied))
    refdata.replace_table(con, "ref_pricing_policy", policy.table(policy_rows))
    refdata.replace_table(con, "ref_auth_international", pa.table({
        "country_code": [row.country_code for row in auth],
        "effective_from": [row.effective_from for row in auth],
        "effective_to": [row.effective_to for row in auth],
    }, schema=AUTH_SCHEMA))
    refdata.replace_table(con, "ref_rate_card", card.table())
    day = (as_of or datetime.now(timezone.utc)).astimezone(timezone.utc).date()
    for key, value in sorted(policy.in_force(policy_rows, day).items()):
        kind = "bigint" if isinstance(value, int) else "double"
        con.execute(f"set variable {key} = ?::{kind}", [value])
    con.execute("set variable billing_business_country = ?::varchar", [settings.billing.business_country or ""])
    con.execute("set variable billing_auth_international_eligible = ?::boolean",
                [settings.billing.auth_international_eligible])
    con.execute("set variable billing_default_currency = ?::varchar", [card.currencies()[0]])


def allowances_applied(rules: tuple[Rule, ...], policy_rows: tuple[policy.PolicyRow, ...],
                       assume: bool | None) -> tuple[bool, ...]:
    """Per rule, does its free allowance price its units (DOMAIN R16, R21)?

    A confirmed allowance always does; an unconfirmed one when ``assume`` says so
    (``[billing] assume_service_allowance``), else when ``assume_unconfirmed_allowance``
    of pricing_policy.csv, in force on the rule's first day, is 1.
    """
    result = []
    for rule in rules:
        if rule.free_allowance is None:
            result.append(False)
        elif rule.free_allowance_status != "unconfirmed":
            result.append(True)
        elif assume is not None:
            result.append(bool(assume))
        else:
            default = policy.in_force(policy_rows, rule.effective_from).get(ASSUME_UNCONFIRMED_KEY)
            if default not in (0, 1):
                raise PricingDataError(f"{policy_path()}: {ASSUME_UNCONFIRMED_KEY}: must be 0 or 1 and in force on "
                                       f"{rule.effective_from} (the unconfirmed allowance of {rules_path()}:"
                                       f"{rule.line}), got {default!r}")
            result.append(default == 1)
    return tuple(result)


def _rules_table(rules: tuple[Rule, ...], applied: tuple[bool, ...] | None = None) -> pa.Table:
    applied = applied if applied is not None else tuple(r.free_allowance is not None for r in rules)
    return pa.table({
        "regime": [r.regime for r in rules],
        "pricing_model": [r.pricing_model for r in rules],
        "effective_from": [r.effective_from for r in rules],
        "effective_to": [r.effective_to for r in rules],
        "category": [r.category for r in rules],
        "in_entry_point_window": [r.in_entry_point_window for r in rules],
        "in_service_window": [r.in_service_window for r in rules],
        "outside_service_window": [r.outside_service_window for r in rules],
        "rate_category": [r.rate_category for r in rules],
        "free_allowance": [r.free_allowance for r in rules],
        "free_allowance_per": [r.free_allowance_per for r in rules],
        "free_allowance_status": [r.free_allowance_status for r in rules],
        "is_free_allowance_applied": list(applied),
        "in_open_cbp_conversation": [r.in_open_cbp_conversation for r in rules],
        "volume_tiers": [r.volume_tiers for r in rules],
        "domain_rule": [r.domain_rule or None for r in rules],
        "note": [r.note or None for r in rules],
    }, schema=RULES_SCHEMA)

