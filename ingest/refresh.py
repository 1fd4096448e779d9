"""Refreshing sources: fetch feeds and pages politely, store their articles, record health.

One call refreshes the sources that are due (or the ones asked for). Per source:

- ``web`` (added, never fetched): the first fetch decides. A feed becomes ``feed``. A page that
  declares itself an article (``og:type`` article, or JSON-LD ``NewsArticle``/``Article``)
  becomes a single ``page``, even though news pages usually advertise their site's feed. Any
  other page that advertises a feed with ``<link rel="alternate">`` becomes ``feed`` and its
  ``location`` becomes that feed's URL (the name is kept); a page without one becomes ``page``.
- ``feed``: a conditional GET (ETag/Last-Modified), so an unchanged feed costs one 304.
  Entries not stored yet, or that the feed changed since we last saw them, are fetched and
  extracted; the others are not fetched again. Entries that vanish from the feed stay stored.
- ``page``: a conditional GET of the page, extracted and stored as one article.
- ``local``: the file or folder is read again (unchanged files change nothing).

A failure of one entry is counted and logged; a failure of the source (fetch, parse, safety
refusal) is recorded on it (``last_error``) and pushes ``next_fetch_at`` back exponentially,
or as far as the server's Retry-After asks. One source failing never stops the others.

New passages reach the index when the caller runs ``Retriever.sync`` afterwards.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ingest.db import session_scope
from ingest.errors import FetchError, InputError, NewsbotError
from ingest.extract import RawArticle, read_paths
from ingest.feeds import FeedEntry, discover_feed_links, looks_like_feed, parse_feed
from ingest.fetch import (
    DEFAULT_SOURCE_DEADLINE_SECONDS,
    Backoff,
    FetchResult,
    HTTPStatusError,
    RateLimited,
    ResponseTooLarge,
    SafeFetcher,
    UnsafeURL,
    UnsupportedContentType,
    decode_body,
)
from ingest.models import Article, FeedItem, Source
from ingest.pipeline import BATCH_SIZE, Progress
from ingest.sanitize import clean_line
from ingest.store import StoreResult, store_articles, write_with_retry
from ingest.urls import canonical_url
from ingest.webpage import DEFAULT_MIN_CHARS, NoArticleText, extract_article

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_INTERVAL",
    "DEFAULT_SOURCE_DEADLINE_SECONDS",
    "RefreshOutcome",
    "declares_article",
    "refresh_source",
    "refresh_sources",
]

DEFAULT_INTERVAL = timedelta(minutes=30)
# Each source's period is the interval scaled by a fixed factor in [1 - S/2, 1 + S/2], so
# sources added or fetched together drift apart instead of firing at once for ever.
STAGGER = 0.3
MAX_ENTRIES_PER_FEED = 50
# Entry pages fetched at once per feed; SafeFetcher separately limits connections per host.
ENTRY_CONCURRENCY = 4
SOURCE_CONCURRENCY = 4
MAX_FEED_CANDIDATES = 3
# Sources `newsbot ingest` created: there is no path to read again.
INGESTED_PREFIX = "local:"

Status = Literal["ok", "not_modified", "error", "skipped"]
# A feed entry's page that answers with these exists but is closed to us (login, payment,
# legal block): its story may still be stored from the feed's own text.
UNREADABLE_STATUSES = frozenset({401, 402, 403, 451})

# Sources being refreshed in this process, so the scheduler and a manual refresh never
# write the same source's articles at once.
_in_flight: set[tuple[str, int]] = set()


@dataclass(kw_only=True)
class RefreshOutcome(StoreResult):
    """What refreshing one source did, for the CLI, ``/source refresh`` and logs: what was
    stored (the ``StoreResult`` counts) and how the fetch went."""

    source_id: int
    name: str
    kind: str
    status: Status
    entries_failed: int = 0
    error: str | None = None
    problems: list[str] = field(default_factory=list)
    next_fetch_at: datetime | None = None

    def summary(self) -> str:
        """One line, e.g. ``Courier (#3, feed): 2 new, 1 updated, 5 unchanged; 9 passages``."""
        head = f"{self.name} (#{self.source_id}, {self.kind})"
        if self.status == "error":
            stored = self.added or self.updated
            kept = f"; kept {self.added} new, {self.updated} updated" if stored else ""
            return f"{head}: error: {self.error}{kept}"
        if self.status == "skipped":
            return f"{head}: skipped: {self.error or 'not due yet'}"
        if self.status == "not_modified":
            return f"{head}: not modified"
        text = (
            f"{head}: {self.added} new, {self.updated} updated, {self.unchanged} unchanged"
            f"; {self.passages_added} passages added"
        )
        if self.entries_failed:
            plural = "entry" if self.entries_failed == 1 else "entries"
            text += f"; {self.entries_failed} {plural} failed"
        return text


@dataclass(frozen=True)
class _Snapshot:
    """A source's row as read before the (slow, async) fetching starts."""

    id: int
    name: str
    kind: str
    location: str
    guild_id: int
    etag: str | None
    last_modified: str | None
    failures: int
    next_fetch_at: datetime | None


@dataclass
class _Work:
    """What fetching produced, to be written in one go."""

    status: Status = "ok"
    articles: list[RawArticle] = field(default_factory=list)
    kind: str | None = None  # set when a "web" source turned out to be a feed or a page
    location: str | None = None
    validators: tuple[str | None, str | None] | None = None  # (etag, last_modified) to keep
    seen: dict[str, str] = field(default_factory=dict)  # feed entry key → fingerprint
    entries_failed: int = 0
    problems: list[str] = field(default_factory=list)
    retry_after: float | None = None
    stopped: str | None = None  # why fetching stopped at the deadline, entries left for later


class _SourceDeadline(NewsbotError):
    """The source ran out of time before anything could be stored."""


@dataclass(frozen=True)
class _Deadline:
    """When (event loop time) fetching one source must stop, and how long it was given."""

    at: float
    seconds: float

    @classmethod
    def starting_now(cls, seconds: float) -> _Deadline:
        return cls(asyncio.get_running_loop().time() + seconds, seconds)

    def stopped(self, what: str) -> str:
        return f"stopped after {self.seconds:g} s: {what}"


async def _fetch_by(
    fetcher: SafeFetcher, deadline: _Deadline, url: str, **conditions: str | None
) -> FetchResult:
    """``fetcher.fetch`` that also ends at the source's deadline."""
    try:
        async with asyncio.timeout_at(deadline.at):
            return await fetcher.fetch(url, **conditions)
    except TimeoutError:
        # The fetcher reports its own timeouts as FetchTimeout: this one is the deadline's.
        raise _SourceDeadline(deadline.stopped(f"{url} was still being read")) from None


# --------------------------------------------------------------------------- public API


async def refresh_sources(
    engine: Engine,
    fetcher: SafeFetcher,
    *,
    source_ids: Sequence[int] | None = None,
    guild_id: int | None = None,
    now: datetime | None = None,
    force: bool = False,
    progress: Progress | None = None,
    interval: timedelta = DEFAULT_INTERVAL,
    backoff: Backoff | None = None,
    deadline_seconds: float = DEFAULT_SOURCE_DEADLINE_SECONDS,
) -> list[RefreshOutcome]:
    """Refresh the due sources (``next_fetch_at`` passed), or all with ``force``.

    Up to ``SOURCE_CONCURRENCY`` sources are fetched at once, each for at most
    ``deadline_seconds``: a source still fetching then stores what it has, and the entries
    it did not get to are tried at its next refresh.

    ``source_ids`` refreshes exactly those, due or not (``InputError`` if one is unknown).
    ``guild_id`` limits the refresh to that server's own sources. Sources not due come back
    as ``"skipped"`` with their ``next_fetch_at``. Outcomes are in source id order.
    """
    now = now or datetime.now(UTC)
    snapshots = await asyncio.to_thread(_select_sources, engine, source_ids, guild_id)
    explicit = source_ids is not None
    outcomes: dict[int, RefreshOutcome] = {}
    due: list[_Snapshot] = []
    for snap in snapshots:
        if explicit or force or snap.next_fetch_at is None or snap.next_fetch_at <= now:
            due.append(snap)
        else:
            outcomes[snap.id] = RefreshOutcome(
                source_id=snap.id,
                name=snap.name,
                kind=snap.kind,
                status="skipped",
                next_fetch_at=snap.next_fetch_at,
            )
    slots = asyncio.Semaphore(SOURCE_CONCURRENCY)
    done = 0

    async def one(snap: _Snapshot) -> None:
        nonlocal done
        async with slots:
            outcomes[snap.id] = await _refresh(
                engine,
                fetcher,
                snap,
                now=now,
                interval=interval,
                backoff=backoff,
                deadline_seconds=deadline_seconds,
            )
        done += 1
        if progress:
            progress(done, len(due))

    if progress:
        progress(0, len(due))
    await asyncio.gather(*(one(snap) for snap in due))
    return [outcomes[key] for key in sorted(outcomes)]


async def refresh_source(
    engine: Engine,
    fetcher: SafeFetcher,
    source_id: int,
    *,
    now: datetime | None = None,
    interval: timedelta = DEFAULT_INTERVAL,
    backoff: Backoff | None = None,
    deadline_seconds: float = DEFAULT_SOURCE_DEADLINE_SECONDS,
) -> RefreshOutcome:
    """Refresh one source now, due or not (``InputError`` if there is no such source)."""
    (snap,) = await asyncio.to_thread(_select_sources, engine, [source_id], None)
    return await _refresh(
        engine,
        fetcher,
        snap,
        now=now or datetime.now(UTC),
        interval=interval,
        backoff=backoff,
        deadline_seconds=deadline_seconds,
    )


def declares_article(html: str) -> bool:
    """Whether a page says it is one article (Open Graph or JSON-LD), not a home or section."""
    head = html[:200_000]
    return bool(_OG_ARTICLE.search(head) or _OG_ARTICLE_REVERSED.search(head)) or bool(
        _LD_ARTICLE.search(head)
    )


_OG_ARTICLE = re.compile(
    r"""<meta[^>]+property\s*=\s*["']og:type["'][^>]*content\s*=\s*["']article["']""", re.I
)
_OG_ARTICLE_REVERSED = re.compile(
    r"""<meta[^>]+content\s*=\s*["']article["'][^>]*property\s*=\s*["']og:type["']""", re.I
)
_LD_ARTICLE = re.compile(r""""@type"\s*:\s*\[?\s*"(?:News|Reportage|Analysis)?Article["\]]""", re.I)


# --------------------------------------------------------------------------- one source


async def _refresh(
    engine: Engine,
    fetcher: SafeFetcher,
    snap: _Snapshot,
    *,
    now: datetime,
    interval: timedelta,
    backoff: Backoff | None,
    deadline_seconds: float = DEFAULT_SOURCE_DEADLINE_SECONDS,
) -> RefreshOutcome:
    outcome = RefreshOutcome(source_id=snap.id, name=snap.name, kind=snap.kind, status="ok")
    if snap.kind == "local" and snap.location.startswith(INGESTED_PREFIX):
        outcome.status = "skipped"
        outcome.error = "added by `newsbot ingest`; run it again to update these files"
        return outcome
    guard = (str(engine.url), snap.id)
    if guard in _in_flight:
        outcome.status = "skipped"
        outcome.error = "already being refreshed"
        return outcome
    _in_flight.add(guard)
    try:
        period = _period(snap.id, interval)
        try:
            deadline = _Deadline.starting_now(deadline_seconds)
            work = await _fetch_source(engine, fetcher, snap, deadline)
            next_at = now + max(period, timedelta(seconds=work.retry_after or 0))
            stored = await asyncio.to_thread(_save, engine, snap.id, work, now, next_at)
        except NewsbotError as error:
            message, retry_after = str(error), getattr(error, "retry_after_seconds", None)
        except Exception as error:  # one broken source (or bug) must not stop the others
            log.exception("refreshing source %s (%s) failed", snap.id, snap.location)
            message, retry_after = f"internal error: {type(error).__name__}: {error}", None
        else:
            outcome.kind = work.kind or snap.kind
            outcome.status = work.status
            outcome.merge(stored)
            outcome.entries_failed = work.entries_failed
            outcome.problems = work.problems
            outcome.next_fetch_at = next_at
            if work.stopped:
                # What was fetched is stored; the source still shows the error until a
                # refresh finishes in time.
                outcome.status, outcome.error = "error", work.stopped
                log.warning("refresh stopped early: %s", outcome.summary())
            else:
                log.info("refreshed %s", outcome.summary())
            return outcome
        policy = backoff or Backoff(base_seconds=interval.total_seconds())
        failures = snap.failures + 1
        wait = max(period.total_seconds(), policy.delay(failures, retry_after))
        outcome.status = "error"
        outcome.error = " ".join(message.split())
        outcome.next_fetch_at = now + timedelta(seconds=wait)
        await asyncio.to_thread(
            _record_failure, engine, snap.id, outcome.error, now, failures, outcome.next_fetch_at
        )
        log.warning("refresh failed: %s", outcome.summary())
        return outcome
    finally:
        _in_flight.discard(guard)


def _period(source_id: int, interval: timedelta) -> timedelta:
    digest = hashlib.sha256(f"source:{source_id}".encode()).digest()
    fraction = int.from_bytes(digest[:4], "big") / 2**32
    return interval * (1 + STAGGER * (fraction - 0.5))


async def _fetch_source(
    engine: Engine, fetcher: SafeFetcher, snap: _Snapshot, deadline: _Deadline
) -> _Work:
    if snap.kind == "local":
        return await _read_local(snap)
    if snap.kind == "web":
        return await _identify(engine, fetcher, snap, deadline)
    if snap.kind == "feed":
        result = await _fetch_by(
            fetcher, deadline, snap.location, etag=snap.etag, last_modified=snap.last_modified
        )
        return await _from_feed(engine, fetcher, snap, result, deadline)
    if snap.kind == "page":
        result = await _fetch_by(
            fetcher, deadline, snap.location, etag=snap.etag, last_modified=snap.last_modified
        )
        if result.not_modified:
            return _Work(status="not_modified", validators=(result.etag, result.last_modified))
        article = await _article_from(result, canonical_url(snap.location))
        return _Work(articles=[article], validators=(result.etag, result.last_modified))
    raise InputError(f"unknown source kind {snap.kind!r}")


async def _read_local(snap: _Snapshot) -> _Work:
    read = await asyncio.to_thread(read_paths, [Path(snap.location)])
    return _Work(articles=read.articles, problems=read.problems)


async def _identify(
    engine: Engine, fetcher: SafeFetcher, snap: _Snapshot, deadline: _Deadline
) -> _Work:
    """First fetch of a ``web`` source: is it a feed, a page advertising one, or an article?"""
    result = await _fetch_by(fetcher, deadline, snap.location)
    if looks_like_feed(result.content_type, result.body):
        work = await _from_feed(engine, fetcher, snap, result, deadline)
        work.kind, work.location = "feed", snap.location
        return work
    html = decode_body(result)
    tried: list[str] = []
    if not declares_article(html):
        for link in discover_feed_links(html, result.url)[:MAX_FEED_CANDIDATES]:
            try:
                feed = await _fetch_by(fetcher, deadline, link)
            except FetchError as error:
                tried.append(str(error))
                continue
            if not looks_like_feed(feed.content_type, feed.body):
                tried.append(f"{link}: advertised as a feed but is not one")
                continue
            log.info("source %s: %s advertises the feed %s", snap.id, snap.location, link)
            work = await _from_feed(engine, fetcher, snap, feed, deadline)
            work.kind, work.location = "feed", link
            return work
    try:
        article = await _article_from(result, canonical_url(snap.location), html=html)
    except NoArticleText as error:
        if tried:
            raise FetchError(f"{error}; its feeds failed too: {'; '.join(tried)}") from None
        raise
    return _Work(
        articles=[article],
        kind="page",
        location=snap.location,
        validators=(result.etag, result.last_modified),
        problems=tried,
    )


async def _from_feed(
    engine: Engine, fetcher: SafeFetcher, snap: _Snapshot, result: FetchResult, deadline: _Deadline
) -> _Work:
    if result.not_modified:
        return _Work(status="not_modified", validators=(result.etag, result.last_modified))
    # feedparser on a feed of several megabytes takes long enough to stall the bot's loop.
    feed = await asyncio.to_thread(parse_feed, result.body, result.url)
    entries = feed.entries[:MAX_ENTRIES_PER_FEED]
    if len(feed.entries) > len(entries):
        log.info(
            "%s: using the first %d of %d entries", result.url, len(entries), len(feed.entries)
        )
    known = await asyncio.to_thread(_known_entries, engine, snap.id, [e.url for e in entries])
    work = _Work()
    wanted: list[tuple[FeedEntry, str]] = []
    for entry in entries:
        fingerprint = _fingerprint(entry)
        stored, previous = known.get(entry.url, (False, None))
        if previous == fingerprint:
            continue
        if stored and previous is None:
            work.seen[entry.url] = fingerprint  # stored before entries were remembered
            continue
        wanted.append((entry, fingerprint))
    outlet = feed.title or urlsplit(result.url).hostname or snap.name
    slots = asyncio.Semaphore(ENTRY_CONCURRENCY)
    stop = asyncio.Event()  # set when the site asks us to slow down
    failed: dict[str, str] = {}  # entry URL → why it was skipped
    fetched: dict[str, RawArticle] = {}
    notes: list[str] = []  # entries stored from the feed's text instead of their page
    transient = 0

    async def one(entry: FeedEntry, fingerprint: str) -> None:
        nonlocal transient
        async with slots:
            if stop.is_set():
                transient += 1
                return
            try:
                page = await fetcher.fetch(entry.url)
                article = await _article_from(page, entry.url, entry=entry, outlet=outlet)
            except RateLimited as error:
                stop.set()
                work.retry_after = max(work.retry_after or 0, error.retry_after_seconds or 0)
                transient += 1
                failed[entry.url] = _entry_error(entry, error)
                return
            except NewsbotError as error:
                from_feed = _article_from_feed_text(entry, error, outlet)
                if from_feed is not None:
                    fetched[entry.url] = from_feed
                    work.seen[entry.url] = fingerprint
                    notes.append(f"{_entry_error(entry, error)}; stored the feed's own text")
                    return
                if _is_permanent(error):
                    work.seen[entry.url] = fingerprint  # not retried until the entry changes
                else:
                    transient += 1
                failed[entry.url] = _entry_error(entry, error)
                return
            except Exception as error:  # a bug on one odd page must not lose the others
                log.exception("%s: entry failed", entry.url)
                work.seen[entry.url] = fingerprint
                failed[entry.url] = _entry_error(entry, error)
                return
            fetched[entry.url] = article
            work.seen[entry.url] = fingerprint

    try:
        async with asyncio.timeout_at(deadline.at):
            await asyncio.gather(*(one(entry, fingerprint) for entry, fingerprint in wanted))
    except TimeoutError:
        # The entries still being fetched were cancelled; they are not marked seen, and the
        # validators are not kept (below), so the next refresh fetches them.
        left = sum(1 for entry, _ in wanted if entry.url not in fetched and entry.url not in failed)
        transient += left
        if not fetched:
            raise _SourceDeadline(
                deadline.stopped(f"{result.url}: none of its {len(wanted)} new entries read yet")
            ) from None
        work.stopped = deadline.stopped(
            f"read {len(fetched)} of {len(wanted)} new entries; the other {left} are tried"
            " at the next refresh"
        )
    # In feed order, whatever order the fetches finished in.
    work.articles = [fetched[entry.url] for entry, _ in wanted if entry.url in fetched]
    work.problems = [failed[entry.url] for entry, _ in wanted if entry.url in failed] + notes
    work.entries_failed = len(failed)
    if wanted and not work.articles and work.entries_failed == len(wanted):
        raise FetchError(
            f"{result.url}: none of the {len(wanted)} new entries could be read"
            f" (first: {work.problems[0]})"
        )
    if transient:
        # Keep the old validators: the next refresh gets the whole feed and retries them.
        work.problems.append(f"{transient} entries will be retried at the next refresh")
    else:
        work.validators = (result.etag, result.last_modified)
    # Entries the feed itself got wrong (a link too long to store, say) are skipped, not fatal.
    work.problems.extend(feed.problems)
    work.entries_failed += len(feed.problems)
    return work


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


async def _article_from(
    result: FetchResult,
    key: str,
    *,
    entry: FeedEntry | None = None,
    outlet: str | None = None,
    html: str | None = None,
) -> RawArticle:
    """The story on a fetched page; a feed entry's title, author and date fill the gaps."""
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


# --------------------------------------------------------------------------- database


def _select_sources(
    engine: Engine, source_ids: Sequence[int] | None, guild_id: int | None
) -> list[_Snapshot]:
    with session_scope(engine) as session:
        query = select(Source).order_by(Source.id)
        if guild_id is not None:
            query = query.where(Source.guild_id == guild_id)
        if source_ids is not None:
            query = query.where(Source.id.in_(list(source_ids)))
        else:
            query = query.where(~Source.location.startswith(INGESTED_PREFIX))
        sources = list(session.scalars(query))
        if source_ids is not None:
            missing = sorted(set(source_ids) - {s.id for s in sources})
            if missing:
                where = " on this server" if guild_id is not None else ""
                raise InputError(f"no source with id {', '.join(map(str, missing))}{where}")
        return [
            _Snapshot(
                id=s.id,
                name=s.name,
                kind=s.kind,
                location=s.location,
                guild_id=s.guild_id,
                etag=s.etag,
                last_modified=s.last_modified,
                failures=s.failures or 0,
                next_fetch_at=s.next_fetch_at,
            )
            for s in sources
        ]


def _known_entries(
    engine: Engine, source_id: int, keys: list[str]
) -> dict[str, tuple[bool, str | None]]:
    """For each key: is an article stored under it, and the fingerprint last seen for it."""
    if not keys:
        return {}
    with session_scope(engine) as session:
        stored = set(
            session.scalars(
                select(Article.key).where(Article.source_id == source_id, Article.key.in_(keys))
            )
        )
        rows = session.execute(
            select(FeedItem.key, FeedItem.fingerprint).where(
                FeedItem.source_id == source_id, FeedItem.key.in_(keys)
            )
        )
        seen = {key: fingerprint for key, fingerprint in rows}
    return {key: (key in stored, seen.get(key)) for key in keys}


def _live_source(session: Session, source_id: int) -> Source:
    source = session.get(Source, source_id)
    if source is None:
        raise InputError(f"source {source_id} was removed during the refresh")
    return source


def _save(
    engine: Engine, source_id: int, work: _Work, now: datetime, next_at: datetime
) -> StoreResult:
    """Store the articles in batches, then what the feed said and the source's health.

    Each step is a short transaction of its own, rerun if it loses a race with another
    process writing the same rows.
    """
    if work.kind is not None:
        write_with_retry(engine, lambda session: _save_kind(session, source_id, work))
    total = StoreResult()
    for start in range(0, len(work.articles), BATCH_SIZE):
        batch = work.articles[start : start + BATCH_SIZE]
        total.merge(
            write_with_retry(
                engine,
                lambda session, batch=batch: store_articles(  # type: ignore[misc]
                    session, _live_source(session, source_id), batch
                ),
            )
        )
    write_with_retry(engine, lambda session: _save_health(session, source_id, work, now, next_at))
    return total


def _save_kind(session: Session, source_id: int, work: _Work) -> None:
    source = _live_source(session, source_id)
    location = work.location or source.location
    if location != source.location:
        clash = session.scalar(
            select(Source).where(
                Source.guild_id == source.guild_id,
                Source.location == location,
                Source.id != source_id,
            )
        )
        if clash is not None:
            raise InputError(
                f"{source.location} advertises the feed {location}, which is already"
                f" source {clash.id} ({clash.name}); remove one of them"
            )
    source.kind, source.location = work.kind or source.kind, location


def _save_health(
    session: Session, source_id: int, work: _Work, now: datetime, next_at: datetime
) -> None:
    source = _live_source(session, source_id)
    for key, fingerprint in work.seen.items():
        session.merge(FeedItem(source_id=source_id, key=key, fingerprint=fingerprint, seen_at=now))
    if work.validators is not None:
        etag, last_modified = work.validators
        source.etag = _storable(etag, Source.etag)
        source.last_modified = _storable(last_modified, Source.last_modified)
    source.last_success_at = now
    source.last_error = work.stopped
    source.last_error_at = now if work.stopped else None
    source.failures = 0
    source.next_fetch_at = next_at


def _storable(validator: str | None, column: object) -> str | None:
    """An ETag or Last-Modified value, or None (never sent back) when its column cannot hold
    it: the refresh must still be recorded as a success."""
    limit = getattr(getattr(column, "type", None), "length", None)
    return validator if validator is None or limit is None or len(validator) <= limit else None


def _record_failure(
    engine: Engine,
    source_id: int,
    message: str,
    now: datetime,
    failures: int,
    next_at: datetime,
) -> None:
    def record(session: Session) -> None:
        source = session.get(Source, source_id)
        if source is None:
            return
        source.last_error = clean_line(message)[:2000]  # a server's words may hold a NUL
        source.last_error_at = now
        source.failures = failures
        source.next_fetch_at = next_at

    write_with_retry(engine, record)
