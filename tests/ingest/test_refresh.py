"""Refreshing feeds, pages and folders from a local web server: articles, health, politeness."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from ingest.db import session_scope
from ingest.errors import InputError
from ingest.fetch import FetchPolicy, SafeFetcher
from ingest.models import Article, Passage, Source
from ingest.refresh import DEFAULT_INTERVAL, Backoff, refresh_source, refresh_sources
from ingest.sources import add_source, list_sources, remove_source
from tests.ingest.conftest import HeldFetcher, LocalServer

# Every test records connects, and any connect to something other than 127.0.0.1 fails.
pytestmark = pytest.mark.usefixtures("connect_log")

NOW = datetime(2024, 3, 20, 12, 0, tzinfo=UTC)
FURNITURE = ["cookies", "Accept all", "Agree", "Subscribe", "Read next", "Popular this week"]


@pytest.fixture
async def fetcher(web_server: LocalServer) -> AsyncIterator[SafeFetcher]:
    async with SafeFetcher(FetchPolicy(allow_hosts=frozenset({web_server.host_port}))) as f:
        yield f


@dataclass
class Dynamic:
    """Responses under a prefix of their own that a test can change between refreshes."""

    server: LocalServer
    prefix: str

    def url(self, name: str) -> str:
        return self.server.url(f"{self.prefix}/{name}")

    def put(self, name: str, body: str, content_type: str = "text/html; charset=utf-8") -> str:
        with self.server.lock:
            self.server.dynamic[f"{self.prefix}/{name}"] = (body.encode(), content_type)
        return self.url(name)

    def fetches(self, name: str) -> int:
        return len(self.server.requests_to(f"{self.prefix}/{name}"))


@pytest.fixture
def dyn(web_server: LocalServer) -> Iterator[Dynamic]:
    dynamic = Dynamic(web_server, f"/dyn/{uuid.uuid4().hex[:8]}")
    yield dynamic
    with web_server.lock:
        for path in [p for p in web_server.dynamic if p.startswith(dynamic.prefix)]:
            del web_server.dynamic[path]


def story(title: str, *paragraphs: str) -> str:
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title>
<meta property="og:type" content="article"><meta property="og:site_name" content="Harbour Post">
</head><body><nav><a href="/">Home</a> <a href="/subscribe">Subscribe</a></nav>
<article><h1>{title}</h1>{body}</article><footer>All rights reserved</footer></body></html>"""


def rss(*items: tuple[str, str, str]) -> str:
    """An RSS 2.0 feed of (title, link, pubDate) items."""
    entries = "".join(
        f"<item><title>{title}</title><link>{link}</link><pubDate>{date}</pubDate></item>"
        for title, link, date in items
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Harbour Post</title>'
        f"{entries}</channel></rss>"
    )


LOCKS = (
    "The harbour authority will replace the lock gates at the mouth of the old dock this "
    "summer, closing the dock to boats for six weeks from the middle of July."
)
LOCKS_UPDATED = (
    "The harbour authority has postponed the replacement of the lock gates until next spring, "
    "after the steel fabricator said it could not deliver the new gates before October."
)
FISH = (
    "The fish market on the east quay will open an hour earlier on weekdays from Monday, so "
    "that restaurant buyers can collect their orders before the morning traffic."
)


def add(engine: Engine, location: str, name: str | None = None, guild_id: int = 0) -> int:
    with session_scope(engine) as session:
        return add_source(session, location, name, guild_id).id


def source(engine: Engine, source_id: int) -> Source:
    with session_scope(engine) as session:
        found = session.get(Source, source_id)
        assert found is not None
        return found


def articles(engine: Engine, source_id: int) -> list[Article]:
    with session_scope(engine) as session:
        query = select(Article).where(Article.source_id == source_id).order_by(Article.key)
        return list(session.scalars(query))


def passage_ids(engine: Engine, source_id: int) -> set[int]:
    with session_scope(engine) as session:
        query = select(Passage.id).join(Article).where(Article.source_id == source_id)
        return set(session.scalars(query))


def counter(web_server: LocalServer, *paths: str) -> Callable[[], int]:
    """Requests made to ``paths`` since this call."""
    before = sum(len(web_server.requests_to(p)) for p in paths)
    return lambda: sum(len(web_server.requests_to(p)) for p in paths) - before


# ------------------------------------------------------------------ feeds and pages


