"""Dates written the way news pages print them, e.g. "Oct. 28, 2025, 5:40 p.m."."""

from __future__ import annotations

import re
from datetime import UTC, datetime

MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for name in names
}
DATELINE = re.compile(
    r"""^(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,?\s+)?
    (?P<month>[a-z]{3,9})\.?\s+(?P<day>\d{1,2}),?\s+(?P<year>\d{4})
    (?:,?\s+(?:at\s+)?(?P<hour>\d{1,2})(?::(?P<minute>\d{2}))?\s*(?P<ampm>a\.?m\.?|p\.?m\.?)?)?
    (?:\s+[A-Z]{2,4})?\s*$""",
    re.IGNORECASE | re.VERBOSE,
)


def parse_dateline(line: str) -> datetime | None:
    """The date a line consists of (taken as UTC), or None when the line is not a date."""
    match = DATELINE.match(line.strip())
    if match is None:
        return None
    month = MONTHS.get(match["month"].lower())
    if month is None:
        return None
    hour = int(match["hour"] or 0)
    ampm = (match["ampm"] or "").replace(".", "").lower()
    if ampm == "pm" and hour < 12:
        hour += 12
    elif ampm == "am" and hour == 12:
        hour = 0
    try:
        return datetime(
            int(match["year"]),
            month,
            int(match["day"]),
            hour,
            int(match["minute"] or 0),
            tzinfo=UTC,
        )
    except ValueError:
        return None
