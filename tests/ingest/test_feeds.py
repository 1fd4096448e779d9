"""Feed parsing, feed detection and feed discovery."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from ingest.decoding import decode_body
from ingest.feeds import (
    FeedEntry,
    MalformedFeed,
    discover_feed_links,
    looks_like_feed,
    parse_feed,
)
from ingest.fetch import FetchPolicy, SafeFetcher
from tests.ingest.conftest import FIXTURES, LocalServer


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_rss2_feed_entries() -> None:
    """RSS 2.0 items become entries with canonical URLs, UTC dates, authors and plain summaries."""
    feed = parse_feed(fixture("rss.xml"), "https://courier.example/feeds/rss.xml")
    assert feed.title == "The Saltmere Courier"
    assert feed.entries[0] == FeedEntry(
        url="https://courier.example/harbour/mill",
        title="Saltmere votes to restore its tidal mill",
        published_at=datetime(2024, 3, 14, 9, 30, tzinfo=UTC),
        author="Imogen Tarrant",
        summary="The council voted seven to two to restore the derelict mill at the mouth of "
        "the Wren.",
        text="The council voted seven to two to restore the derelict mill at the mouth of "
        "the Wren.",
    )
    sea_wall = feed.entries[1]
    assert sea_wall.url == "https://courier.example/local/sea-wall"
    assert sea_wall.published_at == datetime(2024, 3, 13, 16, 5, tzinfo=UTC)
    assert sea_wall.author == "Tomas Vey"
    assert feed.entries[2].url == "https://courier.example/sport/rowing-club-wins?page=2"
    assert feed.entries[2].summary == "The Wren Otters beat Northgate by two lengths."


def test_rss_duplicates_and_linkless_items_are_dropped() -> None:
    """Items whose canonical URL repeats, or that have no link, are left out."""
    feed = parse_feed(fixture("rss.xml"), "https://courier.example/feeds/rss.xml")
    urls = [e.url for e in feed.entries]
    assert len(urls) == len(set(urls)) == 3
    assert all(e.title != "An item with no link at all" for e in feed.entries)


def test_atom_feed_entries() -> None:
    """Atom entries use the alternate link (not the enclosure), author name and published date."""
    feed = parse_feed(fixture("atom.xml"), "https://gazette.example/atom.xml")
    assert feed.title == "Northgate Gazette"
    library, market = feed.entries
    assert library.url == "https://gazette.example/community/library-hours"
    assert library.published_at == datetime(2024, 3, 15, 5, 30, tzinfo=UTC)
    assert library.author == "Ines Marlow"
    assert library.summary == "From April the library will stay open until six."
    assert market.url == "https://gazette.example/town/market-square"
    assert market.published_at == datetime(2024, 3, 14, 12, 0, tzinfo=UTC)
    assert market.summary == "The contractor is waiting for granite setts from the quarry."


def test_dates_are_timezone_aware() -> None:
    """Every published_at is aware and in UTC."""
    for name in ("rss.xml", "atom.xml", "relative.xml"):
        for entry in parse_feed(fixture(name), "https://x.example/feed").entries:
            assert entry.published_at is not None
            assert entry.published_at.utcoffset() is not None
            assert entry.published_at.tzinfo == UTC


def test_relative_links_resolve_against_the_feed_url() -> None:
    """Root-relative, document-relative and ../ links become absolute canonical URLs."""
    feed = parse_feed(fixture("relative.xml"), "https://wren.example/news/feed.xml")
    assert [e.url for e in feed.entries] == [
        "https://wren.example/stories/orchard-trees",
        "https://wren.example/news/stories/hall-roof",
        "https://wren.example/archive/footbridge.html",
    ]


def test_malformed_feed_with_entries_is_used() -> None:
    """A feed with XML errors still yields the entries feedparser recovered."""
    feed = parse_feed(fixture("malformed.xml"), "https://courier.example/late.xml")
    assert [e.url for e in feed.entries] == [
        "https://courier.example/harbour/fog-warning",
        "https://courier.example/harbour/kayakers",
    ]
    assert (
        feed.entries[0].summary == "Small boats are advised to stay in port & wait for it to lift."
    )


def test_broken_feed_without_entries_raises() -> None:
    """A feed with errors and no entries raises MalformedFeed naming the URL."""
    with pytest.raises(MalformedFeed, match=r"^https://x\.example/broken\.xml: malformed feed"):
        parse_feed(fixture("broken.xml"), "https://x.example/broken.xml")


def test_html_page_is_not_a_feed() -> None:
    """An HTML page given to parse_feed raises MalformedFeed."""
    with pytest.raises(MalformedFeed):
        parse_feed(fixture("article.html"), "https://courier.example/harbour/mill")


def test_body_is_never_treated_as_a_path_or_url() -> None:
    """A body that looks like a file path or URL is parsed as content, not opened."""
    for body in (b"/etc/hostname", b"https://example.com/feed.xml"):
        with pytest.raises(MalformedFeed):
            parse_feed(body, "https://x.example/feed")


def test_empty_but_valid_feed_has_no_entries() -> None:
    """A well-formed RSS feed with no items parses to an empty entry list."""
    body = b'<?xml version="1.0"?><rss version="2.0"><channel><title>Quiet</title></channel></rss>'
    feed = parse_feed(body, "https://x.example/feed")
    assert feed.title == "Quiet"
    assert feed.entries == []


def test_json_feed_entries() -> None:
    """JSON Feed items become entries like RSS items do."""
    body = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "Estuary Notes",
            "items": [
                {
                    "id": "1",
                    "url": "/notes/heron-count?utm_source=json",
                    "title": "Heron count up for the second winter",
                    "date_published": "2024-03-01T08:00:00+01:00",
                    "authors": [{"name": "Lotte Brandt"}],
                    "content_html": "<p>Volunteers counted <b>41</b> herons.</p>",
                },
                {"id": "2", "title": "No URL, skipped"},
            ],
        }
    ).encode()
    feed = parse_feed(body, "https://notes.example/feed.json")
    assert feed.title == "Estuary Notes"
    assert feed.entries == [
        FeedEntry(
            url="https://notes.example/notes/heron-count",
            title="Heron count up for the second winter",
            published_at=datetime(2024, 3, 1, 7, 0, tzinfo=UTC),
            author="Lotte Brandt",
            summary="Volunteers counted 41 herons.",
            text="Volunteers counted 41 herons.",
        )
    ]


def test_full_text_keeps_its_paragraphs_beside_the_one_line_summary() -> None:
    """An item's content:encoded is its text, paragraph by paragraph; the teaser stays summary."""
    body = (
        b'<?xml version="1.0"?><rss version="2.0" '
        b'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>Post</title>'
        b"<item><title>Lock gates</title><link>https://post.example/locks</link>"
        b"<description>Dock to close for six weeks.</description>"
        b"<content:encoded><![CDATA[<p>The lock gates will be replaced this summer.</p>"
        b"<p>Boats must use the  outer   harbour until\nAugust.</p>]]></content:encoded>"
        b"</item></channel></rss>"
    )
    (entry,) = parse_feed(body, "https://post.example/feed").entries
    assert entry.summary == "Dock to close for six weeks."
    assert entry.text == (
        "The lock gates will be replaced this summer.\n\n"
        "Boats must use the outer harbour until August."
    )