async def test_rss_feed_stores_the_story_text_of_each_entry(
    engine: Engine, fetcher: SafeFetcher, web_server: LocalServer
) -> None:
    """An RSS feed's entries are fetched and stored as articles without banners or menus."""
    source_id = add(engine, web_server.url("/site/courier/feed.xml"), "Courier")
    (outcome,) = await refresh_sources(engine, fetcher, now=NOW)
    assert outcome.status == "ok" and outcome.kind == "feed"
    assert (outcome.added, outcome.entries_failed) == (2, 1)
    assert "missing.html: HTTP 404" in outcome.problems[0]
    mill, seawall = articles(engine, source_id)
    # Canonical keys: tracking parameters and fragments are gone, duplicates stored once.
    assert mill.key == web_server.url("/site/courier/mill.html")
    assert seawall.key == web_server.url("/site/courier/seawall.html")
    assert mill.title == "Saltmere votes to restore its tidal mill"
    assert mill.body.startswith("Saltmere town council voted seven to two")
    for article in (mill, seawall):
        assert article.outlet == "The Saltmere Courier"
        for phrase in FURNITURE:
            assert phrase not in article.body, phrase
    # The page has no byline or date; the feed entry fills them in.
    assert seawall.author == "Tomas Vey"
    assert seawall.published_at == datetime(2024, 3, 13, 16, 5, tzinfo=UTC)
    row = source(engine, source_id)
    assert row.kind == "feed" and row.last_success_at == NOW and row.last_error is None
    assert row.etag is not None and row.last_modified is not None


async def test_atom_feed_with_relative_links_stores_its_entries(
    sqlite_engine: Engine, fetcher: SafeFetcher, web_server: LocalServer
) -> None:
    """Atom entries with xml:base-relative links are fetched, with author and date."""
    source_id = add(sqlite_engine, web_server.url("/site/gazette/atom.xml"))
    (outcome,) = await refresh_sources(sqlite_engine, fetcher, now=NOW)
    assert (outcome.status, outcome.added, outcome.entries_failed) == ("ok", 2, 0)
    library, market = articles(sqlite_engine, source_id)
    assert library.url == web_server.url("/site/gazette/library.html")
    assert library.author == "Ines Marlow"  # only the feed names the author
    assert library.published_at == datetime(2024, 3, 15, 5, 30, tzinfo=UTC)
    assert market.key == web_server.url("/site/gazette/market.html")
    assert "granite setts" in market.body and "Agree" not in market.body
    assert market.outlet == "Northgate Gazette"


async def test_home_page_advertising_a_feed_becomes_that_feed(
    sqlite_engine: Engine, fetcher: SafeFetcher, web_server: LocalServer
) -> None:
    """A site's home page is followed to the feed its <link rel="alternate"> names."""
    source_id = add(sqlite_engine, web_server.url("/site/gazette/index.html"), "Gazette")
    (outcome,) = await refresh_sources(sqlite_engine, fetcher, now=NOW)
    assert (outcome.status, outcome.kind, outcome.added) == ("ok", "feed", 2)
    row = source(sqlite_engine, source_id)
    assert row.kind == "feed" and row.name == "Gazette"
    assert row.location == web_server.url("/site/gazette/atom.xml")


async def test_article_page_stays_a_single_page_despite_its_feed_link(
    sqlite_engine: Engine, fetcher: SafeFetcher, web_server: LocalServer
) -> None:
    """An article page that advertises its site's feed is stored as that one article."""
    feed_fetches = counter(web_server, "/feeds/rss.xml")
    source_id = add(sqlite_engine, web_server.url("/articles/mill.html?utm_source=chat"))
    (outcome,) = await refresh_sources(sqlite_engine, fetcher, now=NOW)
    assert (outcome.status, outcome.kind, outcome.added) == ("ok", "page", 1)
    assert feed_fetches() == 0
    (article,) = articles(sqlite_engine, source_id)
    assert article.key == web_server.url("/articles/mill.html")
    assert article.author == "Imogen Tarrant" and "cookies" not in article.body


async def test_feed_url_given_directly_is_detected_from_its_content(
    sqlite_engine: Engine, fetcher: SafeFetcher, web_server: LocalServer
) -> None:
    """A feed served as text/xml is read as a feed; if no entry can be read, that is an error."""
    add(sqlite_engine, web_server.url("/feeds/relative.xml"))
    (outcome,) = await refresh_sources(sqlite_engine, fetcher, now=NOW)
    # Its relative links resolve on the local server, which has no such pages; the kind is
    # only recorded once a fetch succeeds.
    assert (outcome.kind, outcome.status) == ("web", "error")
    assert "none of the 3 new entries could be read" in (outcome.error or "")
    assert "(first: " + web_server.url("/stories/orchard-trees: HTTP 404") in (outcome.error or "")


async def test_recoverable_malformed_feed_is_still_used(
    sqlite_engine: Engine, fetcher: SafeFetcher, web_server: LocalServer
) -> None:
    """A feed cut off mid-document still yields the entries that could be read."""
    add(sqlite_engine, web_server.url("/site/courier/malformed.xml"))
    (outcome,) = await refresh_sources(sqlite_engine, fetcher, now=NOW)
    assert (outcome.status, outcome.added) == ("ok", 1)


async def test_page_in_latin1_is_decoded_correctly(
    sqlite_engine: Engine, fetcher: SafeFetcher, web_server: LocalServer
) -> None:
    """A page declaring ISO-8859-1 only in a meta tag keeps its accented letters."""
    source_id = add(sqlite_engine, web_server.url("/pages/latin1.html"))
    (outcome,) = await refresh_sources(sqlite_engine, fetcher, now=NOW)
    assert outcome.status == "ok"
    (article,) = articles(sqlite_engine, source_id)
    assert article.title == "Café on the quay reopens"
    assert "crème brûlée" in article.body


