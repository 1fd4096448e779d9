"""The bot's services when workers do the fetching and embedding (``NEWSBOT_JOBS=queue``).

``/source refresh`` and ``/reindex`` queue jobs and follow them through the database, whichever
worker runs them; the answer is the one the one-process bot gives, in the same message. A
source added is queued for its first fetch at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

import procrastinate
from procrastinate.jobs import Status
from sqlalchemy import Engine

from bot.jobs.follow import IndexFollower
from bot.jobs.queue import REBUILD, SYNC, defer_refresh, defer_reindex, notify_index
from bot.jobs.reports import outcome_from_json, read_reports
from bot.resources import Resources
from bot.services.reindex import ReindexRun, ReindexRunning, ReindexService, log_outcome
from bot.services.sources import RefreshReport, SourceService, changed_anything
from index.search import SyncReport
from ingest.errors import InputError, NewsbotError
from ingest.pipeline import Progress
from ingest.refresh import RefreshOutcome
from ingest.sources import Removed, SourceStatus
from ingest.store import sources_to_refresh

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
# Longest a command waits for its jobs (an interaction can be answered for 15 minutes).
WAIT_SECONDS = 13 * 60.0
# How long a finished reindex waits for the workers' notice to rebuild this replica.
NOTICE_SECONDS = 30.0
FINISHED = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.ABORTED})


async def job_status(queue: procrastinate.App, job_id: int) -> Status:
    # Workers delete the jobs that succeed (bot/worker.py): a job no longer listed did.
    for job in await queue.job_manager.list_jobs_async(id=job_id):
        assert job.status is not None
        return Status(job.status)
    return Status.SUCCEEDED


async def wait_for_jobs(
    queue: procrastinate.App,
    job_ids: list[int],
    on_poll: Callable[[], object] | None = None,
    timeout: float = WAIT_SECONDS,
) -> dict[int, Status]:
    """Each job's final status, polling the database (``InputError`` after ``timeout``)."""
    statuses: dict[int, Status] = {}
    deadline = time.monotonic() + timeout
    while True:
        for job_id in job_ids:
            if statuses.get(job_id) not in FINISHED:
                statuses[job_id] = await job_status(queue, job_id)
        if on_poll is not None:
            await asyncio.to_thread(on_poll)
        if all(status in FINISHED for status in statuses.values()):
            return statuses
        if time.monotonic() > deadline:
            raise InputError("The workers have not finished yet; the results will show up soon.")
        await asyncio.sleep(POLL_SECONDS)


