"""`convo.toml`: load, validate, resolve paths (DESIGN.md "Configuration").

Unknown keys and bad values are a one-line ConfigError naming the key, raised
before any work starts. Relative paths resolve against the folder of the file.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipeline import paths
from pipeline.errors import ConvoError


class ConfigError(ConvoError, ValueError):
    """A problem with convo.toml that the user must fix."""


@dataclass(frozen=True)
class PhoneNumber:
    phone_number_id: int
    tenant_id: int
    waba_id: str
    timezone: str
    currency: str
    display_phone_number: str | None = None   # digits, as Meta's pricing_analytics names the number
    # Opening hours in the number's timezone: (ISO weekday 1-7, opens, closes) in seconds
    # after local midnight, closes up to 86400; None: not configured (business time unknown).
    business_hours: tuple[tuple[int, int, int], ...] | None = None
    holidays: tuple[date, ...] = ()           # local days closed all day


@dataclass(frozen=True)
class Billing:
    rate_card: Path                          # the first (or only) card named
    business_country: str | None = None
    auth_international_eligible: bool = False
    rate_cards: tuple[Path, ...] = ()        # every card named, when rate_card is a list
    # Regime C's unconfirmed 1,000 free service messages per number (DOMAIN R21):
    # None prices them as data/pricing_policy.csv's assume_unconfirmed_allowance says.
    assume_service_allowance: bool | None = None

    @property
    def card_paths(self) -> tuple[Path, ...]:
        """Every rate card file or folder [billing] rate_card names, in order."""
        return self.rate_cards or (self.rate_card,)


@dataclass(frozen=True)
class Api:
    base_url: str


@dataclass(frozen=True)
class Build:
    memory_limit: str | None = None    # DuckDB's limit for a build ("6.5GB"); None: default_memory_limit()
    shards: int | None = None          # thread-hash shards of the per-thread stage; None: from the lake's size
    keep_steps: bool = False           # keep the per-thread steps (keep=temp models) as tables, to inspect them


@dataclass(frozen=True)
class Settings:
    config_path: Path | None
    lake: Path
    warehouse: Path
    reports: Path
    phone_numbers: tuple[PhoneNumber, ...]
    inactive_after_minutes: int = 30
    billing: Billing = field(default_factory=lambda: Billing(rate_card=default_rate_card()))
    api: Api | None = None
    exports: Path | None = None        # where `convo pull` writes and `convo nightly` ingests from
    build: Build = field(default_factory=Build)

    def phone_number(self, phone_number_id: int) -> PhoneNumber | None:
        return next((p for p in self.phone_numbers if p.phone_number_id == phone_number_id), None)


def default_rate_card() -> Path:
    return paths.data_dir() / "rate_cards" / "illustrative_usd.csv"


def shipped_rate_card(name: str) -> Path:
    """A card shipped in data/rate_cards/ by name: ``meta_usd`` is ``meta_usd.csv``
    (or the folder ``meta_usd/``)."""
    folder = paths.data_dir() / "rate_cards" / name
    return folder if folder.is_dir() else folder.with_name(f"{name}.csv")


_TOP_KEYS = {"paths", "phone_numbers", "lifecycle", "billing", "api", "build"}
_PATH_KEYS = {"lake", "warehouse", "reports", "exports"}
_PHONE_KEYS = {"phone_number_id", "tenant_id", "waba_id", "timezone", "currency", "display_phone_number",
               "business_hours", "holidays"}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"\s*([01]\d|2[0-4]):([0-5]\d)\s*-\s*([01]\d|2[0-4]):([0-5]\d)\s*")
_LIFECYCLE_KEYS = {"inactive_after_minutes"}
_BILLING_KEYS = {"rate_card", "business_country", "auth_international_eligible", "assume_service_allowance"}
_API_KEYS = {"base_url"}
_BUILD_KEYS = {"memory_limit", "shards", "keep_steps"}
_MEMORY = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*", re.IGNORECASE)
DEFAULT_BUILD_MEMORY_MB = 6500   # 100M messages: peak RSS 7.8 GB with it, 9.2 GB with 8 GB


def memory_bytes(size: str) -> int:
    """A memory size as convo.toml and DuckDB spell it ("6500MB", "6.5 GB", "8GiB"), in bytes.

    KB, MB, GB and TB count powers of 1000 and KiB to TiB powers of 1024, as DuckDB's own
    memory_limit does (DuckDB reads the setting back rounded, "6.0 GiB": too coarse to
    size shards with).
    """
    match = _MEMORY.fullmatch(size)
    if match is None:
        raise ValueError(f"not a memory size: {size!r}")
    unit = match.group(2).lower()
    base = 1024 if "i" in unit else 1000
    return int(float(match.group(1)) * base ** "kmgt".index(unit[0]) * base)


def default_memory_limit() -> str:
    """A build's DuckDB memory when convo.toml sets none: 6.5 GB, or 3/4 of a smaller machine's RAM.

    DuckDB's own default (80 % of RAM) lets a big build grow until the machine has no
    memory left; with a limit it spills to disk beside the warehouse instead.
    """
    try:
        ram_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    except (ValueError, OSError, AttributeError):
        ram_mb = DEFAULT_BUILD_MEMORY_MB * 2
    return f"{min(DEFAULT_BUILD_MEMORY_MB, ram_mb * 3 // 4)}MB"


def load(path: Path) -> Settings:
    """Read and validate a convo.toml; ConfigError on any problem."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path} (pass --config PATH)")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse(raw, base=path.resolve().parent, config_path=path.resolve())