# ------------------------------------------------------------------ politeness


async def test_unchanged_feed_costs_one_304_and_no_article_fetches(
    sqlite_engine: Engine, fetcher: SafeFetcher, web_server: LocalServer
) -> None:
    """The second refresh sends the stored ETag, gets 304 and fetches no article page."""
    source_id = add(sqlite_engine, web_server.url("/site/courier/feed.xml"))
    await refresh_sources(sqlite_engine, fetcher, now=NOW)
    etag = source(sqlite_engine, source_id).etag
    pages = counter(web_server, "/site/courier/mill.html", "/site/courier/seawall.html")
    feed = counter(web_server, "/site/courier/feed.xml")
    later = NOW + timedelta(hours=2)
    (outcome,) = await refresh_sources(sqlite_engine, fetcher, now=later)
    assert outcome.status == "not_modified"
    assert (feed(), pages()) == (1, 0)
    assert web_server.requests_to("/site/courier/feed.xml")[-1].headers["if-none-match"] == etag
    row = source(sqlite_engine, source_id)
    assert row.last_success_at == later and len(articles(sqlite_engine, source_id)) == 2


async def test_changed_feed_fetches_only_its_new_entries(
    sqlite_engine: Engine, fetcher: SafeFetcher, dyn: Dynamic
) -> None:
    """When a feed gains an entry, only that entry's page is fetched."""
    first = ("Lock gates", dyn.put("locks.html", story("Lock gates", LOCKS)), "Mon, 18 Mar 2024")
    dyn.put("feed.xml", rss(first), "application/rss+xml")
    source_id = add(sqlite_engine, dyn.url("feed.xml"))
    await refresh_sources(sqlite_engine, fetcher, now=NOW)
    second = ("Fish market", dyn.put("fish.html", story("Fish market", FISH)), "Tue, 19 Mar 2024")
    dyn.put("feed.xml", rss(second, first), "application/rss+xml")
    (outcome,) = await refresh_sources(sqlite_engine, fetcher, force=True, now=NOW)
    assert (outcome.status, outcome.added, outcome.unchanged) == ("ok", 1, 0)
    assert (dyn.fetches("locks.html"), dyn.fetches("fish.html")) == (1, 1)
    assert len(articles(sqlite_engine, source_id)) == 2


async def test_rate_limited_source_waits_as_long_as_retry_after_asks(
    sqlite_engine: Engine, fetcher: SafeFetcher, web_server: LocalServer
) -> None:
    """A 429 with Retry-After: 120 is recorded and the source is not fetched before then."""
    source_id = add(sqlite_engine, web_server.url("/limited"))
    interval = timedelta(seconds=10)
    (outcome,) = await refresh_sources(sqlite_engine, fetcher, now=NOW, interval=interval)
    assert outcome.status == "error" and "rate limited (HTTP 429)" in (outcome.error or "")
    row = source(sqlite_engine, source_id)
    assert row.last_error == outcome.error and row.last_error_at == NOW and row.failures == 1
    assert row.next_fetch_at is not None and row.next_fetch_at >= NOW + timedelta(seconds=120)
    hits = counter(web_server, "/limited")
    early = NOW + timedelta(seconds=60)
    (skipped,) = await refresh_sources(sqlite_engine, fetcher, now=early, interval=interval)
    assert skipped.status == "skipped" and skipped.next_fetch_at == row.next_fetch_at
    assert hits() == 0
    await refresh_sources(sqlite_engine, fetcher, now=NOW + timedelta(seconds=121))
    assert hits() == 1


async def test_rate_limited_article_pages_delay_the_next_refresh(
    sqlite_engine: Engine, fetcher: SafeFetcher, web_server: LocalServer, dyn: Dynamic
) -> None:
    """An entry page answering 429 is retried later; the feed is fetched whole next time."""
    good = ("Lock gates", dyn.put("locks.html", story("Lock gates", LOCKS)), "Mon, 18 Mar 2024")
    busy = ("Busy", web_server.url("/limited"), "Mon, 18 Mar 2024")
    dyn.put("feed.xml", rss(good, busy), "application/rss+xml")
    source_id = add(sqlite_engine, dyn.url("feed.xml"))
    interval = timedelta(seconds=10)
    (outcome,) = await refresh_sources(sqlite_engine, fetcher, now=NOW, interval=interval)
    assert (outcome.status, outcome.added, outcome.entries_failed) == ("ok", 1, 1)
    assert outcome.next_fetch_at is not None
    assert outcome.next_fetch_at >= NOW + timedelta(seconds=120)
    assert "retried at the next refresh" in outcome.problems[-1]
    assert source(sqlite_engine, source_id).etag is None  # so the 429 entry is retried


