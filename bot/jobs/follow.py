"""A bot replica keeps its own index in step with the shared database, within seconds.

Workers ``NOTIFY`` their schema's index channel after they store and embed passages (``sync``)
or finish a reindex (``rebuild``). A notice is only a wake-up: the bot ``LISTEN``s and then
catches its local index up from the database's passage change log (``ingest.changelog``) and the
embedding cache, from the last log entry its index took in: it takes in the passages added,
drops the ones removed, embeds nothing, and costs in proportion to the change. Notices that
arrive together cost one update. Nothing is lost while the connection was down: the log
holds every change, read when the connection comes back (an update first thing) and every
``FALLBACK_SECONDS`` in any case (a cheap look at the log's end when nothing changed).

A refresh's notices also name the articles it stored (``stored:``). The one process that posts
the follows' news (the one holding shard 0) is handed those ids once its index has them, like
a refresh it ran itself; the others only update. (Articles named while its connection was
down are not posted.)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from psycopg import sql

from bot.jobs.queue import INDEX_CHANNEL_SQL, REBUILD, SYNC, stored_ids
from index.search import Retriever, SyncReport

log = logging.getLogger(__name__)

# Notices arriving this soon after the first are handled with it.
GATHER_SECONDS = 0.3
FALLBACK_SECONDS = 30.0
RECONNECT_SECONDS = 5.0

Update = Callable[[str], Awaitable[object]]
Stored = Callable[[list[int]], Awaitable[object]]


async def follow_index(
    conninfo: str,
    update: Update,
    *,
    fallback_every: float = FALLBACK_SECONDS,
    listening: asyncio.Event | None = None,
    stored: Stored | None = None,
) -> None:
    """Forever: ``await update(SYNC or REBUILD)`` whenever the workers say something changed,
    then ``await stored(ids)`` with the articles their refreshes stored, if any."""
    while True:
        try:
            connection = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
        except psycopg.Error as error:
            log.warning("cannot listen for index changes (%s); retrying", error)
            await asyncio.sleep(RECONNECT_SECONDS)
            continue
        try:
            async with connection:
                await connection.execute(sql.SQL("LISTEN {}").format(await _channel(connection)))
                log.info("following the database: the index takes each change within seconds")
                if listening is not None:
                    listening.set()
                await _applied(update, SYNC)  # whatever changed while we were not listening
                while True:
                    wanted = await _next_notices(connection, fallback_every)
                    updated = await _applied(update, REBUILD if REBUILD in wanted else SYNC)
                    articles = sorted({i for payload in wanted for i in stored_ids(payload)})
                    if updated and stored is not None and articles:
                        await _handed(stored, articles)
        except psycopg.Error as error:
            log.warning("lost the database connection for index changes (%s)", error)
            await asyncio.sleep(RECONNECT_SECONDS)


async def _channel(connection: psycopg.AsyncConnection[Any]) -> sql.Identifier:
    """This schema's index channel (``INDEX_CHANNEL_SQL``), as the workers name it."""
    cursor = await connection.execute(f"SELECT {INDEX_CHANNEL_SQL}")
    row = await cursor.fetchone()
    assert row is not None
    return sql.Identifier(row[0])


async def _applied(update: Update, what: str) -> bool:
    try:
        await update(what)
    except Exception:  # a failed update must not stop the following ones
        log.exception("updating the index from the database failed; trying at the next change")
        return False
    return True


async def _handed(stored: Stored, article_ids: list[int]) -> None:
    try:
        await stored(article_ids)
    except Exception:  # the index is updated; the next articles are handed over all the same
        log.exception("handing over %d stored articles failed", len(article_ids))


async def _next_notices(connection: psycopg.AsyncConnection, wait: float) -> set[str]:
    """The payloads of the next notice and of those close behind it (empty: none came)."""
    wanted: set[str] = set()
    async for notice in connection.notifies(timeout=wait, stop_after=1):
        wanted.add(notice.payload)
    if wanted:
        async for notice in connection.notifies(timeout=GATHER_SECONDS):
            wanted.add(notice.payload)
    return wanted


class IndexFollower:
    """Applies the workers' notices to this process's index, one update at a time.

    ``retriever`` is called (in a thread: the first call loads the model) for the index.
    """

    def __init__(self, retriever: Callable[[], Retriever]) -> None:
        self._retriever = retriever
        self._lock = asyncio.Lock()
        self._changed = asyncio.Condition()
        self.rebuilds = 0
        self.last: SyncReport | None = None

    async def update(self, what: str = SYNC) -> SyncReport:
        async with self._lock:
            retriever = await asyncio.to_thread(self._retriever)
            work = retriever.rebuild if what == REBUILD else retriever.sync
            report = await asyncio.to_thread(work)
        if report.added or report.removed or report.rebuilt:
            log.info(
                "index %s from the database (%s, %d log entries): %d passages added, %d removed,"
                " %d embedded here",
                "rebuilt" if what == REBUILD else "updated",
                report.found_by,
                report.log_entries,
                report.added,
                report.removed,
                report.embedded,
            )
        async with self._changed:
            self.last = report
            self.rebuilds += what == REBUILD
            self._changed.notify_all()
        return report

    async def rebuilt_after(self, rebuilds: int) -> SyncReport:
        """Once this process has rebuilt its index more than ``rebuilds`` times in all."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.rebuilds > rebuilds)
            assert self.last is not None
            return self.last
