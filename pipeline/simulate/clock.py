"""Integer-second time for the simulator: UTC offsets, local days and ISO text.

Everything inside the simulator is Unix seconds (int). Local time follows the IANA
zone of a business number (DOMAIN R1); offsets are cached per UTC hour, which is
exact for the zones we simulate (their DST changes fall on whole UTC hours).
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

MINUTE = 60
HOUR = 3600
DAY = 86400
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def epoch_day(day: date) -> int:
    """Days since 1970-01-01 of a calendar date."""
    return day.toordinal() - _EPOCH_ORDINAL


def day_start(day: date) -> int:
    """Unix seconds of 00:00 UTC on a date."""
    return epoch_day(day) * DAY


def date_of_epoch_day(day: int) -> date:
    return date.fromordinal(day + _EPOCH_ORDINAL)


class LocalClock:
    """The local time of one IANA timezone, as offsets cached per UTC hour."""

    __slots__ = ("name", "_zone", "_offsets")

    def __init__(self, name: str) -> None:
        self.name = name
        self._zone = ZoneInfo(name)
        self._offsets: dict[int, int] = {}

    def offset(self, t: int) -> int:
        """UTC offset in seconds at Unix time t."""
        hour = t // HOUR
        found = self._offsets.get(hour)
        if found is None:
            moment = datetime.fromtimestamp(hour * HOUR, self._zone)
            found = int(moment.utcoffset().total_seconds())  # type: ignore[union-attr]
            self._offsets[hour] = found
        return found

    def local_day(self, t: int) -> int:
        """The local calendar day (epoch days) of Unix time t."""
        return (t + self.offset(t)) // DAY

    def local_hour(self, t: int) -> int:
        return (t + self.offset(t)) % DAY // HOUR

    def local_weekday(self, t: int) -> int:
        """Monday is 0, as date.weekday()."""
        return ((t + self.offset(t)) // DAY + 3) % 7

    def local_to_utc(self, day: int, second_of_day: int) -> int:
        """Unix time of a local wall-clock time (the first one when ambiguous)."""
        guess = day * DAY + second_of_day
        return guess - self.offset(guess - self.offset(guess))


_DAY_TEXT: dict[int, str] = {}
_MONTHS: dict[int, tuple[int, int]] = {}


def _day_text(day: int) -> str:
    text = _DAY_TEXT.get(day)
    if text is None:
        text = date_of_epoch_day(day).isoformat()
        _DAY_TEXT[day] = text
    return text


def month_of_day(day: int) -> tuple[int, int]:
    """(year, month) of an epoch day."""
    found = _MONTHS.get(day)
    if found is None:
        calendar = date_of_epoch_day(day)
        found = (calendar.year, calendar.month)
        _MONTHS[day] = found
    return found


_TIME_OF_DAY: list[str] = []


def _time_of_day() -> list[str]:
    """"HH:MM:SS" for every second of a day (built once, about 5 MB)."""
    if not _TIME_OF_DAY:
        _TIME_OF_DAY.extend(f"{hour:02d}:{minute:02d}:{second:02d}"
                            for hour in range(24) for minute in range(60) for second in range(60))
    return _TIME_OF_DAY


def iso_utc(t: int) -> str:
    """2026-09-01T10:00:00Z"""
    day, second = divmod(t, DAY)
    text = _DAY_TEXT.get(day) or _day_text(day)
    return f"{text}T{(_TIME_OF_DAY or _time_of_day())[second]}Z"


def iso_offset(t: int, offset: int) -> str:
    """2026-09-01T15:30:00+05:30: the same instant written in local time."""
    day, second = divmod(t + offset, DAY)
    sign = "+" if offset >= 0 else "-"
    off_hour, off_minute = divmod(abs(offset) // MINUTE, 60)
    return f"{_day_text(day)}T{(_TIME_OF_DAY or _time_of_day())[second]}{sign}{off_hour:02d}:{off_minute:02d}"


def parse_iso(text: str | int) -> int:
    """Unix seconds of an ISO 8601 text with offset, or of Unix seconds (tests)."""
    if isinstance(text, int):
        return text
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without offset: {text}")
    return int(moment.astimezone(timezone.utc).timestamp())