async def test_failures_back_off_and_a_success_clears_the_error(
    sqlite_engine: Engine, fetcher: SafeFetcher, dyn: Dynamic
) -> None:
    """Repeated failures push the next attempt further out; success resets the source."""
    source_id = add(sqlite_engine, dyn.url("page.html"))
    waits = []
    for attempt in range(3):
        (outcome,) = await refresh_sources(sqlite_engine, fetcher, now=NOW, force=True)
        assert outcome.status == "error" and "HTTP 404" in (outcome.error or "")
        assert source(sqlite_engine, source_id).failures == attempt + 1
        assert outcome.next_fetch_at is not None
        waits.append(outcome.next_fetch_at - NOW)
    assert DEFAULT_INTERVAL * 0.8 < waits[0] < waits[1] < waits[2]
    dyn.put("page.html", story("Lock gates", LOCKS))
    (outcome,) = await refresh_sources(sqlite_engine, fetcher, now=NOW, force=True)
    assert outcome.status == "ok"
    row = source(sqlite_engine, source_id)
    assert (row.failures, row.last_error, row.last_error_at) == (0, None, None)
    assert row.last_success_at == NOW and row.kind == "page"


async def test_next_fetches_are_spread_across_sources(
    sqlite_engine: Engine, fetcher: SafeFetcher, dyn: Dynamic
) -> None:
    """Sources refreshed together are next due at different times around the interval."""
    for n in range(5):
        add(sqlite_engine, dyn.put(f"p{n}.html", story(f"Story {n}", LOCKS, FISH)))
    outcomes = await refresh_sources(sqlite_engine, fetcher, now=NOW)
    due = [o.next_fetch_at for o in outcomes]
    assert all(o.status == "ok" for o in outcomes)
    assert len(set(due)) == 5
    assert all(d is not None and 0.85 <= (d - NOW) / DEFAULT_INTERVAL <= 1.15 for d in due)
    # Nothing is due right after, everything is due after the longest period.
    skipped = await refresh_sources(sqlite_engine, fetcher, now=NOW + timedelta(minutes=1))
    assert {o.status for o in skipped} == {"skipped"}
    later = await refresh_sources(sqlite_engine, fetcher, now=NOW + DEFAULT_INTERVAL * 1.2)
    assert {o.status for o in later} == {"not_modified"}


# ------------------------------------------------------------------ bad inputs


async def test_each_bad_source_fails_alone_with_a_clear_error(
    sqlite_engine: Engine, fetcher: SafeFetcher, web_server: LocalServer
) -> None:
    """Bombs, binaries, huge or broken feeds and private redirects fail only their source."""
    bad = {
        "/bomb.html": "body larger than",
        "/binary-as-html": "not text",
        "/huge/streamed.xml": "body larger than",
        "/feeds/broken.xml": "malformed feed",
        "/redirect/chain/1": "refused: resolves to a link-local address (169.254.169.254)",
        "/redirect/private": "refused: resolves to a private address (10.0.0.1)",
        "/pages/index.html": "no article text found",
        "/status/500": "HTTP 500",
    }
    ids = {add(sqlite_engine, web_server.url(path)): expected for path, expected in bad.items()}
    good = add(sqlite_engine, web_server.url("/site/gazette/atom.xml"))
    outcomes = {o.source_id: o for o in await refresh_sources(sqlite_engine, fetcher, now=NOW)}
    assert outcomes[good].status == "ok" and outcomes[good].added == 2
    for source_id, expected in ids.items():
        outcome = outcomes[source_id]
        assert outcome.status == "error", outcome
        assert expected in (outcome.error or ""), outcome.error
        assert "\n" not in (outcome.error or "")
        row = source(sqlite_engine, source_id)
        assert row.last_error == outcome.error and row.kind == "web"
        assert articles(sqlite_engine, source_id) == []


async def test_redirect_into_a_private_address_never_connects_there(
    sqlite_engine: Engine, fetcher: SafeFetcher, web_server: LocalServer, connect_log: list
) -> None:
    """A source redirecting to the cloud metadata address is refused before connecting."""
    add(sqlite_engine, web_server.url("/redirect/chain/1"))
    (outcome,) = await refresh_sources(sqlite_engine, fetcher, now=NOW)
    assert outcome.status == "error" and "169.254.169.254" in (outcome.error or "")
    assert {host for host, _ in connect_log} == {"127.0.0.1"}


async def test_feed_entry_pointing_to_a_private_address_is_skipped(
    sqlite_engine: Engine, fetcher: SafeFetcher, dyn: Dynamic, connect_log: list
) -> None:
    """A feed entry linking to an internal address is refused; the other entries are stored."""
    good = ("Lock gates", dyn.put("locks.html", story("Lock gates", LOCKS)), "Mon, 18 Mar 2024")
    evil = ("Metadata", "http://169.254.169.254/latest/meta-data/", "Mon, 18 Mar 2024")
    dyn.put("feed.xml", rss(evil, good), "application/rss+xml")
    add(sqlite_engine, dyn.url("feed.xml"))
    (outcome,) = await refresh_sources(sqlite_engine, fetcher, now=NOW)
    assert (outcome.status, outcome.added, outcome.entries_failed) == ("ok", 1, 1)
    assert "link-local" in outcome.problems[0]
    assert {host for host, _ in connect_log} == {"127.0.0.1"}


