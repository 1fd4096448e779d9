"""Every date newsbot reads: ISO 8601 from feeds, pages and files, datelines printed on
scraped pages ("Oct. 28, 2025, 5:40 p.m."), and dates people type ("March 2025").

ISO 8601 is read strictly with ``datetime.fromisoformat``: "2025-13-01" is a typo, never a
guess. Anything written for people goes to dateparser. The one regular expression kept is
the dateline's, because cleaning asks it of every line of every article: only lines that
look like a date on their own reach dateparser.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime
from typing import Any

__all__ = [
    "MONTH",
    "MONTHS",
    "parse_as_of",
    "parse_dateline",
    "parse_iso",
    "parse_typed_date",
]

MONTHS = {
    name.casefold(): number
    for number in range(1, 13)
    for name in (calendar.month_name[number], calendar.month_abbr[number])
}
MONTHS["sept"] = 9
# A month name or abbreviation (with its optional dot) as a named group, for patterns that
# find dates inside longer text, e.g. "in March 2025" in a question.
MONTH = r"(?P<month>" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"

_DATELINE = re.compile(
    rf"""^(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,?\s+)?
    {MONTH}\s+\d{{1,2}},?\s+\d{{4}}
    (?:,?\s+(?:at\s+)?(?P<hour>\d{{1,2}})(?P<minute>:\d{{2}})?\s*(?:a\.?m\.?|p\.?m\.?)?)?
    (?P<zone>\s+[A-Z]{{2,4}})?\s*$""",
    re.IGNORECASE | re.VERBOSE,
)
# Python 3.11's fromisoformat does not take "+0000"; it is given "+00:00".
_COMPACT_OFFSET = re.compile(r"([+-]\d\d)(\d\d)$")
_SETTINGS: dict[str, Any] = {
    "RETURN_AS_TIMEZONE_AWARE": True,
    "TIMEZONE": "UTC",  # what a date without a zone is taken in
    "TO_TIMEZONE": "UTC",
}


def parse_iso(text: str) -> datetime | None:
    """An ISO 8601 date or datetime ("Z" and "+0000" offsets too); naive ones are UTC.

    None when ``text`` is not ISO 8601.
    """
    value = _COMPACT_OFFSET.sub(r"\1:\2", text.strip().replace("Z", "+00:00"))
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_dateline(line: str) -> datetime | None:
    """The date a line consists of, in UTC (a named zone such as EST is applied, an unknown
    one ignored), or None when the line is not a date."""
    line = line.strip()
    match = _DATELINE.match(line)
    if match is None:
        return None
    zone = match.start("zone") if match.group("zone") else len(line)
    if match.group("hour") and not match.group("minute"):
        # dateparser reads "at 5 pm" but not "at 5": give the hour its minutes.
        at = match.end("hour")
        line, zone = f"{line[:at]}:00{line[at:]}", zone + 3
    found = _dateparser(line)
    if found is None and zone < len(line):
        found = _dateparser(line[:zone])  # a zone dateparser does not know: taken as UTC
    return found


def parse_typed_date(text: str, now: datetime) -> datetime | None:
    """A date a person typed ("June 3", "3 March 2025", "2 weeks ago"), in UTC, read before
    ``now``; a month alone is its first day. None when dateparser cannot read it."""
    base = now.astimezone(UTC).replace(tzinfo=None)
    return _dateparser(
        text,
        RELATIVE_BASE=base,
        PREFER_DATES_FROM="past",
        PREFER_DAY_OF_MONTH="first",
        PREFER_MONTH_OF_YEAR="first",
    )


def parse_as_of(text: str) -> datetime | None:
    """An ISO date or datetime to answer "as of"; a bare date means the whole of that day,
    so its last moment. None when ``text`` is not ISO 8601."""
    parsed = parse_iso(text)
    if parsed is not None and len(text.strip()) <= 10:
        day = date.fromisoformat(text.strip()[:10])
        parsed = datetime.combine(day, datetime.max.time(), tzinfo=UTC)
    return parsed


def load_date_reader() -> None:
    """Import dateparser and read one date now: the bot calls this off its event loop at start,
    so the first member's unusual ``since:`` is not the one who waits ~0.6 s for it."""
    parse_typed_date("3 March 2025", datetime.now(UTC))


def _dateparser(text: str, **settings: Any) -> datetime | None:
    # Imported here: it takes a while, and most commands never read a printed date.
    import dateparser

    found = dateparser.parse(text, languages=["en"], settings={**_SETTINGS, **settings})
    return found.astimezone(UTC) if found is not None else None
