"""RSS, Atom and JSON Feed parsing, and finding a site's feeds from its HTML."""

from __future__ import annotations

import calendar
import io
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import unescape
from html.parser import HTMLParser
from typing import Any

import feedparser

from ingest.dates import parse_iso
from ingest.errors import FetchError, InputError
from ingest.sanitize import clean_text, web_link
from ingest.split import PARAGRAPH_SEPARATOR
from ingest.urls import absolute_url

logger = logging.getLogger(__name__)

__all__ = [
    "FEED_CONTENT_TYPES",
    "FeedEntry",
    "MalformedFeed",
    "ParsedFeed",
    "discover_feed_links",
    "looks_like_feed",
    "parse_feed",
]

FEED_CONTENT_TYPES = frozenset(
    {
        "application/rss+xml",
        "application/atom+xml",
        "application/rdf+xml",
        "application/feed+json",
    }
)
# Types that may or may not hold a feed; the body decides.
_AMBIGUOUS_TYPES = frozenset({"application/xml", "text/xml", "text/plain", "application/json"})

_JSON_FEED_VERSION = re.compile(rb'"version"\s*:\s*"https?://jsonfeed\.org/version/')
_XML_FEED_ROOT = re.compile(rb"<(?:[A-Za-z0-9_-]+:)?(rss|feed|RDF)[\s>/]")
_XML_PROLOGUE = re.compile(
    rb"""\A(?:\s+|<\?xml[^>]*\?>|<!--.*?-->|<!DOCTYPE[^>]*>|<\?xml-stylesheet[^>]*\?>)*""", re.S
)


class MalformedFeed(FetchError):
    """The body is not a feed we can read any entries from."""