# ------------------------------------------------------------------ updates and removals


async def test_updated_page_replaces_its_passages(
    engine: Engine, fetcher: SafeFetcher, dyn: Dynamic
) -> None:
    """A page whose story changed is stored again and its old passages are gone."""
    url = dyn.put("locks.html", story("Lock gates", LOCKS, FISH))
    source_id = add(engine, url)
    await refresh_sources(engine, fetcher, now=NOW)
    before = passage_ids(engine, source_id)
    dyn.put("locks.html", story("Lock gates postponed", LOCKS_UPDATED, FISH))
    later = NOW + timedelta(hours=1)
    (outcome,) = await refresh_sources(engine, fetcher, now=later)
    assert (outcome.status, outcome.added, outcome.updated) == ("ok", 0, 1)
    (article,) = articles(engine, source_id)
    assert article.title == "Lock gates postponed" and "postponed" in article.body
    assert "closing the dock" not in article.body
    assert not before & passage_ids(engine, source_id)


async def test_changed_feed_entry_is_fetched_again_and_replaced(
    sqlite_engine: Engine, fetcher: SafeFetcher, dyn: Dynamic
) -> None:
    """When the feed re-dates an entry, its page is fetched again and the article updated."""
    link = dyn.put("locks.html", story("Lock gates", LOCKS))
    dyn.put("feed.xml", rss(("Lock gates", link, "Mon, 18 Mar 2024")), "application/rss+xml")
    source_id = add(sqlite_engine, dyn.url("feed.xml"))
    await refresh_sources(sqlite_engine, fetcher, now=NOW)
    dyn.put("locks.html", story("Lock gates postponed", LOCKS_UPDATED))
    dyn.put(
        "feed.xml",
        rss(("Lock gates postponed", link, "Wed, 20 Mar 2024")),
        "application/rss+xml",
    )
    (outcome,) = await refresh_sources(sqlite_engine, fetcher, force=True, now=NOW)
    assert (outcome.added, outcome.updated) == (0, 1)
    (article,) = articles(sqlite_engine, source_id)
    assert "postponed" in article.body and dyn.fetches("locks.html") == 2


async def test_unreadable_page_falls_back_to_the_feeds_own_text(
    sqlite_engine: Engine, fetcher: SafeFetcher, dyn: Dynamic, web_server: LocalServer
) -> None:
    """A paywalled page's story is stored from the feed's full text; a deleted page's is not."""
    item = "<item><title>{}</title><link>{}</link><pubDate>Mon, 18 Mar 2024</pubDate>{}</item>"
    full_text = f"<description>&lt;p&gt;{LOCKS}&lt;/p&gt;</description>"
    feed = "".join(
        [
            item.format("Lock gates", web_server.url("/status/403"), full_text),
            item.format(
                "Fish market", web_server.url("/status/410"), f"<description>{FISH}</description>"
            ),
            item.format(
                "Teaser", web_server.url("/status/401"), "<description>More soon.</description>"
            ),
        ]
    )
    dyn.put(
        "feed.xml",
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Harbour Post</title>{feed}'
        "</channel></rss>",
        "application/rss+xml",
    )
    source_id = add(sqlite_engine, dyn.url("feed.xml"))

    (outcome,) = await refresh_sources(sqlite_engine, fetcher, now=NOW)

    assert (outcome.status, outcome.added, outcome.entries_failed) == ("ok", 1, 2)
    (locks,) = articles(sqlite_engine, source_id)
    assert (locks.title, locks.body, locks.outlet) == ("Lock gates", LOCKS, "Harbour Post")
    assert locks.published_at == datetime(2024, 3, 18, tzinfo=UTC)
    assert any("403" in p and "the feed's own text" in p for p in outcome.problems)


async def test_article_removed_from_the_feed_stays_stored(
    sqlite_engine: Engine, fetcher: SafeFetcher, dyn: Dynamic
) -> None:
    """Articles that drop out of a feed remain quotable until the source is removed."""
    locks = ("Lock gates", dyn.put("locks.html", story("Lock gates", LOCKS)), "Mon, 18 Mar 2024")
    fish = ("Fish market", dyn.put("fish.html", story("Fish market", FISH)), "Tue, 19 Mar 2024")
    dyn.put("feed.xml", rss(fish, locks), "application/rss+xml")
    source_id = add(sqlite_engine, dyn.url("feed.xml"))
    await refresh_sources(sqlite_engine, fetcher, now=NOW)
    dyn.put("feed.xml", rss(fish), "application/rss+xml")
    (outcome,) = await refresh_sources(sqlite_engine, fetcher, force=True, now=NOW)
    assert outcome.status == "ok"
    assert len(articles(sqlite_engine, source_id)) == 2
    with session_scope(sqlite_engine) as session:
        removed = remove_source(session, source_id)
    assert removed.articles == 2 and articles(sqlite_engine, source_id) == []


