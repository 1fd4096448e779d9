"""One index rebuild at a time, in a worker process, with progress anyone can read."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.resources import Resources
from index.search import SyncReport
from ingest.errors import NewsbotError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReindexProgress:
    """Passages embedded so far of ``total`` (None until the rebuild knows how many)."""

    done: int
    total: int | None
    elapsed: float
    eta: float | None

    @property
    def percent(self) -> int:
        if not self.total:
            return 0
        return min(100, int(100 * self.done / self.total))


class ReindexRunning(NewsbotError):
    def __init__(self, progress: ReindexProgress) -> None:
        self.progress = progress
        super().__init__(f"A reindex is already running, {progress.percent}% done.")


class ReindexRun:
    """A rebuild in progress: ``progress()`` any time, ``await wait()`` for its report."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.started = clock()
        # (done, total, when embedding started): replaced whole by the worker thread, so a
        # reader on the event loop always sees a consistent triple.
        self._state: tuple[int, int | None, float | None] = (0, None, None)
        self.task: asyncio.Future[SyncReport] | None = None

    def report(self, done: int, total: int) -> None:
        """The retriever's progress callback (called from the worker thread)."""
        began = self._state[2]
        self._state = (done, total, began if began is not None else self._clock())

    def progress(self) -> ReindexProgress:
        done, total, began = self._state
        now = self._clock()
        eta = None
        if total and began is not None and done > 0:
            rate = done / max(now - began, 1e-6)
            eta = (total - done) / rate
        return ReindexProgress(done, total, now - self.started, eta)

    @property
    def done(self) -> bool:
        return self.task is not None and self.task.done()

    async def wait(self) -> SyncReport:
        assert self.task is not None
        # Shielded: a cancelled waiter (say, a Discord command) must not cancel the rebuild.
        return await asyncio.shield(self.task)


class ReindexService:
    """``start()`` rebuilds the index in the background; a second start while one runs fails.

    Searches keep using the old index until the rebuilt one is swapped in (atomically, by
    the retriever).
    """

    def __init__(self, resources: Resources, clock: Callable[[], float] = time.monotonic) -> None:
        self.resources = resources
        self.clock = clock
        self.current: ReindexRun | None = None

    @property
    def running(self) -> bool:
        return self.current is not None and not self.current.done

    def start(self) -> ReindexRun:
        if self.current is not None and not self.current.done:
            raise ReindexRunning(self.current.progress())
        run = ReindexRun(self.clock)
        run.task = asyncio.ensure_future(asyncio.to_thread(self._rebuild, run))
        run.task.add_done_callback(log_outcome)
        self.current = run
        return run

    def _rebuild(self, run: ReindexRun) -> SyncReport:
        log.info("reindex started")
        # In a worker process: the bot's questions keep their latency during the build.
        return self.resources.retriever.rebuild(run.report, in_worker=True)


async def watch(
    run: ReindexRun,
    on_progress: Callable[[ReindexProgress], Awaitable[None]],
    every: float,
) -> SyncReport:
    """Call ``on_progress`` every ``every`` seconds until the run ends; return its report."""
    while True:
        try:
            return await asyncio.wait_for(run.wait(), timeout=every)
        except TimeoutError:
            await on_progress(run.progress())


def log_outcome(task: asyncio.Future[SyncReport]) -> None:
    if task.cancelled():
        log.warning("reindex cancelled")
    elif (error := task.exception()) is not None:
        # One line here; whoever waits on the run (a command, the console) reports the traceback.
        log.error("reindex failed: %r", error)
    else:
        report = task.result()
        log.info("reindex done: %s passages in %.1fs", report.total, report.seconds)
