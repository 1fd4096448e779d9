"""What a question says besides its topic: an outlet ("according to Reuters") and a time window.

Explicit windows ("in March 2025", "since June 3", "in the past 10 days") become filters.
Vague ones ("this week", "recently") only say the user wants recent news, so they steer the
recency prior instead: a filter there would hide the article published a day too early.
A year alone ("deaths in 2018") only rules out articles written before it.
"""

from __future__ import annotations

import calendar
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ingest.dates import MONTH, MONTHS, parse_iso, parse_typed_date
from ingest.errors import InputError

log = logging.getLogger(__name__)

YEAR = r"(?P<year>(?:19|20)\d\d)"

# Phrases that name who reported something; the outlet itself must be a known one.
OUTLET_TRIGGER = re.compile(
    r"\b(?P<trigger>(?i:according\s+to|reported\s+by|says|said|per|from|by|in|on))\s+"
    r"(?:(?i:the)\s+)?"
    r"(?P<name>[A-Z][\w&.'’-]*(?:\s+[A-Z][\w&.'’-]*){0,4})"
)
OUTLET_ALIASES = {
    "ap": "apnews",
    "associated press": "apnews",
    "new york times": "nytimes",
    "ny times": "nytimes",
    "washington post": "washingtonpost",
    "wall street journal": "wsj",
    "guardian": "theguardian",
    "fox news": "foxnews",
    "financial times": "ft",
    "los angeles times": "latimes",
    "la times": "latimes",
}
POSSESSIVE = re.compile(r"(?:['’]s)?[.,]*$")
HOST_SUFFIX = re.compile(r"\.(com|org|net|co\.uk|co|uk|news|info|us|ca|au|io)$")


@dataclass(frozen=True)
class TimeWindow:
    since: datetime | None
    until: datetime | None
    explicit: bool  # a filter; otherwise a hint that recent news is wanted
    keep_words: bool = False  # the phrase is also part of the topic ("deaths in 2018")


@dataclass(frozen=True)
class ParsedQuery:
    text: str  # the question without the outlet and time phrases that were understood
    outlets: tuple[str, ...] = ()
    window: TimeWindow | None = None


def outlet_key(name: str) -> str:
    """A comparable form of an outlet name or host: "The Guardian", "theguardian.com" → same."""
    key = name.casefold().strip().removeprefix("www.")
    key = HOST_SUFFIX.sub("", key)
    key = re.sub(r"[^\w ]+", " ", key)
    key = " ".join(key.split()).removeprefix("the ")
    key = OUTLET_ALIASES.get(key, key)
    return key.replace(" ", "")


def _keys(outlet: str) -> set[str]:
    key = outlet_key(outlet)
    return {key, key.removeprefix("the")} - {""}


def match_outlets(name: str, outlets: Iterable[str]) -> tuple[str, ...]:
    """The known outlets a user-typed name means ("Guardian" → "theguardian.com")."""
    wanted = _keys(name)
    return tuple(outlet for outlet in outlets if _keys(outlet) & wanted)


def parse_query(question: str, now: datetime, outlets: Iterable[str] = ()) -> ParsedQuery:
    """The question's outlet and time constraints, relative to ``now`` (an aware datetime)."""
    text, found = _take_outlets(question, outlets)
    text, window = _take_window(text, now)
    text = " ".join(text.split()).strip(" ,")
    return ParsedQuery(text=text or question, outlets=found, window=window)


def parse_since(text: str, now: datetime) -> datetime:
    """When "since ``text``" starts, in UTC: an ISO date (its first moment) or time, or a
    phrase such as "yesterday", "last week", "7 days", "March 2025" or "June 3" before ``now``
    (read as a question's time words are), or another date dateparser reads ("3 March 2025").

    Raises ``InputError`` for anything else, rather than guess.
    """
    typed = " ".join(text.split())
    moment = parse_iso(typed)
    if moment is not None:
        return moment.astimezone(UTC)
    for phrasing in _SINCE_PHRASINGS:
        phrase = phrasing.format(typed)
        found = _find_window(phrase, now)
        # The whole phrase must be understood: "June 3 or so" is no date.
        if found is not None and found[0].group() == phrase and found[1].since is not None:
            return found[1].since.astimezone(UTC)
    # ISO-shaped text that is no ISO date ("2025-13-01") is a typo: dateparser would swap
    # its day and month.
    moment = None if _ISO_SHAPED.match(typed) else parse_typed_date(typed, now)
    if moment is not None:
        return moment
    raise InputError(
        f"Can't read {text!r} as a date; try 2025-03-01, yesterday, last week, 7 days, "
        "March 2025 or June 3."
    )