async def test_local_folder_source_is_read_again(
    sqlite_engine: Engine, fetcher: SafeFetcher, tmp_path: Path
) -> None:
    """A folder added as a source picks up new and edited files on refresh."""
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "locks.txt").write_text(f"Lock gates\n\n{LOCKS}\n")
    source_id = add(sqlite_engine, str(folder))
    (first,) = await refresh_sources(sqlite_engine, fetcher, now=NOW)
    assert (first.kind, first.status, first.added) == ("local", "ok", 1)
    (folder / "locks.txt").write_text(f"Lock gates\n\n{LOCKS_UPDATED}\n")
    (folder / "fish.txt").write_text(f"Fish market\n\n{FISH}\n")
    (second,) = await refresh_sources(sqlite_engine, fetcher, now=NOW, force=True)
    assert (second.added, second.updated) == (1, 1)
    assert len(articles(sqlite_engine, source_id)) == 2


# ------------------------------------------------------------------ selection


async def test_explicit_ids_and_guilds_choose_what_is_refreshed(
    sqlite_engine: Engine, fetcher: SafeFetcher, dyn: Dynamic
) -> None:
    """`--source ID` refreshes exactly that source; a guild refreshes only its own sources."""
    mine = add(sqlite_engine, dyn.put("a.html", story("Lock gates", LOCKS)), guild_id=7)
    other = add(sqlite_engine, dyn.put("b.html", story("Fish market", FISH)), guild_id=8)
    (outcome,) = await refresh_sources(sqlite_engine, fetcher, guild_id=7, now=NOW)
    assert outcome.source_id == mine and outcome.status == "ok"
    (outcome,) = await refresh_sources(sqlite_engine, fetcher, source_ids=[other], now=NOW)
    assert outcome.source_id == other and outcome.status == "ok"
    # An explicit id is refreshed even when it is not due.
    outcome = await refresh_source(sqlite_engine, fetcher, other, now=NOW)
    assert outcome.status == "not_modified"
    with pytest.raises(InputError, match="no source with id 99"):
        await refresh_sources(sqlite_engine, fetcher, source_ids=[99])
    with pytest.raises(InputError, match=f"no source with id {other} on this server"):
        await refresh_sources(sqlite_engine, fetcher, source_ids=[other], guild_id=7)


async def test_sources_from_ingest_are_not_refreshed(
    sqlite_engine: Engine, fetcher: SafeFetcher, tmp_path: Path
) -> None:
    """Articles loaded with `newsbot ingest` have no location to re-read and are left alone."""
    from ingest.pipeline import ingest_paths

    (tmp_path / "a.txt").write_text(f"Lock gates\n\n{LOCKS}\n")
    report = ingest_paths(sqlite_engine, [tmp_path], "notes")
    assert await refresh_sources(sqlite_engine, fetcher, now=NOW) == []
    (outcome,) = await refresh_sources(sqlite_engine, fetcher, source_ids=[report.source_id])
    assert outcome.status == "skipped" and "newsbot ingest" in (outcome.error or "")


async def test_progress_reports_each_refreshed_source(
    sqlite_engine: Engine, fetcher: SafeFetcher, dyn: Dynamic
) -> None:
    """The progress callback counts refreshed sources up to the total."""
    for n in range(3):
        add(sqlite_engine, dyn.put(f"p{n}.html", story(f"Story {n}", LOCKS)))
    calls: list[tuple[int, int]] = []
    await refresh_sources(
        sqlite_engine, fetcher, now=NOW, progress=lambda d, t: calls.append((d, t))
    )
    assert calls[0] == (0, 3) and calls[-1] == (3, 3)


async def test_refresh_source_names_the_articles_and_passages_it_stored(
    sqlite_engine: Engine, fetcher: SafeFetcher, web_server: LocalServer
) -> None:
    """Refreshing one source returns the ids of the articles and passages it stored."""
    source_id = add(sqlite_engine, web_server.url("/site/courier/feed.xml"))
    outcome = await refresh_source(sqlite_engine, fetcher, source_id, now=NOW)
    stored = {a.id for a in articles(sqlite_engine, source_id)}
    assert len(stored) == 2 and sorted(outcome.article_ids) == sorted(stored)
    assert set(outcome.passage_ids) == passage_ids(sqlite_engine, source_id)
    assert len(outcome.passage_ids) == outcome.passages_added > 0
    # Nothing changed: nothing to hand on.
    again = await refresh_source(sqlite_engine, fetcher, source_id, now=NOW)
    assert (again.article_ids, again.passage_ids) == ([], [])


