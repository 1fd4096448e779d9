"""Reading an outlet and a time window out of a question."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from index.query import outlet_key, parse_query, parse_since
from ingest.errors import InputError

NOW = datetime(2025, 5, 20, 15, 0, tzinfo=UTC)
OUTLETS = ["reuters.com", "theguardian.com", "Harbor City Ledger", "apnews.com"]


@pytest.mark.parametrize(
    ("question", "outlet"),
    [
        ("What did the mayor say, according to Reuters?", "reuters.com"),
        ("What did the Guardian report about the strike?", None),
        ("Who won the election, as reported by the Harbor City Ledger?", "Harbor City Ledger"),
        ("What did the AP say about the storm?", None),
        ("Per AP, how many died?", "apnews.com"),
        ("What happened in the Guardian's coverage, according to The Guardian?", "theguardian.com"),
    ],
)
def test_outlet_phrases_name_known_outlets(question: str, outlet: str | None) -> None:
    """ "According to X" names X only when X is an outlet the index knows."""
    parsed = parse_query(question, NOW, OUTLETS)
    assert parsed.outlets == ((outlet,) if outlet else ())


def test_outlet_phrase_leaves_the_query_text() -> None:
    """The outlet clause is not searched for: it would match every article of that outlet."""
    parsed = parse_query("How many jobs are cut, according to Reuters?", NOW, OUTLETS)
    assert "Reuters" not in parsed.text and "jobs are cut" in parsed.text


def test_unknown_outlet_is_ignored() -> None:
    """A name that is no indexed outlet stays part of the question."""
    parsed = parse_query("What did the minister say, according to Bloomberg?", NOW, OUTLETS)
    assert parsed.outlets == () and "Bloomberg" in parsed.text


def test_outlet_keys_match_hosts_and_names() -> None:
    """Hosts and spelled-out names meet in one key."""
    assert outlet_key("www.theguardian.com") == outlet_key("The Guardian")
    assert outlet_key("apnews.com") == outlet_key("Associated Press")


def test_month_window_is_an_explicit_filter() -> None:
    """ "In March 2025" is the whole of that month."""
    window = parse_query("What happened to fares in March 2025?", NOW).window
    assert window is not None and window.explicit
    assert window.since == datetime(2025, 3, 1, tzinfo=UTC)
    assert window.until is not None and window.until.date().isoformat() == "2025-03-31"


def test_month_without_year_is_the_latest_one() -> None:
    """ "In December", asked in May, means last December."""
    window = parse_query("Who resigned in December?", NOW).window
    assert window is not None and window.since == datetime(2024, 12, 1, tzinfo=UTC)


def test_year_and_since_and_past_days() -> None:
    """Years, "since" dates and "past N days" become windows too."""
    year = parse_query("Who won the cup in 2024?", NOW).window
    assert year is not None and year.since == datetime(2024, 1, 1, tzinfo=UTC)
    since = parse_query("What changed since March 3?", NOW).window
    assert since is not None and since.since == datetime(2025, 3, 3, tzinfo=UTC)
    past = parse_query("Any storms in the past 10 days?", NOW).window
    assert (
        past is not None and past.explicit and past.since == datetime(2025, 5, 10, 15, tzinfo=UTC)
    )


def test_a_year_in_a_question_only_rules_out_older_articles() -> None:
    """ "In 2018" keeps later articles (which report that year) and stays a search word."""
    parsed = parse_query("how many gun deaths did japan have in 2018", NOW)
    assert parsed.window is not None and parsed.window.explicit
    assert parsed.window.since == datetime(2018, 1, 1, tzinfo=UTC)
    assert parsed.window.until is None
    assert "2018" in parsed.text


def test_vague_recency_is_only_a_hint() -> None:
    """ "This week" and "last week" ask for recent news without hiding older articles."""
    for question in ("Which city flooded this week?", "Who resigned last week?"):
        window = parse_query(question, NOW).window
        assert window is not None and not window.explicit


def test_plain_question_has_no_constraints() -> None:
    """Without outlet or time words, nothing is parsed and the text is unchanged."""
    parsed = parse_query("Who won the Harbor City mayoral election?", NOW, OUTLETS)
    assert parsed.outlets == () and parsed.window is None
    assert parsed.text == "Who won the Harbor City mayoral election?"


@pytest.mark.parametrize(
    ("typed", "start"),
    [
        ("2025-03-01", datetime(2025, 3, 1, tzinfo=UTC)),
        ("2025-03-01T10:30", datetime(2025, 3, 1, 10, 30, tzinfo=UTC)),
        ("2025-03-01T10:30+02:00", datetime(2025, 3, 1, 8, 30, tzinfo=UTC)),
        ("yesterday", datetime(2025, 5, 19, tzinfo=UTC)),
        ("last week", datetime(2025, 5, 13, 15, tzinfo=UTC)),
        ("7 days", datetime(2025, 5, 13, 15, tzinfo=UTC)),
        ("past 3 weeks", datetime(2025, 4, 29, 15, tzinfo=UTC)),
        ("March 2025", datetime(2025, 3, 1, tzinfo=UTC)),
        ("June 3", datetime(2024, 6, 3, tzinfo=UTC)),
        ("  june 3rd, 2024 ", datetime(2024, 6, 3, tzinfo=UTC)),
        ("2024", datetime(2024, 1, 1, tzinfo=UTC)),
        ("3 March 2025", datetime(2025, 3, 3, tzinfo=UTC)),
        ("2025-03-01T10:30:00Z", datetime(2025, 3, 1, 10, 30, tzinfo=UTC)),
    ],
)
def test_since_reads_dates_and_phrases(typed: str, start: datetime) -> None:
    """What a member types as "since" becomes the start of that window, in UTC."""
    assert parse_since(typed, NOW) == start


@pytest.mark.parametrize("typed", ["whenever", "recently", "June 3 or so", "2025-13-01", ""])
def test_since_refuses_what_it_cannot_read(typed: str) -> None:
    """Anything else is refused with examples, rather than guessed at."""
    with pytest.raises(InputError, match=r"as a date; try 2025-03-01, yesterday, last week"):
        parse_since(typed, NOW)
