"""The simulated tenant: its business numbers, countries, templates and contacts.

One tenant (DOMAIN R1) with four business numbers in four timezones (a half-hour
offset, two zones with DST, one without). Contacts come from standalone markets,
regional groups, North America and the +1 Caribbean area codes of DOMAIN R22.
Everything here is a pure function of (seed, contact index), so any contact can be
rebuilt alone and the run is deterministic.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date

from pipeline.simulate.clock import DAY, HOUR, LocalClock, day_start
from pipeline.simulate.meta import MetaNumber

TENANT_ID = 1
BUSINESS_COUNTRY = "BR"
AUTH_INTERNATIONAL_ELIGIBLE = False
INACTIVE_AFTER_MINUTES = 30            # DOMAIN R8, written into convo.toml
BSUID_FIRST_DAY = date(2026, 3, 31)    # DOMAIN R2: records carry contact_bsuid from this day (UTC)
BSUID_FROM = day_start(BSUID_FIRST_DAY)
MAX_CONTACTS = 5_000_000               # phone numbers stay unique up to this many


@dataclass(frozen=True)
class BusinessNumber:
    phone_number_id: int
    waba_id: str
    timezone: str
    display_phone_number: str      # digits, as Meta's pricing_analytics names the number (R26)
    clock: LocalClock = field(compare=False, repr=False)

    @property
    def meta(self) -> MetaNumber:
        return MetaNumber(self.phone_number_id, self.waba_id, self.clock, BUSINESS_COUNTRY,
                          AUTH_INTERNATIONAL_ELIGIBLE)


def _number(phone_number_id: int, waba_id: str, timezone: str, display: str) -> BusinessNumber:
    return BusinessNumber(phone_number_id, waba_id, timezone, display, LocalClock(timezone))


# Display numbers: valid mobile numbers of each number's country (São Paulo, India,
# Spain, New York; tests check them with phonenumbers).
SAO_PAULO, KOLKATA, MADRID, NEW_YORK = 0, 1, 2, 3
NUMBERS: tuple[BusinessNumber, ...] = (
    _number(104_711_550_000_101, "waba-br", "America/Sao_Paulo", "5511955510101"),   # no DST
    _number(104_711_550_000_202, "waba-in", "Asia/Kolkata", "919876502202"),         # +05:30
    _number(104_711_550_000_303, "waba-eu", "Europe/Madrid", "34612503303"),         # DST (last Sunday of Oct)
    _number(104_711_550_000_404, "waba-us", "America/New_York", "12125550104"),      # DST (first Sunday of Nov)
)


@dataclass(frozen=True)
class Country:
    """A contact country: how its mobile numbers look and which number serves it."""

    iso: str
    calling_code: int
    weight: float
    home: int                    # index into NUMBERS
    utc_offset_hours: float      # for the user's daily rhythm only
    names: str                   # key into NAMES
    # (national prefix, random digits, lowest first digit): prefixes never overlap, any
    # digits after them make a valid mobile number of the country (tests check).
    blocks: tuple[tuple[str, int, int], ...]


def _c(iso: str, code: int, weight: float, home: int, offset: float, names: str,
       *blocks: tuple[str, int, int]) -> Country:
    return Country(iso, code, weight, home, offset, names, blocks)


_NANP = 2  # NANP exchanges start with 2-9 (the third element of a block)
COUNTRIES: tuple[Country, ...] = (
    # standalone markets (DOMAIN R22)
    _c("BR", 55, 16, SAO_PAULO, -3, "pt", ("119", 8, 0), ("219", 8, 0), ("319", 8, 0)),
    _c("IN", 91, 13, KOLKATA, 5.5, "hi", ("81", 8, 0), ("98", 8, 0), ("70", 8, 0)),
    _c("MX", 52, 6, SAO_PAULO, -6, "es", ("55", 8, 0), ("33", 8, 0), ("81", 8, 0)),
    _c("ID", 62, 4, KOLKATA, 7, "id", ("81", 7, 0), ("85", 7, 0)),
    _c("DE", 49, 3, MADRID, 1, "de", ("151", 8, 0), ("160", 7, 0), ("176", 8, 0)),
    _c("GB", 44, 3, MADRID, 0, "en", ("73", 8, 0), ("740", 7, 0)),
    _c("ES", 34, 6, MADRID, 1, "es", ("61", 7, 0), ("66", 7, 0), ("69", 7, 0)),
    _c("NG", 234, 3, MADRID, 1, "ng", ("80", 8, 0)),
    _c("ZA", 27, 2, MADRID, 2, "en", ("71", 7, 0), ("82", 7, 0)),
    _c("AR", 54, 3, SAO_PAULO, -3, "es", ("9114", 7, 0), ("9115", 7, 0), ("9116", 7, 0)),
    _c("CO", 57, 3, SAO_PAULO, -5, "es", ("321", 7, 0), ("310", 7, 0)),
    _c("CL", 56, 2, SAO_PAULO, -4, "es", ("98", 7, 0), ("95", 7, 0)),
    _c("FR", 33, 2, MADRID, 1, "fr", ("61", 7, 0), ("76", 7, 0)),
    _c("IT", 39, 2, MADRID, 1, "it", ("31", 8, 0), ("34", 8, 0)),
    _c("EG", 20, 1.5, MADRID, 2, "ar", ("10", 8, 0), ("12", 8, 0)),
    _c("AE", 971, 1.5, KOLKATA, 4, "ar", ("50", 7, 0), ("55", 7, 0)),
    _c("SA", 966, 1, KOLKATA, 3, "ar", ("51", 7, 0), ("55", 7, 0)),
    _c("TR", 90, 1, MADRID, 3, "tr", ("50", 8, 0), ("53", 8, 0)),
    _c("PK", 92, 1, KOLKATA, 5, "hi", ("30", 8, 0), ("31", 8, 0)),
    _c("MY", 60, 1, KOLKATA, 8, "id", ("12", 7, 0)),
    _c("NL", 31, 1, MADRID, 1, "nl", ("61", 7, 0), ("62", 7, 0)),
    _c("IL", 972, 0.5, MADRID, 2, "he", ("502", 6, 0), ("53", 7, 0)),
    _c("PE", 51, 1, SAO_PAULO, -5, "es", ("91", 7, 0), ("94", 7, 0)),
    # regional groups
    _c("KE", 254, 2, MADRID, 3, "ng", ("71", 7, 0), ("72", 7, 0)),
    _c("ZW", 263, 1, MADRID, 2, "ng", ("71", 7, 0), ("77", 7, 0)),    # -> Rest of Africa 2025-10-01
    _c("GH", 233, 0.5, MADRID, 0, "ng", ("24", 7, 0), ("20", 7, 0)),
    _c("PH", 63, 3, KOLKATA, 8, "ph", ("905", 7, 0), ("917", 7, 0)),
    _c("VN", 84, 0.5, KOLKATA, 7, "vi", ("91", 7, 0), ("98", 7, 0)),
    _c("PL", 48, 2, MADRID, 1, "pl", ("51", 7, 0), ("60", 7, 0)),
    _c("PT", 351, 2, MADRID, 0, "pt", ("91", 7, 0), ("96", 7, 0)),
    # North America (+1)
    _c("US", 1, 7, NEW_YORK, -5, "en", ("212", 7, _NANP), ("305", 7, _NANP), ("415", 7, _NANP),
       ("617", 7, _NANP), ("713", 7, _NANP)),
    _c("CA", 1, 2, NEW_YORK, -5, "en", ("416", 7, _NANP), ("604", 7, _NANP), ("514", 7, _NANP)),
    # +1 Caribbean: Rest of Latin America (DOMAIN R22)
    _c("DO", 1, 1.5, NEW_YORK, -4, "es", ("809", 7, _NANP), ("829", 7, _NANP), ("849", 7, _NANP)),
    _c("JM", 1, 1, NEW_YORK, -5, "en", ("658", 7, _NANP), ("8763", 6, 0), ("8764", 6, 0)),
    _c("PR", 1, 1.5, NEW_YORK, -4, "es", ("787", 7, _NANP), ("939", 7, _NANP)),
)
COUNTRY_BY_ISO = {country.iso: country for country in COUNTRIES}
_WEIGHTS = [country.weight for country in COUNTRIES]

NAMES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "pt": (("Ana", "João", "Maria", "Pedro", "Luíza", "Rafael", "Beatriz", "Thiago"),
           ("Souza", "Silva", "Oliveira", "Santos", "Costa", "Pereira", "Gonçalves")),
    "es": (("Sofía", "Mateo", "Valentina", "Santiago", "Camila", "Diego", "Lucía", "Andrés"),
           ("García", "Martínez", "López", "Hernández", "Rodríguez", "Núñez", "Peña")),
    "en": (("Olivia", "James", "Amelia", "Noah", "Grace", "Liam", "Chloe", "Ethan"),
           ("Smith", "Johnson", "Brown", "Taylor", "O'Neil", "Williams", "Campbell")),
    "hi": (("Aarav", "Priya", "Rohan", "Ananya", "Vikram", "Isha", "Arjun", "Sana"),
           ("Sharma", "Patel", "Iyer", "Reddy", "Khan", "Gupta", "Nair")),
    "id": (("Putri", "Budi", "Siti", "Agus", "Dewi", "Rizky", "Nur"),
           ("Santoso", "Wijaya", "Lestari", "Hakim", "Saputra", "")),
    "de": (("Lena", "Lukas", "Mia", "Jonas", "Hannah", "Felix"),
           ("Müller", "Schmidt", "Weiß", "Schäfer", "Groß")),
    "fr": (("Chloé", "Louis", "Léa", "Hugo", "Inès"), ("Martin", "Bernard", "Lefèvre", "Dubois")),
    "it": (("Giulia", "Marco", "Chiara", "Luca"), ("Rossi", "Bianchi", "Esposito", "Ricci")),
    "ar": (("محمد", "فاطمة", "أحمد", "مريم", "Omar", "Layla"), ("علي", "حسن", "Al-Sayed", "Haddad")),
    "he": (("שרה", "דוד", "Noa", "Yossi"), ("כהן", "לוי", "Mizrahi")),
    "tr": (("Elif", "Mehmet", "Zeynep", "Emre"), ("Yılmaz", "Kaya", "Demir", "Şahin")),
    "nl": (("Sanne", "Daan", "Fleur", "Bram"), ("de Vries", "van Dijk", "Jansen")),
    "pl": (("Zofia", "Jakub", "Maja", "Kacper"), ("Nowak", "Kowalski", "Wiśniewska", "Wójcik")),
    "ng": (("Chinedu", "Amara", "Tunde", "Wanjiru", "Tendai", "Kwame", "Ngozi"),
           ("Okafor", "Adeyemi", "Mwangi", "Moyo", "Mensah", "Otieno")),
    "ph": (("Maria Clara", "Jose", "Angelica", "Mark"), ("Reyes", "Santos", "dela Cruz", "Bautista")),
    "vi": (("Linh", "Minh", "Trang"), ("Nguyễn", "Trần", "Phạm")),
}

# User-controlled text at its worst (DOMAIN R10: contact_name is user controlled).
ODD_NAMES = (
    "<script>alert(1)</script>",
    "<img src=x onerror=alert('xss')>",
    "Ana 🌸",
    "😀😀😀",
    "محمد علي",
    "שרה כהן",
    'Joe "the plumber" O\'Brien',
    "Robert'); DROP TABLE contacts;--",
    "  Lia  ",
    "",
    "{{first_name}}",
    "Zoë\u200d",
    "Marie-Éloïse de la Tour d'Auvergne " * 3,
    "\\N",
)

# --- templates ------------------------------------------------------------------------
MARKETING_TEMPLATES = ("spring_sale", "new_collection", "loyalty_points", "abandoned_cart")
REENGAGEMENT_TEMPLATE = "we_miss_you"                       # marketing, to silent contacts
UTILITY_TEMPLATES = ("order_confirmation", "shipping_update", "appointment_reminder", "payment_receipt")
REOPEN_TEMPLATE = "conversation_reopen"                     # utility, after a 131047 failure
AUTH_TEMPLATES = ("otp_login", "verify_phone", "password_reset")
RECATEGORISED_TEMPLATE = "order_followup"                   # utility, then marketing by Meta
TEMPLATE_LANGUAGES = ("en", "es", "pt_BR")


@dataclass(frozen=True)
class Template:
    name: str
    category: str
    updated_at: int


def template_catalog(start: int, end: int) -> tuple[tuple[Template, ...], int]:
    """The catalog rows and the time Meta re-categorised RECATEGORISED_TEMPLATE."""
    created = start - 45 * DAY
    recategorised = start + (end - start) // 2 + 9 * HOUR + 17 * 60
    rows = [Template(name, "marketing", created) for name in (*MARKETING_TEMPLATES, REENGAGEMENT_TEMPLATE)]
    rows += [Template(name, "utility", created) for name in (*UTILITY_TEMPLATES, REOPEN_TEMPLATE)]
    rows += [Template(name, "authentication", created) for name in AUTH_TEMPLATES]
    rows.append(Template(RECATEGORISED_TEMPLATE, "utility", created + 3 * DAY))
    rows.append(Template(RECATEGORISED_TEMPLATE, "marketing", recategorised))
    return tuple(rows), recategorised


# --- campaigns --------------------------------------------------------------------------
@dataclass(frozen=True)
class Campaign:
    """A marketing campaign of one number: sent to an audience share of opted-in contacts."""

    at: int
    template: str
    audience: float


def campaigns(seed: int, start: int, end: int) -> tuple[tuple[Campaign, ...], ...]:
    """Per number, campaign launches every 4-9 days at 10:00-17:00 local."""
    schedule = []
    for index, number in enumerate(NUMBERS):
        rng = random.Random(f"campaigns:{seed}:{index}")
        day = start // DAY + rng.randrange(1, 5)
        found = []
        while day < end // DAY:
            launch = number.clock.local_to_utc(day, rng.randrange(10 * HOUR, 17 * HOUR, 900))
            if start <= launch < end:
                found.append(Campaign(launch, rng.choice(MARKETING_TEMPLATES), rng.uniform(0.3, 0.7)))
            day += rng.randrange(4, 10)
        schedule.append(tuple(found))
    return tuple(schedule)


# --- contacts ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Persona:
    """One WhatsApp identity of a contact: a phone and the bsuid Meta derives from it (R2)."""

    phone: str
    bsuid: str
    keeps_phone: bool          # after the bsuid cut-over, does the record still carry the phone?
    active_from: int
    active_until: int

    def identity(self, t: int) -> tuple[str | None, str | None]:
        """(contact_phone, contact_bsuid) of a record at t. DOMAIN R2."""
        if t < BSUID_FROM:
            return self.phone, None
        return (self.phone if self.keeps_phone else None), self.bsuid


@dataclass(frozen=True)
class Contact:
    index: int
    country: Country
    name: str | None
    customer_id: str | None
    personas: tuple[Persona, ...]          # two when the user changed phone number
    numbers: tuple[tuple[int, float], ...]  # (number index, share of the user's activity)
    sessions_per_day: float
    marketing_opt_in: bool
    reachable: bool                        # False: the phone is off / lost, nothing is delivered
    responsiveness: float                  # chance to answer a business template
    first_arrival: str | None              # "ad" / "page_cta": arrived through an entry point


def mix64(value: int) -> int:
    """A bijection of 64-bit integers (splitmix64's finaliser)."""
    value &= 0xFFFFFFFFFFFFFFFF
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return value ^ (value >> 31)


def phone_number(country: Country, slot: int, seed: int) -> str:
    """An E.164 number valid for the country, unique per slot (< 2 * MAX_CONTACTS).

    The national number is a block's prefix followed by random-looking digits: the
    slot goes through an affine bijection of the country's number space, so two
    slots never share a number.
    """
    sizes = [(10 - low) * 10 ** (digits - 1) if low else 10 ** digits for _, digits, low in country.blocks]
    space = sum(sizes)
    multiplier = 7_368_787 if space % 7_368_787 else 7_368_793  # primes: coprime to the space
    value = (slot * multiplier + mix64(seed * 977 + country.calling_code)) % space
    for (prefix, digits, low), size in zip(country.blocks, sizes):
        if value < size:
            if low:
                head, tail = divmod(value, 10 ** (digits - 1))
                return f"+{country.calling_code}{prefix}{head + low}{tail:0{digits - 1}d}"
            return f"+{country.calling_code}{prefix}{value:0{digits}d}"
        value -= size
    raise AssertionError("unreachable: value < space")


def bsuid(country: Country, slot: int, seed: int, rng: random.Random) -> str:
    """CC.<digits or alphanumerics>, unique per slot (DOMAIN R2)."""
    code = mix64(mix64(seed) ^ slot)
    if rng.random() < 0.75:
        return f"{country.iso}.{code:020d}"
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    text = []
    while code:
        code, digit = divmod(code, 62)
        text.append(alphabet[digit])
    return f"{country.iso}.{''.join(text)}{rng.choice(alphabet)}{rng.choice(alphabet)}"


def contact_name(country: Country, rng: random.Random) -> str | None:
    draw = rng.random()
    if draw < 0.05:
        return None                           # no profile name
    if draw < 0.09:
        return rng.choice(ODD_NAMES)
    first, last = NAMES[country.names]
    name = f"{rng.choice(first)} {rng.choice(last)}".strip()
    if draw > 0.97:
        name += rng.choice((" 💅", " ✨", " 🇧🇷", " ❤️"))
    return name


def contact_rng(seed: int, index: int) -> random.Random:
    return random.Random(mix64(seed * 0x9E3779B97F4A7C15 + index))


def make_contact(index: int, contacts: int, seed: int, start: int, end: int, rng: random.Random) -> Contact:
    """Contact `index`: the first ones cover every country once, then by weight."""
    if index < len(COUNTRIES):
        country = COUNTRIES[index]
    else:
        country = rng.choices(COUNTRIES, _WEIGHTS)[0]
    name = contact_name(country, rng)
    customer_id = f"cus_{mix64(seed ^ index * 31):016x}"[:16] if rng.random() < 0.6 else None
    keeps_phone = rng.random() < 0.7
    first = Persona(phone_number(country, index, seed), bsuid(country, index, seed, rng), keeps_phone, start, end)
    personas: tuple[Persona, ...] = (first,)
    if rng.random() < 0.03 and end - start > 10 * DAY:
        # DOMAIN R2: a new phone number regenerates the bsuid; the old one goes quiet.
        change = start + int((end - start) * rng.uniform(0.3, 0.7))
        second = Persona(phone_number(country, contacts + index, seed),
                         bsuid(country, MAX_CONTACTS + index, seed, rng),
                         rng.random() < 0.7, change + DAY, end)
        personas = (Persona(first.phone, first.bsuid, keeps_phone, start, change), second)
    numbers: tuple[tuple[int, float], ...] = ((country.home, 1.0),)
    if rng.random() < 0.15:
        other = rng.choice([i for i in range(len(NUMBERS)) if i != country.home])
        numbers = ((country.home, 1.0), (other, rng.uniform(0.15, 0.5)))
    arrival = None
    if rng.random() < 0.25:
        arrival = "ad" if rng.random() < 0.7 else "page_cta"
    return Contact(
        index=index,
        country=country,
        name=name,
        customer_id=customer_id,
        personas=personas,
        numbers=numbers,
        sessions_per_day=min(1.5, rng.lognormvariate(-2.6, 0.8)),
        marketing_opt_in=rng.random() < 0.65,
        reachable=rng.random() > 0.03,
        responsiveness=rng.uniform(0.03, 0.3),
        first_arrival=arrival,
    )


__all__ = [
    "AUTH_TEMPLATES", "BSUID_FIRST_DAY", "BSUID_FROM", "BUSINESS_COUNTRY", "COUNTRIES", "COUNTRY_BY_ISO",
    "Campaign", "Contact", "Country", "INACTIVE_AFTER_MINUTES", "MARKETING_TEMPLATES", "MAX_CONTACTS",
    "NUMBERS", "Persona", "RECATEGORISED_TEMPLATE", "REENGAGEMENT_TEMPLATE", "REOPEN_TEMPLATE", "TENANT_ID",
    "Template", "UTILITY_TEMPLATES", "campaigns", "contact_rng", "make_contact", "mix64",
    "phone_number", "template_catalog",
]
