"""What workers do: refresh a source, embed new passages, reindex; and the periodic chores.

Each task hands its work to the worker's runtime (``bot.worker.WorkerRuntime``, in the job
context). A refresh is locked per source, so two workers never fetch one source at once; a
worker that dies mid-job stops sending heartbeats and ``retry_stalled_jobs`` gives its jobs
to another. Backoff and Retry-After stay per source, in its ``next_fetch_at``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import procrastinate

if TYPE_CHECKING:
    from bot.worker import WorkerRuntime

log = logging.getLogger(__name__)

blueprint = procrastinate.Blueprint()

# Every 10 s a look for due sources, every 5 s for jobs of dead workers (the sixth field of
# procrastinate's cron is seconds), every hour old job reports are dropped.
DUE_CRON = "* * * * * */10"
STALLED_CRON = "* * * * * */5"
PRUNE_CRON = "17 * * * *"


# A job stopped by its worker's shutdown (SIGTERM, past NEWSBOT_WORKER_SHUTDOWN_SECONDS) ends in
# asyncio's CancelledError: queued again at once, for another worker. Other errors are not
# retried: a refresh records its own failures on the source, with their backoff.
RELEASED_ON_SHUTDOWN = procrastinate.RetryStrategy(
    max_attempts=10,
    retry_exceptions={asyncio.CancelledError},  # type: ignore[arg-type]
)


def runtime(context: procrastinate.JobContext) -> WorkerRuntime:
    assert context.additional_context is not None
    return context.additional_context["newsbot"]


def job_id(context: procrastinate.JobContext) -> int:
    assert context.job.id is not None
    return context.job.id


@blueprint.task(
    name="refresh_source", pass_context=True, retry=RELEASED_ON_SHUTDOWN, queue="sources"
)
async def refresh_source(context: procrastinate.JobContext, source_id: int, force: bool) -> None:
    await runtime(context).refresh(job_id(context), source_id, force)


@blueprint.task(
    name="embed_new_passages", pass_context=True, retry=RELEASED_ON_SHUTDOWN, queue="index"
)
async def embed_new_passages(context: procrastinate.JobContext) -> None:
    await runtime(context).embed_new(job_id(context))


@blueprint.task(name="reindex", pass_context=True, retry=RELEASED_ON_SHUTDOWN, queue="index")
async def reindex(context: procrastinate.JobContext) -> None:
    await runtime(context).reindex(job_id(context))


@blueprint.periodic(cron=DUE_CRON)
@blueprint.task(
    name="queue_due_sources", pass_context=True, queue="sources", queueing_lock="due_sources"
)
async def queue_due_sources(context: procrastinate.JobContext, timestamp: int) -> None:
    await runtime(context).queue_due_sources()


@blueprint.periodic(cron=STALLED_CRON)
@blueprint.task(
    name="retry_stalled_jobs", pass_context=True, queue="sources", queueing_lock="stalled_jobs"
)
async def retry_stalled_jobs(context: procrastinate.JobContext, timestamp: int) -> None:
    await runtime(context).retry_stalled_jobs()


@blueprint.periodic(cron=PRUNE_CRON)
@blueprint.task(
    name="prune_job_reports", pass_context=True, queue="sources", queueing_lock="job_reports"
)
async def prune_job_reports(context: procrastinate.JobContext, timestamp: int) -> None:
    await runtime(context).prune_job_reports()