@dataclass(frozen=True, slots=True)
class FeedEntry:
    url: str  # absolute and canonical
    title: str | None
    published_at: datetime | None  # timezone-aware (UTC)
    author: str | None
    summary: str | None  # plain text, one line: what tells a changed entry
    text: str | None = None  # the fullest text the feed gives (content or summary), paragraphs kept


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    title: str | None
    entries: list[FeedEntry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # entries skipped, and why


def looks_like_feed(content_type: str | None, body: bytes) -> bool:
    """Whether a response is a feed rather than a web page, from its type and first bytes."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in FEED_CONTENT_TYPES:
        return True
    if media and media not in _AMBIGUOUS_TYPES and media != "text/html":
        return False
    head = body[:2048].lstrip(b"\xef\xbb\xbf")
    if head.lstrip().startswith(b"{"):
        return bool(_JSON_FEED_VERSION.search(head))
    # Servers often label feeds text/html or text/xml; look at the root element instead.
    start = _XML_PROLOGUE.match(head)
    rest = head[start.end() if start else 0 :]
    return bool(_XML_FEED_ROOT.match(rest))


class _TextOnly(HTMLParser):
    _BLOCKS = frozenset({"p", "br", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in self._BLOCKS:
            self.parts.append(PARAGRAPH_SEPARATOR)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _plain_text(value: str | None) -> str | None:
    text = " ".join(_unmarked(value).split())
    return text or None


def _paragraphs(*values: str | None) -> str | None:
    """The longest of ``values`` as plain text, one paragraph per block of its HTML."""
    texts = [
        PARAGRAPH_SEPARATOR.join(
            " ".join(block.split())
            for block in _unmarked(value).split(PARAGRAPH_SEPARATOR)
            if block.strip()
        )
        for value in values
    ]
    return max(texts, key=len, default="") or None


def _unmarked(value: str | None) -> str:
    if not value:
        return ""
    if "<" not in value:
        return clean_text(unescape(value))
    parser = _TextOnly()
    parser.feed(value)
    parser.close()
    return clean_text("".join(parser.parts))


def _aware(parsed: Any) -> datetime | None:
    # feedparser normalises every date it understands to a UTC struct_time.
    if not parsed:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)
    except (OverflowError, ValueError, TypeError):
        return None


# RSS <author> is "email (Name)"; feedparser's own split mangles long TLDs, so do it here.
_EMAIL_WITH_NAME = re.compile(r"^\s*[^\s@()]+@[^\s()]+\s*\((?P<name>[^()]+)\)\s*$")


def _author(entry: Any) -> str | None:
    author = _plain_text(entry.get("author"))
    if author:
        match = _EMAIL_WITH_NAME.match(author)
        return match.group("name").strip() if match else author
    return _plain_text((entry.get("author_detail") or {}).get("name"))


def _entry_link(entry: Any) -> str | None:
    for link in entry.get("links") or []:
        if link.get("rel", "alternate") == "alternate" and link.get("href"):
            return str(link["href"])
    if entry.get("link"):
        return str(entry["link"])
    guid = entry.get("id")
    if guid and entry.get("guidislink", True) and str(guid).startswith(("http://", "https://")):
        return str(guid)
    return None


def _http_url(base_url: str, href: str | None) -> str | None:
    if not href:
        return None
    try:
        url = absolute_url(base_url, href)
    except ValueError:
        return None
    return url if url.startswith(("http://", "https://")) else None


def _entry_url(base_url: str, href: str | None, title: object, problems: list[str]) -> str | None:
    """The entry's absolute http(s) link, if it is one we can store and cite."""
    url = _http_url(base_url, href)
    if url is None:
        return None
    try:
        return web_link(url)
    except InputError as error:
        name = _plain_text(title if isinstance(title, str) else None) or "(untitled)"
        problems.append(f"{base_url}: entry {name!r} skipped: {error}")
        return None


def _unique(entries: Iterable[FeedEntry]) -> list[FeedEntry]:
    seen: set[str] = set()
    result = []
    for entry in entries:
        if entry.url not in seen:
            seen.add(entry.url)
            result.append(entry)
    return result


def _parse_json_feed(body: bytes, base_url: str) -> ParsedFeed:
    try:
        data = json.loads(body.decode("utf-8-sig", errors="replace"))
    except ValueError as exc:
        raise MalformedFeed(f"{base_url}: malformed JSON feed ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("items", []), list):
        raise MalformedFeed(f"{base_url}: malformed JSON feed (no items list)")
    entries = []
    problems: list[str] = []
    for item in data.get("items", []):
        if not isinstance(item, dict):
            continue
        url = _entry_url(
            base_url, item.get("url") or item.get("external_url"), item.get("title"), problems
        )
        if url is None:
            continue
        authors = item.get("authors") or ([item["author"]] if item.get("author") else [])
        names = [str(a["name"]) for a in authors if isinstance(a, dict) and a.get("name")]
        published = None
        if isinstance(item.get("date_published"), str):
            published = parse_iso(item["date_published"])
        texts = [item.get(key) for key in ("summary", "content_text", "content_html")]
        texts = [text if isinstance(text, str) else None for text in texts]
        summary = next((text for text in texts if text), None)
        entries.append(
            FeedEntry(
                url=url,
                title=_plain_text(item.get("title")),
                published_at=published.astimezone(UTC) if published else None,
                author=_plain_text(", ".join(names)),
                summary=_plain_text(summary),
                text=_paragraphs(*texts),
            )
        )
    title = data.get("title")
    return ParsedFeed(
        title=_plain_text(title if isinstance(title, str) else None),
        entries=_unique(entries),
        problems=problems,
    )


def parse_feed(body: bytes, base_url: str) -> ParsedFeed:
    """Parse an RSS 1/2, Atom or JSON Feed document; relative links resolve against base_url.

    A feed with syntax errors is still used if feedparser recovered entries from it; one
    with no entries and errors raises ``MalformedFeed``.
    """
    if body.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return _parse_json_feed(body, base_url)
    # A stream, never bytes or str: feedparser treats those as a URL or a file path to open.
    parsed = feedparser.parse(
        io.BytesIO(body),
        # Without a Content-Type feedparser flags every feed bozo; application/xml makes it
        # take the encoding from the BOM or XML declaration, as a feed reader should.
        response_headers={"content-location": base_url, "content-type": "application/xml"},
        sanitize_html=True,
    )
    benign = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)
    if isinstance(parsed.get("bozo_exception"), benign) and parsed.get("version"):
        parsed["bozo"] = False
    if parsed.get("bozo") and not parsed.entries:
        reason = parsed.get("bozo_exception")
        detail = " ".join(str(reason).split()) if reason else "unreadable"
        raise MalformedFeed(f"{base_url}: malformed feed ({detail})")
    if not parsed.get("version") and not parsed.entries:
        raise MalformedFeed(f"{base_url}: not an RSS or Atom feed")
    if parsed.get("bozo"):
        logger.info(
            "%s: feed has errors, using the %d entries recovered", base_url, len(parsed.entries)
        )
    entries = []
    problems: list[str] = []
    for entry in parsed.entries:
        url = _entry_url(base_url, _entry_link(entry), entry.get("title"), problems)
        if url is None:
            logger.debug(
                "%s: skipping entry without a usable link: %r", base_url, entry.get("title")
            )
            continue
        contents = [part.get("value") for part in entry.get("content") or []]
        summary = entry.get("summary") or next((value for value in contents if value), None)
        entries.append(
            FeedEntry(
                url=url,
                title=_plain_text(entry.get("title")),
                published_at=_aware(entry.get("published_parsed") or entry.get("updated_parsed")),
                author=_author(entry),
                summary=_plain_text(summary),
                text=_paragraphs(entry.get("summary"), *contents),
            )
        )
    return ParsedFeed(
        title=_plain_text(parsed.feed.get("title")), entries=_unique(entries), problems=problems
    )


_FEED_LINK_TYPES = frozenset(
    {"application/rss+xml", "application/atom+xml", "application/rdf+xml", "application/feed+json"}
)


class _FeedLinkFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name.lower(): (value or "") for name, value in attrs}
        if tag == "base" and self.base is None and values.get("href"):
            self.base = values["href"]
        if tag != "link":
            return
        rels = values.get("rel", "").lower().split()
        media = values.get("type", "").split(";", 1)[0].strip().lower()
        if "alternate" in rels and media in _FEED_LINK_TYPES and values.get("href"):
            self.hrefs.append(values["href"])

    handle_startendtag = handle_starttag


def discover_feed_links(html: str, base_url: str) -> list[str]:
    """Feed URLs a page advertises with ``<link rel="alternate" type="...rss+xml|atom+xml">``.

    Absolute, canonical, http(s) only, in document order without duplicates.
    """
    finder = _FeedLinkFinder()
    finder.feed(html)
    finder.close()
    base = absolute_url(base_url, finder.base) if finder.base else base_url
    links: list[str] = []
    for href in finder.hrefs:
        url = _http_url(base, href)
        if url is not None and url not in links:
            links.append(url)
    return links
