"""crawler.timeutil: the one ISO 8601 reader (parse_iso, require_iso)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from crawler.timeutil import ALMATY, parse_iso, require_iso


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-02T10:15:30+05:00", datetime(2026, 1, 2, 10, 15, 30, tzinfo=ALMATY)),
        (" 2026-01-02T05:15:30Z ", datetime(2026, 1, 2, 5, 15, 30, tzinfo=UTC)),
        ("2026-01-02T10:15:30", datetime(2026, 1, 2, 10, 15, 30, tzinfo=ALMATY)),  # naive: local
        ("2026-01-02", datetime(2026, 1, 2, tzinfo=ALMATY)),
        (date(2026, 1, 2), datetime(2026, 1, 2, tzinfo=ALMATY)),
        (datetime(2026, 1, 2, 10), datetime(2026, 1, 2, 10, tzinfo=ALMATY)),
        (datetime(2026, 1, 2, 10, tzinfo=UTC), datetime(2026, 1, 2, 10, tzinfo=UTC)),
    ],
)
def test_iso_dates_read_as_aware_datetimes(value: object, expected: datetime) -> None:
    for parsed in (parse_iso(value), require_iso(value)):
        assert parsed == expected and parsed is not None and parsed.tzinfo is not None


def test_a_naive_value_is_almaty_time_with_the_2024_rule() -> None:
    before, after = parse_iso("2024-02-29T12:00"), parse_iso("2024-03-02T12:00")
    assert before is not None and before.utcoffset() == timedelta(hours=6)
    assert after is not None and after.utcoffset() == timedelta(hours=5)


def test_an_offset_is_kept() -> None:
    parsed = parse_iso("2026-01-02T10:00:00-03:00")
    assert parsed is not None and parsed.utcoffset() == timedelta(hours=-3)


@pytest.mark.parametrize(
    "value", [None, "", "   ", "yesterday", "2026-13-01", "2026-01-02T25:00", 3]
)
def test_what_is_not_a_date_is_none_or_value_error(value: object) -> None:
    assert parse_iso(value) is None
    with pytest.raises(ValueError, match="ISO 8601|Invalid|invalid|must be|out of range"):
        require_iso(value)