async def test_a_source_is_refreshed_once_at_a_time(
    sqlite_engine: Engine, web_server: LocalServer, dyn: Dynamic
) -> None:
    """A refresh of a source this process is already refreshing skips it as busy."""
    source_id = add(sqlite_engine, dyn.put("locks.html", story("Lock gates", LOCKS)))
    policy = FetchPolicy(allow_hosts=frozenset({web_server.host_port}))
    async with HeldFetcher(policy) as fetcher:
        first = asyncio.create_task(refresh_source(sqlite_engine, fetcher, source_id, now=NOW))
        await fetcher.started.wait()
        second = await refresh_source(sqlite_engine, fetcher, source_id, now=NOW)
        fetcher.release.set()
        done = await first
        assert second.busy and second.summary().endswith("skipped: already being refreshed")
        assert (done.status, done.added, done.busy) == ("ok", 1, False)
        # Once the first is done, the source can be refreshed again.
        again = await refresh_source(sqlite_engine, fetcher, source_id, now=NOW)
    assert (again.status, again.busy) == ("not_modified", False)  # its ETag, sent back


def test_backoff_grows_exponentially_and_is_capped() -> None:
    """Backoff doubles from the base per failure and stops at max_seconds."""
    backoff = Backoff(base_seconds=60, factor=2, max_seconds=3600)
    assert [backoff.delay(n) for n in range(0, 5)] == [0, 60, 120, 240, 480]
    assert backoff.delay(7) == 3600
    assert backoff.delay(10_000) == 3600


def test_backoff_honours_and_caps_retry_after() -> None:
    """Retry-After wins when longer than the backoff, up to max_retry_after_seconds."""
    backoff = Backoff(base_seconds=60, max_seconds=3600, max_retry_after_seconds=7200)
    assert backoff.delay(1, retry_after=600) == 600
    assert backoff.delay(3, retry_after=10) == 240
    assert backoff.delay(1, retry_after=10**9) == 7200
    assert backoff.delay(0, retry_after=-5) == 0


# ------------------------------------------------------------------ with the index


@pytest.mark.slow
async def test_removed_source_leaves_the_index_on_next_sync(
    sqlite_engine: Engine, fetcher: SafeFetcher, web_server: LocalServer, embedder, tmp_path: Path
) -> None:
    """Refreshed passages are embedded incrementally; removing the source drops its vectors."""
    from index.search import Retriever

    retriever = Retriever(sqlite_engine, embedder, tmp_path / "index")
    source_id = add(sqlite_engine, web_server.url("/site/gazette/atom.xml"))
    await refresh_sources(sqlite_engine, fetcher, now=NOW)
    ids = passage_ids(sqlite_engine, source_id)
    report = retriever.sync()
    assert report.added == len(ids) > 0
    assert {hit.passage_id for hit in retriever.search("library opening hours", k=5)} & ids
    # An unchanged refresh embeds nothing.
    await refresh_sources(sqlite_engine, fetcher, now=NOW, force=True)
    assert retriever.sync().added == 0
    with session_scope(sqlite_engine) as session:
        remove_source(session, source_id)
    report = retriever.sync()
    assert report.removed == len(ids) and report.total == 0
    assert retriever.search("library opening hours", k=5) == []


@pytest.mark.slow
async def test_wire_story_from_three_outlets_is_quoted_once(
    sqlite_engine: Engine, fetcher: SafeFetcher, web_server: LocalServer, embedder, tmp_path: Path
) -> None:
    """The same agency paragraph carried by three outlets appears once in an answer."""
    from index.answer import Answerer
    from index.search import Retriever

    for outlet in ("courier", "gazette", "weekly"):
        add(sqlite_engine, web_server.url(f"/site/wire/{outlet}.html"))
    outcomes = await refresh_sources(sqlite_engine, fetcher, now=NOW)
    assert [o.added for o in outcomes] == [1, 1, 1]
    retriever = Retriever(sqlite_engine, embedder, tmp_path / "index")
    retriever.sync()
    answer = Answerer(sqlite_engine, retriever).answer(
        "How long will the Wren Valley railway close for the viaduct repairs?", k=3
    )
    assert not answer.abstained
    wire = [q for q in answer.passages if "steel deck of the Harrow viaduct" in q.text]
    assert len(wire) == 1
    # The same story was stored three times: the grouping happens when answering.
    with session_scope(sqlite_engine) as session:
        stored = [s.passages for s in list_sources(session)]
    assert stored == [3, 3, 3]


# ------------------------------------------------------------------ values too long to store


async def test_feed_with_an_etag_too_long_to_store_still_records_success(
    engine: Engine, fetcher: SafeFetcher, dyn: Dynamic, web_server: LocalServer
) -> None:
    """A 600-character ETag is treated as absent: the refresh succeeds, and so does the next."""
    entry = ("Lock gates", dyn.put("locks.html", story("Lock gates", LOCKS)), "Mon, 18 Mar 2024")
    feed = dyn.put("feed.xml", rss(entry), "application/rss+xml")
    with web_server.lock:
        web_server.etags[f"{dyn.prefix}/feed.xml"] = '"' + "e" * 600 + '"'
    source_id = add(engine, feed)
    (outcome,) = await refresh_sources(engine, fetcher, now=NOW)
    assert (outcome.status, outcome.added) == ("ok", 1), outcome.error
    row = source(engine, source_id)
    assert (row.last_success_at, row.failures, row.etag) == (NOW, 0, None)
    later = NOW + timedelta(hours=1)
    (outcome,) = await refresh_sources(engine, fetcher, now=later)
    assert outcome.status == "ok" and source(engine, source_id).last_success_at == later
    assert "if-none-match" not in web_server.requests_to(f"{dyn.prefix}/feed.xml")[-1].headers


