"""Reading a feed: which of its entries are new or changed, fetching their pages a few at a
time, and what to remember so unchanged entries are never fetched again.

An entry whose page exists but cannot be read (a login, a paywall, no article text) is
stored from the feed's own text when the feed carries the whole story. An entry that fails
in a way fetching it again would repeat is remembered, and left alone until it changes; one
that may work next time (a timeout, a 503) is tried again at the next refresh.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sqlalchemy import Engine

from ingest.errors import FetchError, InputError, NewsbotError
from ingest.extract import RawArticle
from ingest.feeds import FeedEntry, parse_feed
from ingest.fetch import (
    FetchResult,
    HTTPStatusError,
    RateLimited,
    ResponseTooLarge,
    SafeFetcher,
    UnsafeURL,
    UnsupportedContentType,
)
from ingest.page_article import article_from_page
from ingest.source_fetch import Deadline, FetchedSource, SourceDeadline
from ingest.store import SourceSnapshot, feed_entries_known
from ingest.webpage import DEFAULT_MIN_CHARS, NoArticleText

log = logging.getLogger(__name__)

__all__ = ["EntryFetches", "fetch_entries", "read_feed"]

MAX_ENTRIES_PER_FEED = 50
# Entry pages fetched at once per feed; SafeFetcher separately limits connections per host.
ENTRY_CONCURRENCY = 4
# A feed entry's page that answers with these exists but is closed to us (login, payment,
# legal block): its story may still be stored from the feed's own text.
UNREADABLE_STATUSES = frozenset({401, 402, 403, 451})


async def read_feed(
    engine: Engine,
    fetcher: SafeFetcher,
    source: SourceSnapshot,
    result: FetchResult,
    deadline: Deadline,
) -> FetchedSource:
    """The new and changed entries of the feed ``result`` holds, fetched by ``deadline``.

    Raises ``FetchError`` when every new entry failed, ``SourceDeadline`` when the deadline
    came before any was read.
    """
    if result.not_modified:
        return FetchedSource(status="not_modified", validators=(result.etag, result.last_modified))
    # feedparser on a feed of several megabytes takes long enough to stall the bot's loop.
    feed = await asyncio.to_thread(parse_feed, result.body, result.url)
    entries = feed.entries[:MAX_ENTRIES_PER_FEED]
    if len(feed.entries) > len(entries):
        log.info(
            "%s: using the first %d of %d entries", result.url, len(entries), len(feed.entries)
        )
    known = await asyncio.to_thread(feed_entries_known, engine, source.id, [e.url for e in entries])
    read = FetchedSource()
    wanted: list[tuple[FeedEntry, str]] = []
    for entry in entries:
        fingerprint = _fingerprint(entry)
        stored, previous = known.get(entry.url, (False, None))
        if previous == fingerprint:
            continue
        if stored and previous is None:
            read.seen[entry.url] = fingerprint  # stored before entries were remembered
            continue
        wanted.append((entry, fingerprint))
    outlet = feed.title or urlsplit(result.url).hostname or source.name
    fetches = await fetch_entries(fetcher, wanted, outlet, deadline)
    if fetches.timed_out:
        if not fetches.articles:
            raise SourceDeadline(
                deadline.stopped(f"{result.url}: none of its {len(wanted)} new entries read yet")
            )
        read.stopped = deadline.stopped(
            f"read {len(fetches.articles)} of {len(wanted)} new entries; the other"
            f" {fetches.unfinished} are tried at the next refresh"
        )
    # In feed order, whatever order the fetches finished in.
    read.articles = [fetches.articles[e.url] for e, _ in wanted if e.url in fetches.articles]
    read.seen.update(fetches.seen)
    read.problems = [fetches.failures[e.url] for e, _ in wanted if e.url in fetches.failures]
    read.problems += fetches.notes
    read.entries_failed = len(fetches.failures)
    read.retry_after = fetches.retry_after
    if wanted and not read.articles and read.entries_failed == len(wanted):
        raise FetchError(
            f"{result.url}: none of the {len(wanted)} new entries could be read"
            f" (first: {read.problems[0]})"
        )
    if fetches.retry_later:
        # Keep the old validators: the next refresh gets the whole feed and retries them.
        read.problems.append(f"{fetches.retry_later} entries will be retried at the next refresh")
    else:
        read.validators = (result.etag, result.last_modified)
    # Entries the feed itself got wrong (a link too long to store, say) are skipped, not fatal.
    read.problems.extend(feed.problems)
    read.entries_failed += len(feed.problems)
    return read


@dataclass
class EntryFetches:
    """What fetching a feed's entries gave, by entry URL."""

    articles: dict[str, RawArticle] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)  # why each failed entry was skipped
    notes: list[str] = field(default_factory=list)  # entries stored from the feed's own text
    seen: dict[str, str] = field(default_factory=dict)  # fingerprints not to fetch again
    retry_later: int = 0  # entries the next refresh must fetch again
    retry_after: float | None = None  # the longest wait a rate-limiting site asked for
    slowed_down: bool = False  # the site rate-limited us: the entries not started wait
    timed_out: bool = False  # the source's deadline cancelled the fetches still running
    unfinished: int = 0  # entries the deadline cancelled

    def keep(
        self, entry: FeedEntry, fingerprint: str, article: RawArticle, note: str | None = None
    ) -> None:
        self.articles[entry.url] = article
        self.seen[entry.url] = fingerprint
        if note is not None:
            self.notes.append(note)

    def fail(self, entry: FeedEntry, error: BaseException, remember: str | None = None) -> None:
        """Record why ``entry`` failed. ``remember`` is its fingerprint when fetching it again
        would fail the same way; without it the entry is retried at the next refresh."""
        self.failures[entry.url] = _entry_error(entry, error)
        if remember is None:
            self.retry_later += 1
        else:
            self.seen[entry.url] = remember


