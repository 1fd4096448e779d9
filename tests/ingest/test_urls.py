"""URL canonicalisation and resolution."""

from __future__ import annotations

import pytest

from ingest.urls import absolute_url, canonical_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTP://Example.COM/News", "http://example.com/News"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("https://example.com:8443/a", "https://example.com:8443/a"),
        ("http://example.com:443/a", "http://example.com:443/a"),
        ("https://example.com/a#comments", "https://example.com/a"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com/a/./b/../c", "https://example.com/a/c"),
        ("http://[::1]:80/x", "http://[::1]/x"),
        ("  https://example.com/a  ", "https://example.com/a"),
    ],
)
def test_canonical_url_normalises_scheme_host_port_fragment(url: str, expected: str) -> None:
    """Scheme and host are lowercased, default ports, fragments and dot segments removed."""
    assert canonical_url(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://example.com/a?utm_source=rss&utm_medium=feed&id=7",
            "https://example.com/a?id=7",
        ),
        ("https://example.com/a?fbclid=x&gclid=y&mc_cid=z&mc_eid=w", "https://example.com/a"),
        ("https://example.com/a?UTM_Campaign=x&b=2", "https://example.com/a?b=2"),
        ("https://example.com/a?z=1&a=2&m=3", "https://example.com/a?a=2&m=3&z=1"),
        ("https://example.com/a?q=a%2Fb&flag", "https://example.com/a?flag&q=a%2Fb"),
        ("https://example.com/a?b=2&&a=1&", "https://example.com/a?a=1&b=2"),
        ("https://example.com/a?utm_source=x", "https://example.com/a"),
    ],
)
def test_canonical_url_drops_tracking_and_sorts_query(url: str, expected: str) -> None:
    """Tracking parameters go; the rest are sorted and kept byte for byte."""
    assert canonical_url(url) == expected


def test_canonical_url_is_idempotent() -> None:
    """Canonicalising a canonical URL changes nothing."""
    url = "HTTPS://News.Example.com:443/a/../b/?utm_x=1&z=%20&a=1#top"
    once = canonical_url(url)
    assert canonical_url(once) == once


def test_canonical_url_rejects_bad_ports() -> None:
    """An unparseable port raises ValueError."""
    with pytest.raises(ValueError, match=r"[Pp]ort"):
        canonical_url("https://example.com:99999/")


@pytest.mark.parametrize(
    ("base", "href", "expected"),
    [
        ("https://x.example/news/a.html", "b.html", "https://x.example/news/b.html"),
        ("https://x.example/news/a.html", "/top", "https://x.example/top"),
        ("https://x.example/news/a/b.html", "../c.html?utm_x=1#y", "https://x.example/news/c.html"),
        ("https://x.example/news/", "//cdn.x.example/f.xml", "https://cdn.x.example/f.xml"),
        ("https://x.example/news/", "HTTP://Other.example:80/", "http://other.example/"),
        ("https://x.example/news/", "\n  feed.xml \n", "https://x.example/news/feed.xml"),
        ("https://x.example/news/", "?page=2", "https://x.example/news/?page=2"),
    ],
)
def test_absolute_url_resolves_and_canonicalises(base: str, href: str, expected: str) -> None:
    """Relative hrefs resolve against the base and come back canonical."""
    assert absolute_url(base, href) == expected
