"""Reading one source the way its kind says, and deciding the kind of a new web source.

- ``local``: the file or folder is read again (unchanged files change nothing when stored).
- ``feed``: a conditional GET (ETag/Last-Modified), then its new entries (``feed_entries``).
- ``page``: a conditional GET of the page, extracted as one article.
- ``web`` (added, never fetched): the first fetch decides. A feed becomes ``feed``. A page
  that declares itself an article (``og:type`` article, or JSON-LD ``NewsArticle``/``Article``)
  becomes a single ``page``, even though news pages usually advertise their site's feed. Any
  other page that advertises a feed with ``<link rel="alternate">`` becomes ``feed`` and its
  ``location`` becomes that feed's URL (the name is kept); a page without one becomes ``page``.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from sqlalchemy import Engine

from ingest.decoding import decode_body
from ingest.errors import FetchError, InputError
from ingest.extract import read_paths
from ingest.feed_entries import read_feed
from ingest.feeds import discover_feed_links, looks_like_feed
from ingest.fetch import SafeFetcher
from ingest.page_article import article_from_page
from ingest.source_fetch import Deadline, FetchedSource, fetch_before
from ingest.store import SourceSnapshot
from ingest.urls import canonical_url
from ingest.webpage import NoArticleText, declares_article

log = logging.getLogger(__name__)

__all__ = ["read_source"]

MAX_FEED_CANDIDATES = 3


async def read_source(
    engine: Engine, fetcher: SafeFetcher, source: SourceSnapshot, deadline: Deadline
) -> FetchedSource:
    """Fetch (or read) ``source`` by ``deadline``; nothing is written here."""
    if source.kind == "local":
        read = await asyncio.to_thread(read_paths, [Path(source.location)])
        return FetchedSource(articles=read.articles, problems=read.problems)
    if source.kind == "web":
        return await _identify(engine, fetcher, source, deadline)
    if source.kind not in ("feed", "page"):
        raise InputError(f"unknown source kind {source.kind!r}")
    result = await fetch_before(
        deadline, fetcher, source.location, etag=source.etag, last_modified=source.last_modified
    )
    if source.kind == "feed":
        return await read_feed(engine, fetcher, source, result, deadline)
    if result.not_modified:
        return FetchedSource(status="not_modified", validators=(result.etag, result.last_modified))
    article = await article_from_page(result, canonical_url(source.location))
    return FetchedSource(articles=[article], validators=(result.etag, result.last_modified))


async def _identify(
    engine: Engine, fetcher: SafeFetcher, source: SourceSnapshot, deadline: Deadline
) -> FetchedSource:
    """First fetch of a ``web`` source: is it a feed, a page advertising one, or an article?"""
    result = await fetch_before(deadline, fetcher, source.location)
    if looks_like_feed(result.content_type, result.body):
        read = await read_feed(engine, fetcher, source, result, deadline)
        read.kind, read.location = "feed", source.location
        return read
    html = decode_body(result)
    tried: list[str] = []
    if not declares_article(html):
        for link in discover_feed_links(html, result.url)[:MAX_FEED_CANDIDATES]:
            try:
                feed = await fetch_before(deadline, fetcher, link)
            except FetchError as error:
                tried.append(str(error))
                continue
            if not looks_like_feed(feed.content_type, feed.body):
                tried.append(f"{link}: advertised as a feed but is not one")
                continue
            log.info("source %s: %s advertises the feed %s", source.id, source.location, link)
            read = await read_feed(engine, fetcher, source, feed, deadline)
            read.kind, read.location = "feed", link
            return read
    try:
        article = await article_from_page(result, canonical_url(source.location), html=html)
    except NoArticleText as error:
        if tried:
            raise FetchError(f"{error}; its feeds failed too: {'; '.join(tried)}") from None
        raise
    return FetchedSource(
        articles=[article],
        kind="page",
        location=source.location,
        validators=(result.etag, result.last_modified),
        problems=tried,
    )
