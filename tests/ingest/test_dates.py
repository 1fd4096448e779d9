"""Reading the datelines news pages print."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ingest.dates import parse_dateline


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Oct. 28, 2025, 5:40 p.m.", datetime(2025, 10, 28, 17, 40, tzinfo=UTC)),
        ("Feb. 2, 2026, 3:00 p.m.", datetime(2026, 2, 2, 15, 0, tzinfo=UTC)),
        ("March 24, 2025", datetime(2025, 3, 24, tzinfo=UTC)),
        ("Tuesday, Sept. 9, 2025 12:05 am EST", datetime(2025, 9, 9, 0, 5, tzinfo=UTC)),
    ],
)
def test_datelines_are_read(line: str, expected: datetime) -> None:
    """Common printed date formats give the right day and time."""
    assert parse_dateline(line) == expected


@pytest.mark.parametrize("line", ["May the best team win, 2025", "Feb. 30, 2026", "News Feed"])
def test_other_lines_are_not_dates(line: str) -> None:
    """Sentences and impossible dates are not taken for datelines."""
    assert parse_dateline(line) is None