@pytest.mark.parametrize(
    ("content_type", "name", "expected"),
    [
        ("application/rss+xml", "rss.xml", True),
        ("application/atom+xml; charset=utf-8", "atom.xml", True),
        ("text/xml", "relative.xml", True),
        ("application/xml", "atom.xml", True),
        ("text/html", "rss.xml", True),
        (None, "rss.xml", True),
        ("text/html", "article.html", False),
        ("text/html", "with_feed.html", False),
        ("application/xml", "article.html", False),
        ("image/png", "rss.xml", False),
    ],
)
def test_looks_like_feed(content_type: str | None, name: str, expected: bool) -> None:
    """Feed types say yes; ambiguous types and mislabelled feeds are decided by the root element."""
    assert looks_like_feed(content_type, fixture(name)) is expected


def test_looks_like_feed_json() -> None:
    """A JSON body is a feed only if it declares a jsonfeed.org version."""
    feed = b'{"version": "https://jsonfeed.org/version/1.1", "items": []}'
    assert looks_like_feed("application/json", feed)
    assert looks_like_feed("application/feed+json", b"{}")
    assert not looks_like_feed("application/json", b'{"status": "ok"}')


def test_discover_feed_links() -> None:
    """<link rel=alternate> RSS/Atom hrefs come back absolute, canonical, deduplicated, in order."""
    html = fixture("with_feed.html").decode()
    assert discover_feed_links(html, "https://gazette.example/index.html") == [
        "https://gazette.example/news/feeds/all.rss",
        "https://gazette.example/atom.xml",
    ]


def test_discover_feed_links_without_base_tag() -> None:
    """Without <base>, hrefs resolve against the page URL; pages without feeds give []."""
    html = '<link rel="alternate" type="application/atom+xml" href="feed.atom">'
    assert discover_feed_links(html, "https://x.example/blog/") == [
        "https://x.example/blog/feed.atom"
    ]
    assert discover_feed_links(fixture("article_ferry.html").decode(), "https://x.example/") == []


async def test_fetch_then_parse_feed_from_local_server(web_server: LocalServer) -> None:
    """A feed fetched over HTTP (served as text/xml) is recognised and parsed."""
    async with SafeFetcher(FetchPolicy(allow_hosts=frozenset({web_server.host_port}))) as fetcher:
        result = await fetcher.fetch(web_server.url("/feeds/relative.xml"))
    assert looks_like_feed(result.content_type, result.body)
    feed = parse_feed(result.body, result.url)
    assert feed.entries[0].url == web_server.url("/stories/orchard-trees")


async def test_discover_then_fetch_advertised_feed(web_server: LocalServer) -> None:
    """A page's advertised feed link can be followed to a parseable feed."""
    async with SafeFetcher(FetchPolicy(allow_hosts=frozenset({web_server.host_port}))) as fetcher:
        page = await fetcher.fetch(web_server.url("/articles/mill.html"))
        links = discover_feed_links(decode_body(page), page.url)
        assert links == [web_server.url("/feeds/rss.xml")]
        feed = parse_feed((await fetcher.fetch(links[0])).body, links[0])
    assert feed.title == "The Saltmere Courier"
