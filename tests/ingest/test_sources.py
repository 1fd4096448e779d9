"""Adding sources: what cannot be stored or shown safely is refused with a one-line reason."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from ingest.db import session_scope
from ingest.errors import InputError
from ingest.sources import add_source, list_sources


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://feeds.example/" + "a" * 2100, "URL too long"),
        ("https://feeds.example/rss\n**spoof**", "whitespace or control characters"),
    ],
)
def test_urls_too_long_or_with_line_breaks_are_refused(
    engine: Engine, url: str, reason: str
) -> None:
    """A 2,100-character URL or one with a line break is refused, not a database crash."""
    with pytest.raises(InputError, match=reason), session_scope(engine) as session:
        add_source(session, url)
    with session_scope(engine) as session:
        assert list_sources(session) == []


def test_control_characters_leave_a_source_name(engine: Engine) -> None:
    """Escape sequences and line breaks in a name are dropped before it is stored."""
    with session_scope(engine) as session:
        add_source(session, "https://feeds.example/rss", "\x1b[2JHarbour\nfeed\x00")
    with session_scope(engine) as session:
        assert [s.name for s in list_sources(session)] == ["Harbour feed"]