def _take_outlets(question: str, outlets: Iterable[str]) -> tuple[str, tuple[str, ...]]:
    by_key: dict[str, list[str]] = {}
    for outlet in outlets:
        for key in _keys(outlet):
            by_key.setdefault(key, []).append(outlet)
    if not by_key:
        return question, ()
    found: list[str] = []
    text = question
    for match in OUTLET_TRIGGER.finditer(question):
        words = match.group("name").split()
        for size in range(len(words), 0, -1):
            candidate = POSSESSIVE.sub("", " ".join(words[:size]))
            hits = by_key.get(outlet_key(candidate))
            if hits:
                found.extend(hits)
                end = match.start("name") + len(" ".join(words[:size]))
                text = text.replace(question[match.start() : end], " ", 1)
                break
    return text, tuple(dict.fromkeys(found))


def _day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _month_window(year: int, month: int, tz: object) -> tuple[datetime, datetime]:
    start = datetime(year, month, 1, tzinfo=tz)  # type: ignore[arg-type]
    last = calendar.monthrange(year, month)[1]
    return start, start + timedelta(days=last) - timedelta(microseconds=1)


_RELATIVE = [
    (re.compile(r"\b(?:in\s+the\s+)?(?:past|last)\s+(\d{1,3})\s+(day|week|month)s?\b", re.I), ""),
    (re.compile(r"\b(?:today|tonight)\b", re.I), "today"),
    (re.compile(r"\byesterday\b", re.I), "yesterday"),
    (re.compile(r"\b(?:this|past|last)\s+week(?:end)?\b", re.I), "week"),
    (re.compile(r"\b(?:this|past|last)\s+month\b", re.I), "month"),
    (re.compile(r"\b(?:recently|recent|latest|lately)\b", re.I), "recent"),
]
_SINCE_DATE = re.compile(
    rf"\bsince\s+{MONTH}(?:\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?)?(?:,?\s+{YEAR})?\b", re.I
)
_IN_MONTH = re.compile(
    rf"\b(?:in|during|throughout)\s+(?:early\s+|late\s+|mid-?)?{MONTH}"
    rf"(?:,?\s+{YEAR})?\b",
    re.I,
)
_IN_YEAR = re.compile(rf"\b(?:in|during|throughout)\s+{YEAR}\b", re.I)
_UNITS = {"day": 1, "week": 7, "month": 31}
_ISO_SHAPED = re.compile(r"\d{4}-")
# A "since" box holds the date alone; the patterns above expect the words of a question
# around it: "7 days" is read as "past 7 days", "June 3" as "since June 3", "2024" as "in 2024".
_SINCE_PHRASINGS = ("{}", "since {}", "in {}", "past {}")


def _take_window(text: str, now: datetime) -> tuple[str, TimeWindow | None]:
    found = _find_window(text, now)
    if found is None:
        return text, None
    match, window = found
    cut = window.explicit and not window.keep_words
    return (_cut(text, match) if cut else text), window


def _find_window(text: str, now: datetime) -> tuple[re.Match[str], TimeWindow] | None:
    """The first time window ``text`` names, with the words that name it."""
    tz = now.tzinfo or UTC
    match = _SINCE_DATE.search(text)
    if match:
        year = int(match.group("year") or now.year)
        month = MONTHS[match.group("month").casefold()]
        day = min(int(match.group("day") or 1), calendar.monthrange(year, month)[1])
        since = datetime(year, month, day, tzinfo=tz)
        if since > now and not match.group("year"):
            since = since.replace(year=year - 1)
        return match, TimeWindow(since, None, explicit=True)
    match = _IN_MONTH.search(text)
    if match:
        month = MONTHS[match.group("month").casefold()]
        year = int(match.group("year") or now.year)
        if not match.group("year") and (year, month) > (now.year, now.month):
            year -= 1  # "in December", asked in March, means the December just past
        since, until = _month_window(year, month, tz)
        return match, TimeWindow(since, until, explicit=True)
    match = _IN_YEAR.search(text)
    if match:
        # A year alone says when something happened, and it is often reported later ("how
        # many deaths did Japan have in 2018" is answered by a 2022 article): no article
        # before the year can tell, so the window opens then and stays open; the year stays a
        # search word.
        since = datetime(int(match.group("year")), 1, 1, tzinfo=tz)
        return match, TimeWindow(since, None, explicit=True, keep_words=True)
    for pattern, kind in _RELATIVE:
        match = pattern.search(text)
        if not match:
            continue
        if kind == "":
            days = int(match.group(1)) * _UNITS[match.group(2).casefold()]
            return match, TimeWindow(now - timedelta(days=days), None, explicit=True)
        if kind == "today":
            return match, TimeWindow(_day(now), None, explicit=False)
        if kind == "yesterday":
            return match, TimeWindow(_day(now) - timedelta(days=1), None, explicit=False)
        if kind == "week":
            return match, TimeWindow(now - timedelta(days=7), None, explicit=False)
        if kind == "month":
            return match, TimeWindow(now - timedelta(days=31), None, explicit=False)
        return match, TimeWindow(None, None, explicit=False)
    return None


def _cut(text: str, match: re.Match[str]) -> str:
    return f"{text[: match.start()]} {text[match.end() :]}"
