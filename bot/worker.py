"""``newsbot worker``: runs the queued jobs (``NEWSBOT_JOBS=queue``, PostgreSQL).

Start as many as wanted, on as many machines: each takes jobs from the database as it has
room (``NEWSBOT_WORKER_CONCURRENCY``), and together they keep the per-host politeness limit
(``ingest.host_slots``). One async ``main`` owns the resources (engine, model, HTTP client,
job queue) and hands them to the tasks through the job context.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import procrastinate
from sqlalchemy import Engine, or_, select

from bot.jobs.queue import (
    REBUILD,
    REFRESH_TASK,
    SYNC,
    defer_refresh,
    libpq_url,
    notify_index,
    open_queue,
    refresh_key,
)
from bot.jobs.reports import WORKER_NAME, outcome_as_json, prune_reports, write_report
from bot.resources import open_resources
from bot.settings import Settings
from index.cache import prune_cache
from index.embedder import Embedder
from index.precompute import embed_uncached
from ingest.db import session_scope
from ingest.errors import InputError
from ingest.fetch import SafeFetcher
from ingest.host_slots import AdvisoryHostSlots
from ingest.models import Source
from ingest.refresh import INGESTED_PREFIX, RefreshOutcome, refresh_source

log = logging.getLogger(__name__)

# A reindex writes its progress this often (passages embedded), not after every batch.
PROGRESS_EVERY_SECONDS = 1.0
# Requests one refresh has in flight at most: its feed, then the entry pages the refresh
# fetches at once (4, ingest/refresh.py), with one to spare.
REQUESTS_PER_JOB = 5
# Job reports are kept this long; succeeded jobs leave the queue's table at once.
KEEP_REPORTS = timedelta(days=1)


@dataclass
class WorkerRuntime:
    """What the tasks run with: opened once by :func:`run_worker`."""

    settings: Settings
    engine: Engine
    embedder: Embedder
    fetcher: SafeFetcher
    app: procrastinate.App

    async def refresh(self, job_id: int, source_id: int, force: bool) -> None:
        """Fetch one source (if it is due, or ``force``), store, embed, tell the bots."""
        if not force and not await asyncio.to_thread(_is_due, self.engine, source_id):
            # Queued twice (a periodic look while it was being fetched), or run again after
            # its worker died between storing and embedding: only the embedding may be left.
            log.info("source %s is not due any more; nothing to fetch", source_id)
            await self._index_changed(source_id, changed=False)
            await asyncio.to_thread(write_report, self.engine, job_id, "refresh", 1, 1)
            return
        await asyncio.to_thread(write_report, self.engine, job_id, "refresh", 0, 1)
        try:
            outcome = await refresh_source(
                self.engine,
                self.fetcher,
                source_id,
                interval=timedelta(minutes=self.settings.refresh_minutes),
                deadline_seconds=self.settings.source_deadline_seconds,
            )
        except InputError as error:  # removed after it was queued
            outcome = RefreshOutcome(
                source_id=source_id, name="?", kind="?", status="skipped", error=str(error)
            )
        changed = bool(outcome.added or outcome.updated or outcome.passages_removed)
        await self._index_changed(source_id, changed, outcome.article_ids)
        await asyncio.to_thread(
            write_report, self.engine, job_id, "refresh", 1, 1, outcome_as_json(outcome)
        )

    async def embed_new(self, job_id: int) -> None:
        embedded = await self._index_changed(changed=False)
        outcome = {"embedded": embedded}
        await asyncio.to_thread(write_report, self.engine, job_id, "embed", 1, 1, outcome)

    async def _index_changed(
        self,
        source_id: int | None = None,
        changed: bool = True,
        article_ids: list[int] | None = None,
    ) -> int:
        """Embed what has no vector yet (of one source, or anywhere); tell the bots of changes,
        naming the articles stored (for the follows)."""
        embedded = await asyncio.to_thread(
            embed_uncached, self.engine, self.embedder, None, source_id
        )
        if changed or embedded:
            await asyncio.to_thread(notify_index, self.engine, SYNC, article_ids or [])
        return embedded

    async def reindex(self, job_id: int) -> None:
        """Embed whatever has no vector, drop unused vectors, and have every bot rebuild."""
        loop = asyncio.get_running_loop()
        last = 0.0

        def progress(done: int, total: int) -> None:  # in the embedding thread
            nonlocal last
            now = loop.time()
            if now - last >= PROGRESS_EVERY_SECONDS or done == total:
                last = now
                write_report(self.engine, job_id, "reindex", done, total)

        await asyncio.to_thread(write_report, self.engine, job_id, "reindex", 0, None)
        embedded = await asyncio.to_thread(embed_uncached, self.engine, self.embedder, progress)
        pruned = await asyncio.to_thread(prune_cache, self.engine)
        await asyncio.to_thread(notify_index, self.engine, REBUILD)
        outcome = {"embedded": embedded, "pruned": pruned}
        await asyncio.to_thread(
            write_report, self.engine, job_id, "reindex", embedded, embedded, outcome
        )

    async def queue_due_sources(self) -> None:
        due = await asyncio.to_thread(due_sources, self.engine, datetime.now(UTC))
        # One query for the sources already waiting, rather than one refused defer each.
        waiting = {
            job.queueing_lock
            for job in await self.app.job_manager.list_jobs_async(task=REFRESH_TASK, status="todo")
        }
        fresh = [source_id for source_id in due if refresh_key(source_id) not in waiting]
        for source_id in fresh:
            await defer_refresh(self.app, source_id)
        if fresh:
            log.info("queued %d due sources", len(fresh))

    async def prune_job_reports(self) -> None:
        await asyncio.to_thread(prune_reports, self.engine, KEEP_REPORTS)

    async def retry_stalled_jobs(self) -> None:
        manager = self.app.job_manager
        stalled = await manager.get_stalled_jobs(
            seconds_since_heartbeat=self.settings.worker_stalled_seconds
        )
        for job in stalled:
            log.warning("job %s (%s) lost its worker; queueing it again", job.id, job.task_name)
            await manager.retry_job(job)


def due_sources(engine: Engine, now: datetime) -> list[int]:
    """Ids of the web and local sources whose next fetch is due."""
    query = (
        select(Source.id)
        .where(~Source.location.startswith(INGESTED_PREFIX))
        .where(or_(Source.next_fetch_at.is_(None), Source.next_fetch_at <= now))
        .order_by(Source.id)
    )
    with session_scope(engine) as session:
        return list(session.scalars(query))


def _is_due(engine: Engine, source_id: int) -> bool:
    with session_scope(engine) as session:
        source = session.get(Source, source_id)
        return source is not None and (
            source.next_fetch_at is None or source.next_fetch_at <= datetime.now(UTC)
        )


async def run_worker(settings: Settings) -> None:
    """Run jobs until SIGINT/SIGTERM: no new job is taken, the running ones get
    ``worker_shutdown_seconds`` to finish, and those still running are queued again (their
    tasks retry a job stopped this way, ``bot.jobs.tasks``)."""
    policy = settings.fetch_policy()
    async with (
        AdvisoryHostSlots(
            libpq_url(settings.resolved_database_url),
            policy.per_host_concurrency,
            # A connection per request in flight: each job's feed or its entry pages.
            max_connections=settings.worker_concurrency * REQUESTS_PER_JOB,
        ) as slots,
        open_resources(settings, shared_slots=slots) as resources,
        open_queue(settings, resources.engine) as app,
    ):
        # The model, loaded before the first job (seconds of work, off the event loop).
        embedder = await asyncio.to_thread(lambda: resources.retriever.embedder)
        runtime = WorkerRuntime(settings, resources.engine, embedder, resources.fetcher, app)
        heartbeat = max(1.0, settings.worker_stalled_seconds / 3)
        log.info("worker ready: %d jobs at once", settings.worker_concurrency)
        await app.run_worker_async(
            name=WORKER_NAME,
            concurrency=settings.worker_concurrency,
            additional_context={"newsbot": runtime},
            update_heartbeat_interval=heartbeat,
            stalled_worker_timeout=settings.worker_stalled_seconds,
            # Five-second chores would fill the table; a job gone from it has succeeded.
            delete_jobs="successful",
            install_signal_handlers=True,
            shutdown_graceful_timeout=settings.worker_shutdown_seconds,
        )
    log.info("worker stopped")