class QueuedSourceService(SourceService):
    def __init__(
        self, resources: Resources, queue: procrastinate.App, follower: IndexFollower | None
    ) -> None:
        super().__init__(resources)
        self.queue = queue
        self.follower = follower

    async def add(self, url: str, name: str | None, guild_id: int | None) -> SourceStatus:
        status = await super().add(url, name, guild_id)
        await defer_refresh(self.queue, status.id)
        return status

    async def remove(self, source_id: int, guild_id: int | None) -> Removed:
        removed = await super().remove(source_id, guild_id)
        if removed.passages:
            await asyncio.to_thread(notify_index, self.engine, SYNC)  # the other replicas
        return removed

    async def refresh_sources(
        self,
        source_ids: Sequence[int] | None = None,
        *,
        guild_id: int | None = None,
        force: bool = False,
        progress: Progress | None = None,
        indexing: Progress | None = None,
    ) -> RefreshReport:
        """Queue a refresh of each source for the workers (as ``ingest.refresh``: the due ones,
        every one with ``force``, exactly ``source_ids`` due or not), wait for them all, then
        take what they stored into this process's index (none without a follower: the command
        line, whose bots take it in themselves)."""
        now = datetime.now(UTC)
        sources = await asyncio.to_thread(sources_to_refresh, self.engine, source_ids, guild_id)
        explicit = source_ids is not None
        due = [
            s
            for s in sources
            if explicit or force or s.next_fetch_at is None or s.next_fetch_at <= now
        ]
        waiting = {
            s.id: RefreshOutcome(
                source_id=s.id,
                name=s.name,
                kind=s.kind,
                status="skipped",
                next_fetch_at=s.next_fetch_at,
            )
            for s in sources
            if s not in due
        }
        jobs = [await defer_refresh(self.queue, s.id, force=True) for s in due]

        def count_done() -> None:
            if progress is not None:
                reports = read_reports(self.engine, jobs)
                progress(sum(1 for r in reports.values() if r.outcome is not None), len(jobs))

        statuses = await wait_for_jobs(self.queue, jobs, count_done)
        reports = await asyncio.to_thread(read_reports, self.engine, jobs)
        outcomes: dict[int, RefreshOutcome] = dict(waiting)
        for source, job_id in zip(due, jobs, strict=True):
            report = reports.get(job_id)
            if report is not None and report.outcome is not None:
                outcomes[source.id] = outcome_from_json(report.outcome)
            elif statuses[job_id] != Status.SUCCEEDED:
                outcomes[source.id] = RefreshOutcome(
                    source_id=source.id,
                    name=source.name,
                    kind=source.kind,
                    status="error",
                    error=f"the worker's job {statuses[job_id].value} (see its log)",
                )
        ordered = [outcomes[s.id] for s in sources if s.id in outcomes]
        if not changed_anything(ordered) or self.follower is None:
            return RefreshReport(ordered, None)
        # The follows hear of the articles from the workers' notice, in the process that posts
        # them (bot/jobs/follow.py): once, whichever shard asked for the refresh.
        return RefreshReport(ordered, await self.follower.update(SYNC))


async def run_reindex_job(
    queue: procrastinate.App, engine: Engine, progress: Progress | None = None
) -> dict[str, int]:
    """Queue a reindex, report the worker's progress until it is done, return its outcome
    (``embedded``, ``pruned``); ``NewsbotError`` when the job failed on its worker."""
    job_id = await defer_reindex(queue)
    log.info("reindex queued as job %s", job_id)

    def show_progress() -> None:
        report = read_reports(engine, [job_id]).get(job_id)
        if progress is not None and report is not None and report.total is not None:
            progress(report.done, report.total)

    statuses = await wait_for_jobs(queue, [job_id], show_progress)
    if statuses[job_id] != Status.SUCCEEDED:
        raise NewsbotError(f"The reindex job {statuses[job_id].value} on its worker.")
    report = (await asyncio.to_thread(read_reports, engine, [job_id])).get(job_id)
    outcome = (report.outcome or {}) if report is not None else {}
    return {key: int(outcome.get(key, 0)) for key in ("embedded", "pruned")}


class QueuedReindexService(ReindexService):
    """A worker embeds what has no vector yet; then every replica rebuilds from the cache."""

    def __init__(
        self, resources: Resources, queue: procrastinate.App, follower: IndexFollower
    ) -> None:
        super().__init__(resources)
        self.queue = queue
        self.follower = follower

    def start(self) -> ReindexRun:
        if self.current is not None and not self.current.done:
            raise ReindexRunning(self.current.progress())
        run = ReindexRun(self.clock)
        run.task = asyncio.ensure_future(self._queued(run))
        run.task.add_done_callback(log_outcome)
        self.current = run
        return run

    async def _queued(self, run: ReindexRun) -> SyncReport:
        rebuilds = self.follower.rebuilds
        outcome = await run_reindex_job(self.queue, self.resources.engine, run.report)
        try:
            # The worker's notice makes every replica rebuild, this one included.
            rebuilt = await asyncio.wait_for(self.follower.rebuilt_after(rebuilds), NOTICE_SECONDS)
        except TimeoutError:
            log.warning("no rebuild notice from the workers; rebuilding this index now")
            rebuilt = await self.follower.update(REBUILD)
        return replace(rebuilt, embedded=outcome["embedded"])  # the worker embedded, not this bot