def parse(raw: dict[str, Any], base: Path, config_path: Path | None = None) -> Settings:
    where = str(config_path) if config_path else "config"
    _no_unknown(raw, _TOP_KEYS, "", where)

    section = _table(raw, "paths", where)
    _no_unknown(section, _PATH_KEYS, "paths.", where)
    lake = _resolve(base, _str(section, "lake", "paths.", where, "lake"))
    warehouse = _resolve(base, _str(section, "warehouse", "paths.", where, "warehouse.duckdb"))
    reports = _resolve(base, _str(section, "reports", "paths.", where, "reports_out"))
    exports = _resolve(base, _str(section, "exports", "paths.", where, "exports"))

    numbers = raw.get("phone_numbers", [])
    if not isinstance(numbers, list) or not numbers:
        raise ConfigError(f"{where}: phone_numbers: at least one [[phone_numbers]] table is required")
    phones = tuple(_phone(item, i, where) for i, item in enumerate(numbers))
    seen: set[int] = set()
    for phone in phones:
        if phone.phone_number_id in seen:
            raise ConfigError(f"{where}: phone_numbers: phone_number_id {phone.phone_number_id} appears twice")
        seen.add(phone.phone_number_id)

    lifecycle = _table(raw, "lifecycle", where)
    _no_unknown(lifecycle, _LIFECYCLE_KEYS, "lifecycle.", where)
    inactive = lifecycle.get("inactive_after_minutes", 30)
    if not isinstance(inactive, int) or isinstance(inactive, bool) or not 1 <= inactive < 24 * 60:
        raise ConfigError(f"{where}: lifecycle.inactive_after_minutes: must be an integer from 1 to 1439, got {inactive!r}")

    billing_raw = _table(raw, "billing", where)
    _no_unknown(billing_raw, _BILLING_KEYS, "billing.", where)
    card = billing_raw.get("rate_card")
    if card is None:
        cards: tuple[Path, ...] = (default_rate_card(),)
    elif isinstance(card, list):
        if not card:
            raise ConfigError(f"{where}: billing.rate_card: an empty list names no rate card")
        cards = tuple(_rate_card(item, base, where, f"billing.rate_card[{index}]") for index, item in enumerate(card))
    else:
        cards = (_rate_card(card, base, where, "billing.rate_card"),)
    country = billing_raw.get("business_country")
    if country is not None and (not isinstance(country, str) or len(country) != 2 or not country.isalpha()):
        raise ConfigError(f"{where}: billing.business_country: must be an ISO 3166 alpha-2 code like \"BR\", got {country!r}")
    eligible = billing_raw.get("auth_international_eligible", False)
    if not isinstance(eligible, bool):
        raise ConfigError(f"{where}: billing.auth_international_eligible: must be true or false, got {eligible!r}")
    allowance = billing_raw.get("assume_service_allowance")
    if allowance is not None and not isinstance(allowance, bool):
        raise ConfigError(f"{where}: billing.assume_service_allowance: must be true or false, got {allowance!r}")
    billing = Billing(rate_card=cards[0], business_country=country.upper() if country else None,
                      auth_international_eligible=eligible, rate_cards=cards if len(cards) > 1 else (),
                      assume_service_allowance=allowance)

    api = None
    if "api" in raw:
        api_raw = _table(raw, "api", where)
        _no_unknown(api_raw, _API_KEYS, "api.", where)
        base_url = api_raw.get("base_url")
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}: api.base_url: must be an http(s) URL, got {base_url!r}")
        api = Api(base_url=base_url.rstrip("/"))

    build_raw = _table(raw, "build", where)
    _no_unknown(build_raw, _BUILD_KEYS, "build.", where)
    memory = build_raw.get("memory_limit")
    size = _MEMORY.fullmatch(memory) if isinstance(memory, str) else None
    if memory is not None and (size is None or float(size.group(1)) <= 0):
        raise ConfigError(f"{where}: build.memory_limit: must be a size like \"8GB\" or \"512MB\", got {memory!r}")
    shards = build_raw.get("shards")
    if shards is not None and (isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= 4096):
        raise ConfigError(f"{where}: build.shards: must be a whole number from 1 to 4096, got {shards!r}")
    keep_steps = build_raw.get("keep_steps", False)
    if not isinstance(keep_steps, bool):
        raise ConfigError(f"{where}: build.keep_steps: must be true or false, got {keep_steps!r}")

    return Settings(config_path=config_path, lake=lake, warehouse=warehouse, reports=reports,
                    phone_numbers=phones, inactive_after_minutes=inactive, billing=billing, api=api,
                    exports=exports, build=Build(memory_limit=memory.replace(" ", "") if memory else None, shards=shards,
                                            keep_steps=keep_steps))


