"""News sources: add, list, remove, refresh, for a server (web URLs only) or the host."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from bot.resources import Resources
from bot.services.cooldowns import Cooldowns, OnCooldown
from index.search import Progress, SyncReport
from ingest.db import session_scope
from ingest.errors import InputError
from ingest.models import GLOBAL_GUILD
from ingest.refresh import RefreshOutcome, refresh_sources
from ingest.sources import (
    Removed,
    SourceStatus,
    add_source,
    list_sources,
    never_had_sources,
    refuse_internal_address,
    remove_source,
    validate_web_url,
)

log = logging.getLogger(__name__)

# Enough for any newsroom's feeds, and a bound on what one server can make the bot fetch.
MAX_SOURCES_PER_GUILD = 50
# A server may force a refresh of its sources this often (the schedule refreshes them anyway).
REFRESH_COOLDOWN_SECONDS = 60.0


# Called after a refresh's new articles are indexed, with their ids (followed stories).
StoredArticlesHook = Callable[[list[int]], Awaitable[None]]


def _log_failure(task: asyncio.Task[SyncReport]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("index sync after removing a source failed", exc_info=error)


@dataclass(frozen=True)
class RefreshReport:
    outcomes: list[RefreshOutcome]
    index: SyncReport | None  # None when nothing new needed embedding


def changed_anything(outcomes: Sequence[RefreshOutcome]) -> bool:
    """Whether a refresh stored or deleted passages, so the index has something to catch up."""
    return any(o.added or o.updated or o.passages_added or o.passages_removed for o in outcomes)


class SourceService:
    """Database work runs in worker threads, fetching on the event loop (it is async), with
    the process's one fetcher.

    ``guild_id`` is the server asking; only the local console and the command line pass
    None, which sees and manages every source (and adds global ones). The ``*_blocking``
    methods are for the command line, which calls them in its main thread.
    """

    def __init__(
        self, resources: Resources, refresh_cooldown: float = REFRESH_COOLDOWN_SECONDS
    ) -> None:
        self.resources = resources
        self.engine = resources.engine
        self.fetcher = resources.fetcher
        self.refresh_cooldowns = Cooldowns(refresh_cooldown)
        self._background: set[asyncio.Task[SyncReport]] = set()
        self._subscribers: list[StoredArticlesHook] = []

    def subscribe(self, hook: StoredArticlesHook) -> Callable[[], None]:
        """Call ``hook`` with the ids of the articles each refresh stores, once indexed.

        Returns the function that unsubscribes it.
        """
        self._subscribers.append(hook)
        return lambda: self._subscribers.remove(hook)

    async def add(self, url: str, name: str | None, guild_id: int | None) -> SourceStatus:
        """Store a web source for this server (it is fetched at the next refresh)."""
        # Web URLs only: a path would let a Discord user read files on the bot's machine.
        url = validate_web_url(url)
        return await asyncio.to_thread(self._add, url, name, guild_id)

    def _add(self, url: str, name: str | None, guild_id: int | None) -> SourceStatus:
        owner = GLOBAL_GUILD if guild_id is None else guild_id
        refuse_internal_address(url, self.fetcher.policy.allow_hosts)
        with session_scope(self.engine) as session:
            if guild_id is not None:
                own = [s for s in list_sources(session, guild_id) if s.guild_id == guild_id]
                if len(own) >= MAX_SOURCES_PER_GUILD:
                    raise InputError(
                        f"This server already has {len(own)} sources, the most allowed; "
                        "remove one first."
                    )
            return SourceStatus.of(add_source(session, url, name, owner))

    def add_location_blocking(self, location: str, name: str | None, owner: int) -> SourceStatus:
        """``newsbot sources add``: a web URL, or a local file or folder of the host's, for
        ``owner`` (a server or ``GLOBAL_GUILD``); the host is trusted with paths and any count."""
        if "://" in location:
            refuse_internal_address(validate_web_url(location), self.fetcher.policy.allow_hosts)
        with session_scope(self.engine) as session:
            return SourceStatus.of(add_source(session, location, name, owner))

    async def visible(self, guild_id: int | None) -> list[SourceStatus]:
        """The sources this server's questions are answered from: its own and global ones."""
        return await asyncio.to_thread(self.visible_blocking, guild_id)

    async def own(
        self, guild_id: int | None, typed: str = "", limit: int = 25
    ) -> list[SourceStatus]:
        """This server's own sources whose name or URL contains ``typed`` (for autocomplete)."""
        needle = typed.casefold().strip()
        sources = await asyncio.to_thread(self.visible_blocking, guild_id)
        mine = [s for s in sources if guild_id is None or s.guild_id == guild_id]
        if needle:
            mine = [
                s
                for s in mine
                if needle in s.name.casefold()
                or needle in s.location.casefold()
                or needle == str(s.id)
            ]
        return mine[:limit]

    def visible_blocking(self, guild_id: int | None) -> list[SourceStatus]:
        with session_scope(self.engine) as session:
            return list_sources(session, guild_id)

    def never_had_sources(self) -> bool:
        """Whether the database never held a source (a new one, for the sample corpus)."""
        with session_scope(self.engine) as session:
            return never_had_sources(session)

    async def remove(self, source_id: int, guild_id: int | None) -> Removed:
        """Delete one of this server's sources with its articles (answers stop quoting them)."""
        removed = await asyncio.to_thread(self.remove_blocking, source_id, guild_id)
        if removed.passages:
            # Answers skip deleted passages at once; the sync drops their vectors and fixes the
            # counts. In the background: it waits for any reindex that is running.
            task = asyncio.create_task(asyncio.to_thread(lambda: self.resources.retriever.sync()))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            task.add_done_callback(_log_failure)
        return removed

    async def idle(self) -> None:
        """Until background index syncs started by removals are done."""
        await asyncio.gather(*self._background, return_exceptions=True)

    def remove_blocking(self, source_id: int, guild_id: int | None) -> Removed:
        """Delete the source with its articles and passages; the index is not synced."""
        with session_scope(self.engine) as session:
            return remove_source(session, source_id, guild_id)

    async def refresh(self, guild_id: int | None) -> RefreshReport:
        """Fetch this server's own sources now (the console: every source), then index them."""
        try:
            self.refresh_cooldowns.hit(GLOBAL_GUILD if guild_id is None else guild_id)
        except OnCooldown as wait:
            raise InputError(
                f"Sources were refreshed a moment ago; try again in {round(wait.retry_after)} s."
            ) from None
        report = await self.refresh_sources(guild_id=guild_id, force=True)
        # ingest.refresh knows which sources this process is refreshing; they come back busy.
        if report.outcomes and all(o.busy for o in report.outcomes):
            raise InputError("A refresh of these sources is already running.")
        return report

    async def refresh_due(self) -> RefreshReport:
        """Every server's sources whose next fetch is due (the bot's schedule)."""
        return await self.refresh_sources()

    async def refresh_sources(
        self,
        source_ids: Sequence[int] | None = None,
        *,
        guild_id: int | None = None,
        force: bool = False,
        progress: Progress | None = None,
        indexing: Progress | None = None,
    ) -> RefreshReport:
        """Fetch the due sources (every one with ``force``, exactly ``source_ids`` due or not;
        ``guild_id``: of that server only), then index what changed. ``progress`` counts
        sources, ``indexing`` passages embedded. ``newsbot refresh`` calls it directly."""
        settings = self.resources.settings
        outcomes = await refresh_sources(
            self.engine,
            self.fetcher,
            source_ids=source_ids,
            guild_id=guild_id,
            force=force,
            progress=progress,
            interval=timedelta(minutes=settings.refresh_minutes),
            deadline_seconds=settings.source_deadline_seconds,
        )
        if not changed_anything(outcomes):
            return RefreshReport(outcomes, None)
        # In the thread: the first use of the retriever loads the model.
        index = await asyncio.to_thread(lambda: self.resources.retriever.sync(indexing))
        await self.announce([a for o in outcomes for a in o.article_ids])
        return RefreshReport(outcomes, index)

    async def announce(self, article_ids: list[int]) -> None:
        """Hand the ids of newly stored (and indexed) articles to the subscribers."""
        if not article_ids:
            return
        for hook in list(self._subscribers):
            try:
                await hook(article_ids)
            except Exception:  # the refresh itself succeeded; say what failed and go on
                log.exception("a subscriber to stored articles failed")
