"""A fetched web page as a ``RawArticle``: its story, with a feed entry filling the gaps."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from ingest.decoding import decode_body
from ingest.extract import RawArticle
from ingest.feeds import FeedEntry, looks_like_feed
from ingest.fetch import FetchResult, UnsupportedContentType
from ingest.urls import canonical_url
from ingest.webpage import extract_article

__all__ = ["article_from_page"]


async def article_from_page(
    result: FetchResult,
    key: str,
    *,
    entry: FeedEntry | None = None,
    outlet: str | None = None,
    html: str | None = None,
) -> RawArticle:
    """The story on a fetched page; a feed entry's title, author and date fill the gaps.

    ``html`` is the body already decoded, when the caller has it. Extraction runs in a
    worker thread. Raises ``NoArticleText`` or ``UnsupportedContentType`` (a feed).
    """
    if looks_like_feed(result.content_type, result.body):
        raise UnsupportedContentType(f"{result.url}: is a feed, not an article page")
    html = decode_body(result) if html is None else html
    extracted = await asyncio.to_thread(extract_article, html, result.url)
    url = canonical_url(result.url)
    title = extracted.title or (entry.title if entry else None) or url
    return RawArticle(
        title=title[:1000],
        body=extracted.text,
        key=key,
        url=url,
        outlet=_outlet(extracted.site_name, url, outlet),
        author=extracted.author or (entry.author if entry else None),
        published_at=extracted.published_at or (entry.published_at if entry else None),
    )


def _outlet(site_name: str | None, url: str, feed_title: str | None) -> str:
    """The page's own site name, unless it is only the host name trafilatura fell back to."""
    parts = urlsplit(url)
    guesses = {parts.netloc.lower(), (parts.hostname or "").lower()}
    guesses |= {g.removeprefix("www.") for g in guesses}
    if site_name and site_name.lower().removeprefix("www.") not in guesses:
        return site_name
    return feed_title or site_name or parts.hostname or url
