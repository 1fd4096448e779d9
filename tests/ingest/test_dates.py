"""Reading dates: ISO 8601, the datelines news pages print, and what people type."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ingest.dates import parse_as_of, parse_dateline, parse_iso, parse_typed_date


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Oct. 28, 2025, 5:40 p.m.", datetime(2025, 10, 28, 17, 40, tzinfo=UTC)),
        ("Feb. 2, 2026, 3:00 p.m.", datetime(2026, 2, 2, 15, 0, tzinfo=UTC)),
        ("March 24, 2025", datetime(2025, 3, 24, tzinfo=UTC)),
        ("Tuesday, Sept. 9, 2025 12:05 am EST", datetime(2025, 9, 9, 5, 5, tzinfo=UTC)),
        ("March 24, 2025 at 5", datetime(2025, 3, 24, 5, 0, tzinfo=UTC)),
        # A zone dateparser does not know is ignored, as if none were printed.
        ("March 24, 2025 5:10 pm QQQ", datetime(2025, 3, 24, 17, 10, tzinfo=UTC)),
    ],
)
def test_datelines_are_read(line: str, expected: datetime) -> None:
    """Common printed date formats give the right day and time, in UTC."""
    assert parse_dateline(line) == expected


@pytest.mark.parametrize("line", ["May the best team win, 2025", "Feb. 30, 2026", "News Feed"])
def test_other_lines_are_not_dates(line: str) -> None:
    """Sentences and impossible dates are not taken for datelines."""
    assert parse_dateline(line) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-01", datetime(2025, 3, 1, tzinfo=UTC)),
        ("2025-03-01T10:30:00Z", datetime(2025, 3, 1, 10, 30, tzinfo=UTC)),
        ("2025-03-01T10:30:00+0200", datetime(2025, 3, 1, 8, 30, tzinfo=UTC)),
        (" 2025-03-01T10:30 ", datetime(2025, 3, 1, 10, 30, tzinfo=UTC)),
        ("2025-13-01", None),
        ("March 1, 2025", None),
    ],
)
def test_iso_dates_are_read_strictly(text: str, expected: datetime | None) -> None:
    """ISO 8601 with any offset form; naive is UTC; anything else is no ISO date."""
    assert parse_iso(text) == expected


def test_as_of_a_bare_day_is_its_last_moment() -> None:
    """--as-of 2025-03-01 includes all of that day; a time is kept as given."""
    assert parse_as_of("2025-03-01") == datetime(2025, 3, 1, 23, 59, 59, 999999, tzinfo=UTC)
    assert parse_as_of("2025-03-01T08:00") == datetime(2025, 3, 1, 8, tzinfo=UTC)
    assert parse_as_of("yesterday") is None


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("3 March 2025", datetime(2025, 3, 3, tzinfo=UTC)),
        ("Mar 2025", datetime(2025, 3, 1, tzinfo=UTC)),
        ("2 weeks ago", datetime(2025, 5, 6, 15, tzinfo=UTC)),
        ("whenever", None),
    ],
)
def test_typed_dates_are_read_before_now(typed: str, expected: datetime | None) -> None:
    """What a person types is read by dateparser, in the past of ``now``, months from day 1."""
    assert parse_typed_date(typed, datetime(2025, 5, 20, 15, tzinfo=UTC)) == expected