def _rate_card(value: Any, base: Path, where: str, key: str) -> Path:
    """One [billing] rate_card entry: a file (convo's CSV, or Meta's Pricing.csv or
    Tier Pricing.csv as downloaded), a folder of them, or a shipped card's name."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: {key}: must be a path (file or folder), the name of a shipped card, "
                          f"or a list of them, got {value!r}")
    if "/" not in value and "\\" not in value and not value.lower().endswith(".csv"):
        shipped = shipped_rate_card(value)
        if shipped.exists() or not (base / value).exists():
            return shipped
    return _resolve(base, value)


def _phone(item: Any, index: int, where: str) -> PhoneNumber:
    prefix = f"phone_numbers[{index}]."
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: phone_numbers[{index}]: must be a table")
    _no_unknown(item, _PHONE_KEYS, prefix, where)
    for key in ("phone_number_id", "tenant_id", "timezone"):
        if key not in item:
            raise ConfigError(f"{where}: {prefix}{key}: required")
    for key in ("phone_number_id", "tenant_id"):
        if not isinstance(item[key], int) or isinstance(item[key], bool) or item[key] <= 0:
            raise ConfigError(f"{where}: {prefix}{key}: must be a positive integer, got {item[key]!r}")
    tz = item["timezone"]
    try:
        if not isinstance(tz, str) or not tz:
            raise ZoneInfoNotFoundError(tz)
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where}: {prefix}timezone: unknown IANA timezone {tz!r}") from None
    currency = item.get("currency", "USD")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
        raise ConfigError(f"{where}: {prefix}currency: must be an ISO 4217 code like \"USD\", got {currency!r}")
    waba = item.get("waba_id", f"waba-{item['tenant_id']}")
    if not isinstance(waba, str):
        raise ConfigError(f"{where}: {prefix}waba_id: must be a string, got {waba!r}")
    display = item.get("display_phone_number")
    if display is not None:
        digits = str(display).lstrip("+").replace(" ", "")
        if not isinstance(display, str) or not digits.isdigit() or not 7 <= len(digits) <= 15:
            raise ConfigError(f"{where}: {prefix}display_phone_number: must be an E.164 number like \"+15550001111\", got {display!r}")
        display = digits
    hours = _business_hours(item["business_hours"], f"{where}: {prefix}business_hours") \
        if "business_hours" in item else None
    holidays = _holidays(item.get("holidays", []), f"{where}: {prefix}holidays")
    return PhoneNumber(phone_number_id=item["phone_number_id"], tenant_id=item["tenant_id"],
                       waba_id=waba, timezone=tz, currency=currency.upper(), display_phone_number=display,
                       business_hours=hours, holidays=holidays)


def _business_hours(value: Any, where: str) -> tuple[tuple[int, int, int], ...]:
    """{mon = "09:00-18:00", sat = "10:00-13:00,14:00-16:00"}: weekdays left out are closed."""
    if not isinstance(value, dict):
        raise ConfigError(f'{where}: must be a table like {{ mon = "09:00-18:00", tue = "09:00-18:00" }}')
    found: list[tuple[int, int, int]] = []
    for day, ranges in value.items():
        if day not in WEEKDAYS:
            raise ConfigError(f"{where}.{day}: unknown weekday (allowed: {', '.join(WEEKDAYS)})")
        if not isinstance(ranges, str):
            raise ConfigError(f'{where}.{day}: must be a string like "09:00-18:00" or "09:00-12:00,13:00-18:00"')
        spans: list[tuple[int, int]] = []
        for text in ranges.split(",") if ranges.strip() else []:
            match = _RANGE.fullmatch(text)
            if match is None:
                raise ConfigError(f"{where}.{day}: not a range HH:MM-HH:MM: {text.strip()!r}")
            opens = int(match.group(1)) * 3600 + int(match.group(2)) * 60
            closes = int(match.group(3)) * 3600 + int(match.group(4)) * 60
            if opens >= closes or closes > 86400:
                raise ConfigError(f"{where}.{day}: {text.strip()!r} must open before it closes, "
                                  "within the day (24:00 at the latest)")
            spans.append((opens, closes))
        spans.sort()
        for (_, first_closes), (second_opens, _) in zip(spans, spans[1:]):
            if second_opens < first_closes:
                raise ConfigError(f"{where}.{day}: the ranges {ranges!r} overlap")
        found.extend((WEEKDAYS.index(day) + 1, opens, closes) for opens, closes in spans)
    return tuple(sorted(found))


def _holidays(value: Any, where: str) -> tuple[date, ...]:
    if not isinstance(value, list):
        raise ConfigError(f'{where}: must be a list of dates like ["2026-12-25"]')
    days: set[date] = set()
    for item in value:
        if isinstance(item, date) and not isinstance(item, datetime):
            days.add(item)
            continue
        try:
            if not isinstance(item, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", item):
                raise ValueError(item)
            days.add(date.fromisoformat(item))
        except ValueError:
            raise ConfigError(f"{where}: not a date YYYY-MM-DD: {item!r}") from None
    return tuple(sorted(days))


def _table(raw: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {key}: must be a table ([{key}])")
    return value


def _str(section: dict[str, Any], key: str, prefix: str, where: str, default: str) -> str:
    value = section.get(key, default)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: {prefix}{key}: must be a non-empty string, got {value!r}")
    return value


def _no_unknown(section: dict[str, Any], allowed: set[str], prefix: str, where: str) -> None:
    for key in section:
        if key not in allowed:
            raise ConfigError(f"{where}: {prefix}{key}: unknown key (allowed: {', '.join(sorted(allowed))})")


def _resolve(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path
