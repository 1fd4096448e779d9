"""Adding and removing sources: what cannot be fetched, stored or shown safely is refused with a
one-line reason, and the first-run marker."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from ingest.db import session_scope
from ingest.errors import InputError
from ingest.sources import (
    add_source,
    list_sources,
    never_had_sources,
    refuse_internal_address,
    remove_source,
)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/feed",
        "http://localhost:8080/rss",
        "https://192.168.1.10/news",
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:127.0.0.1]/feed",
        "http://0.0.0.0:8000/",
    ],
)
def test_internal_addresses_are_refused(url: str) -> None:
    """The fetcher's own address check, run on what the host resolves to."""
    with pytest.raises(InputError, match=r"^refused: .*newsbot fetches only public addresses$"):
        refuse_internal_address(url)


def test_allow_hosts_open_exact_host_port_pairs() -> None:
    """An allowed host:port passes; the same host on another port does not."""
    refuse_internal_address("http://127.0.0.1:8080/feed", frozenset({"127.0.0.1:8080"}))
    with pytest.raises(InputError):
        refuse_internal_address("http://127.0.0.1:8081/feed", frozenset({"127.0.0.1:8080"}))


def test_public_and_unresolvable_hosts_pass() -> None:
    """A public address passes; a name that does not resolve now is left to the refresh."""
    refuse_internal_address("https://93.184.215.14/feed")
    refuse_internal_address("https://no-such-host.invalid/feed")


def test_a_database_that_had_a_source_is_never_new_again(engine: Engine) -> None:
    """Removing the last source does not make the database look new."""
    with session_scope(engine) as session:
        assert never_had_sources(session)
        source = add_source(session, "https://feeds.example/rss.xml")
        assert not never_had_sources(session)
    with session_scope(engine) as session:
        remove_source(session, source.id)
    with session_scope(engine) as session:
        assert not never_had_sources(session)


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