async def test_feed_entry_with_a_url_too_long_to_store_is_skipped_alone(
    engine: Engine, fetcher: SafeFetcher, dyn: Dynamic
) -> None:
    """An entry whose link has over 2,000 characters is reported; the others are stored."""
    long_link = dyn.put("fish.html", story("Fish market", FISH)) + "?q=" + "a" * 2100
    entries = [
        ("Lock gates", dyn.put("locks.html", story("Lock gates", LOCKS)), "Mon, 18 Mar 2024"),
        ("Fish market", long_link, "Tue, 19 Mar 2024"),
    ]
    source_id = add(engine, dyn.put("feed.xml", rss(*entries), "application/rss+xml"))
    (outcome,) = await refresh_sources(engine, fetcher, now=NOW)
    assert (outcome.status, outcome.added, outcome.entries_failed) == ("ok", 1, 1), outcome.error
    assert "entry 'Fish market' skipped: URL too long" in outcome.problems[0]
    assert [a.title for a in articles(engine, source_id)] == ["Lock gates"]
    assert dyn.fetches("fish.html") == 0


# ------------------------------------------------------------------ deadlines

# Long enough for the fast pages to be fetched and extracted on a busy machine.
DEADLINE = 8.0


async def test_a_dripping_source_stops_at_its_deadline_without_delaying_the_others(
    sqlite_engine: Engine, web_server: LocalServer, dyn: Dynamic
) -> None:
    """Entry pages that drip a byte at a time stop their source at its deadline: it keeps
    what it read and says so, another source is stored in full, the rest come next time."""
    # Two sites on the one local server, so each has its own per-host connection slots.
    hosts = {"slow.test": ["127.0.0.1"], "fast.test": ["127.0.0.1"]}

    async def resolver(host: str, port: int) -> list[str]:
        return hosts[host]

    def url(host: str, name: str) -> str:
        return dyn.url(name).replace("127.0.0.1", host)

    fish = url("slow.test", "fish.html")
    dyn.put("fish.html", story("Fish market", FISH))
    dripping = [url("slow.test", f"drip-{n}.html") for n in range(2)]
    with web_server.lock:
        web_server.dripping.update(f"{dyn.prefix}/drip-{n}.html" for n in range(2))
    slow_entries = [("Fish market", fish, "Tue, 19 Mar 2024")] + [
        (f"Dripping {n}", link, "Mon, 18 Mar 2024") for n, link in enumerate(dripping)
    ]
    dyn.put("slow.xml", rss(*slow_entries), "application/rss+xml")
    locks = url("fast.test", "locks.html")
    dyn.put("locks.html", story("Lock gates", LOCKS))
    dyn.put("fast.xml", rss(("Lock gates", locks, "Mon, 18 Mar 2024")), "application/rss+xml")
    slow = add(sqlite_engine, url("slow.test", "slow.xml"), "Slow Post")
    fast = add(sqlite_engine, url("fast.test", "fast.xml"), "Fast Post")
    allow = frozenset({f"slow.test:{web_server.port}", f"fast.test:{web_server.port}"})
    async with SafeFetcher(FetchPolicy(allow_hosts=allow), resolver=resolver) as fetcher:
        outcomes = await refresh_sources(sqlite_engine, fetcher, now=NOW, deadline_seconds=DEADLINE)
        by_id = {o.source_id: o for o in outcomes}
        assert (by_id[fast].status, by_id[fast].added) == ("ok", 1)
        assert [a.title for a in articles(sqlite_engine, fast)] == ["Lock gates"]
        stopped = (
            f"stopped after {DEADLINE:g} s: read 1 of 3 new entries;"
            " the other 2 are tried at the next refresh"
        )
        assert (by_id[slow].status, by_id[slow].error, by_id[slow].added) == ("error", stopped, 1)
        assert by_id[slow].summary().endswith(f"error: {stopped}; kept 1 new, 0 updated")
        assert [a.title for a in articles(sqlite_engine, slow)] == ["Fish market"]
        assert source(sqlite_engine, slow).last_error == stopped
        # The site recovers: the next refresh fetches only the entries it did not reach.
        with web_server.lock:
            web_server.dripping.clear()
        for n in range(2):
            dyn.put(f"drip-{n}.html", story(f"Dripping {n}", LOCKS_UPDATED.replace("lock", str(n))))
        (outcome,) = await refresh_sources(
            sqlite_engine, fetcher, source_ids=[slow], now=NOW, deadline_seconds=DEADLINE
        )
    assert (outcome.status, outcome.added) == ("ok", 2)
    assert dyn.fetches("fish.html") == 1 and source(sqlite_engine, slow).last_error is None
    assert len(articles(sqlite_engine, slow)) == 3
