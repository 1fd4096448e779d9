"""Refreshing sources: which are due, one source at a time under a deadline, and its health.

One call refreshes the sources that are due (or the ones asked for); ``refresh_source``
refreshes one now. Reading a source is ``source_reader`` (a feed's entries,
``feed_entries``); writing what it gave is ``store.save_refresh``. Each refresh comes back
as a ``RefreshOutcome`` with the counts and the ids of the articles and passages it stored,
for whatever runs next (an index sync, a story's followers).

A failure of one entry is counted and logged; a failure of the source (fetch, parse, safety
refusal) is recorded on it (``last_error``) and pushes ``next_fetch_at`` back exponentially,
or as far as the server's Retry-After asks. One source failing never stops the others.

New passages reach the index when the caller runs ``Retriever.sync`` afterwards.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from ingest.errors import NewsbotError
from ingest.fetch import DEFAULT_SOURCE_DEADLINE_SECONDS, SafeFetcher
from ingest.pipeline import Progress
from ingest.source_fetch import Deadline, Status
from ingest.source_reader import read_source
from ingest.store import (
    INGESTED_PREFIX,
    SourceSnapshot,
    StoreResult,
    record_refresh_failure,
    save_refresh,
    sources_to_refresh,
)

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_INTERVAL",
    "DEFAULT_SOURCE_DEADLINE_SECONDS",
    "Backoff",
    "RefreshOutcome",
    "refresh_source",
    "refresh_sources",
]

DEFAULT_INTERVAL = timedelta(minutes=30)
# Each source's period is the interval scaled by a fixed factor in [1 - S/2, 1 + S/2], so
# sources added or fetched together drift apart instead of firing at once for ever.
STAGGER = 0.3
SOURCE_CONCURRENCY = 4
ALREADY_REFRESHING = "already being refreshed"

# Sources being refreshed in this process, so the scheduler and a manual refresh never
# write the same source's articles at once. The only record of running refreshes.
_in_flight: set[tuple[str, int]] = set()


@dataclass(kw_only=True)
class RefreshOutcome(StoreResult):
    """What refreshing one source did, for the CLI, ``/source refresh`` and logs: what was
    stored (the ``StoreResult`` counts and ids) and how the fetch went."""

    source_id: int
    name: str
    kind: str
    status: Status
    entries_failed: int = 0
    error: str | None = None
    problems: list[str] = field(default_factory=list)
    next_fetch_at: datetime | None = None

    @property
    def busy(self) -> bool:
        """Skipped because this process was already refreshing the source."""
        return self.status == "skipped" and self.error == ALREADY_REFRESHING

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


@dataclass(frozen=True, slots=True)
class Backoff:
    """When to try a source again after ``failures`` consecutive failures.

    Exponential from ``base_seconds``, capped at ``max_seconds``; a server's Retry-After wins
    when it asks for longer, but is itself capped so a hostile header cannot park a source
    forever.
    """

    base_seconds: float = 60.0
    factor: float = 2.0
    max_seconds: float = 6 * 3600.0
    max_retry_after_seconds: float = 24 * 3600.0

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        wait = 0.0
        if failures > 0:
            # The exponent is clamped so a long outage cannot overflow the float.
            wait = min(self.max_seconds, self.base_seconds * self.factor ** min(failures - 1, 64))
        if retry_after is not None:
            wait = max(wait, min(max(retry_after, 0.0), self.max_retry_after_seconds))
        return wait


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
    sources = await asyncio.to_thread(sources_to_refresh, engine, source_ids, guild_id)
    explicit = source_ids is not None
    outcomes: dict[int, RefreshOutcome] = {}
    due: list[SourceSnapshot] = []
    for source in sources:
        if explicit or force or source.next_fetch_at is None or source.next_fetch_at <= now:
            due.append(source)
        else:
            outcomes[source.id] = RefreshOutcome(
                source_id=source.id,
                name=source.name,
                kind=source.kind,
                status="skipped",
                next_fetch_at=source.next_fetch_at,
            )
    slots = asyncio.Semaphore(SOURCE_CONCURRENCY)
    done = 0

    async def one(source: SourceSnapshot) -> None:
        nonlocal done
        async with slots:
            outcomes[source.id] = await _refresh(
                engine,
                fetcher,
                source,
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
    await asyncio.gather(*(one(source) for source in due))
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
    """Refresh one source now, due or not (``InputError`` if there is no such source).

    When it returns, what it fetched is stored: ``article_ids`` and ``passage_ids`` name
    the articles added or updated and the passages inserted (not yet in the index).
    """
    (source,) = await asyncio.to_thread(sources_to_refresh, engine, [source_id], None)
    return await _refresh(
        engine,
        fetcher,
        source,
        now=now or datetime.now(UTC),
        interval=interval,
        backoff=backoff,
        deadline_seconds=deadline_seconds,
    )


@contextmanager
def _claimed(engine: Engine, source_id: int) -> Iterator[bool]:
    """Whether this caller may refresh the source (no other refresh in this process is)."""
    guard = (str(engine.url), source_id)
    if guard in _in_flight:
        yield False
        return
    _in_flight.add(guard)
    try:
        yield True
    finally:
        _in_flight.discard(guard)


async def _refresh(
    engine: Engine,
    fetcher: SafeFetcher,
    source: SourceSnapshot,
    *,
    now: datetime,
    interval: timedelta,
    backoff: Backoff | None,
    deadline_seconds: float,
) -> RefreshOutcome:
    outcome = RefreshOutcome(source_id=source.id, name=source.name, kind=source.kind, status="ok")
    if source.kind == "local" and source.location.startswith(INGESTED_PREFIX):
        outcome.status = "skipped"
        outcome.error = "added by `newsbot ingest`; run it again to update these files"
        return outcome
    with _claimed(engine, source.id) as claimed:
        if not claimed:
            outcome.status, outcome.error = "skipped", ALREADY_REFRESHING
            return outcome
        period = _period(source.id, interval)
        try:
            deadline = Deadline.starting_now(deadline_seconds)
            read = await read_source(engine, fetcher, source, deadline)
            next_at = now + max(period, timedelta(seconds=read.retry_after or 0))
            stored = await asyncio.to_thread(save_refresh, engine, source.id, read, now, next_at)
        except NewsbotError as error:
            message, retry_after = str(error), getattr(error, "retry_after_seconds", None)
        except Exception as error:  # one broken source (or bug) must not stop the others
            log.exception("refreshing source %s (%s) failed", source.id, source.location)
            message, retry_after = f"internal error: {type(error).__name__}: {error}", None
        else:
            outcome.kind = read.kind or source.kind
            outcome.status = read.status
            outcome.merge(stored)
            outcome.entries_failed = read.entries_failed
            outcome.problems = read.problems
            outcome.next_fetch_at = next_at
            if read.stopped:
                # What was fetched is stored; the source still shows the error until a
                # refresh finishes in time.
                outcome.status, outcome.error = "error", read.stopped
                log.warning("refresh stopped early: %s", outcome.summary())
            else:
                log.info("refreshed %s", outcome.summary())
            return outcome
        policy = backoff or Backoff(base_seconds=interval.total_seconds())
        failures = source.failures + 1
        wait = max(period.total_seconds(), policy.delay(failures, retry_after))
        outcome.status = "error"
        outcome.error = " ".join(message.split())
        outcome.next_fetch_at = now + timedelta(seconds=wait)
        await asyncio.to_thread(
            record_refresh_failure,
            engine,
            source.id,
            outcome.error,
            now,
            failures,
            outcome.next_fetch_at,
        )
        log.warning("refresh failed: %s", outcome.summary())
        return outcome


def _period(source_id: int, interval: timedelta) -> timedelta:
    digest = hashlib.sha256(f"source:{source_id}".encode()).digest()
    fraction = int.from_bytes(digest[:4], "big") / 2**32
    return interval * (1 + STAGGER * (fraction - 0.5))