async def fetch_entries(
    fetcher: SafeFetcher,
    wanted: list[tuple[FeedEntry, str]],
    outlet: str,
    deadline: Deadline,
) -> EntryFetches:
    """Fetch the pages of ``wanted`` (entry, fingerprint) pairs, ``ENTRY_CONCURRENCY`` at once.

    One entry failing never stops the others; a rate limit stops the ones not started yet.
    """
    fetches = EntryFetches()
    slots = asyncio.Semaphore(ENTRY_CONCURRENCY)
    try:
        async with asyncio.timeout_at(deadline.at):
            await asyncio.gather(
                *(
                    _fetch_entry(fetcher, entry, fingerprint, outlet, slots, fetches)
                    for entry, fingerprint in wanted
                )
            )
    except TimeoutError:
        # The entries still being fetched were cancelled; they are not marked seen, and the
        # feed's validators are not kept (read_feed), so the next refresh fetches them.
        fetches.timed_out = True
        fetches.unfinished = sum(
            1
            for entry, _ in wanted
            if entry.url not in fetches.articles and entry.url not in fetches.failures
        )
        fetches.retry_later += fetches.unfinished
    return fetches


async def _fetch_entry(
    fetcher: SafeFetcher,
    entry: FeedEntry,
    fingerprint: str,
    outlet: str,
    slots: asyncio.Semaphore,
    fetches: EntryFetches,
) -> None:
    async with slots:
        if fetches.slowed_down:
            fetches.retry_later += 1
            return
        try:
            page = await fetcher.fetch(entry.url)
            article = await article_from_page(page, entry.url, entry=entry, outlet=outlet)
        except RateLimited as error:
            fetches.slowed_down = True
            fetches.retry_after = max(fetches.retry_after or 0, error.retry_after_seconds or 0)
            fetches.fail(entry, error)
            return
        except NewsbotError as error:
            from_feed = _article_from_feed_text(entry, error, outlet)
            if from_feed is not None:
                note = f"{_entry_error(entry, error)}; stored the feed's own text"
                fetches.keep(entry, fingerprint, from_feed, note)
            else:
                fetches.fail(entry, error, fingerprint if _is_permanent(error) else None)
            return
        except Exception as error:  # a bug on one odd page must not lose the others
            log.exception("%s: entry failed", entry.url)
            fetches.fail(entry, error, fingerprint)
            return
        fetches.keep(entry, fingerprint, article)


def _entry_error(entry: FeedEntry, error: BaseException) -> str:
    message = " ".join(str(error).split())
    message = message if message.startswith(entry.url) else f"{entry.url}: {message}"
    log.info("feed entry skipped: %s", message)
    return message


def _article_from_feed_text(
    entry: FeedEntry, error: NewsbotError, outlet: str
) -> RawArticle | None:
    """The entry's story from the feed's own text, when its page exists but cannot be read.

    Feeds often carry the whole story (``content:encoded``) for readers who cannot open the
    page: behind a login or paywall, or with no article text we can find. A deleted page
    (404, 410) is not quoted from the feed, nor is a teaser shorter than a page must be.
    """
    unreadable = isinstance(error, NoArticleText | UnsupportedContentType) or (
        isinstance(error, HTTPStatusError) and error.status in UNREADABLE_STATUSES
    )
    text = entry.text or ""
    if not unreadable or len(text) < DEFAULT_MIN_CHARS:
        return None
    return RawArticle(
        title=(entry.title or entry.url)[:1000],
        body=text,
        key=entry.url,
        url=entry.url,
        outlet=outlet,
        author=entry.author,
        published_at=entry.published_at,
    )


def _is_permanent(error: NewsbotError) -> bool:
    """Errors that fetching the same entry again would repeat (until the entry changes)."""
    if isinstance(error, RateLimited):
        return False
    if isinstance(error, HTTPStatusError):
        return 400 <= error.status < 500 and error.status not in (408, 425, 429)
    return isinstance(
        error, NoArticleText | UnsupportedContentType | ResponseTooLarge | UnsafeURL | InputError
    )


def _fingerprint(entry: FeedEntry) -> str:
    when = entry.published_at.isoformat() if entry.published_at else ""
    text = f"{entry.title or ''}\x1f{when}\x1f{entry.summary or ''}"
    return hashlib.sha256(text.encode()).hexdigest()
