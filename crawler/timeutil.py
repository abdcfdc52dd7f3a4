"""gov.kz local time. Kazakhstan moved Asia/Almaty from UTC+6 to UTC+5 on 2024-03-01;
the IANA database (tzdata >= 2024a, a dependency) carries that rule, and a test pins it."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

ALMATY = ZoneInfo("Asia/Almaty")


def almaty(day: date, at: time | None = None) -> datetime:
    """The aware datetime of a gov.kz local date (midnight when no time is given)."""
    return datetime.combine(day, at or time(0, 0), tzinfo=ALMATY)


def localize(value: datetime) -> datetime:
    """Make a datetime aware: a naive one is gov.kz local time."""
    return value if value.tzinfo else value.replace(tzinfo=ALMATY)


def utcnow() -> datetime:
    return datetime.now(UTC)


def isoformat(value: datetime) -> str:
    """ISO 8601 with an explicit offset, seconds precision: the archive's date format."""
    return localize(value).isoformat(timespec="seconds")


def require_iso(value: object) -> datetime:
    """The aware datetime of an ISO 8601 date or date-time (a str, or a date/datetime as is);
    naive means gov.kz local time (Asia/Almaty), a bare date its midnight. ValueError for
    anything else, including None and "": the strict form, for a value that must be a date."""
    if isinstance(value, datetime):
        return localize(value)
    if isinstance(value, date):
        return almaty(value)
    if isinstance(value, str) and value.strip():
        return localize(datetime.fromisoformat(value.strip()))
    raise ValueError(f"not an ISO 8601 date: {value!r}")


def parse_iso(value: object) -> datetime | None:
    """require_iso, but None for None, "", or anything that is not an ISO 8601 date: the
    lenient form, for optional dates read back from the archive or a request."""
    try:
        return require_iso(value)
    except ValueError:
        return None
