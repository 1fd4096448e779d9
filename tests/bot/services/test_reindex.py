"""Rebuilding the index: one at a time, progress and ETA, answers from the old index meanwhile."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from bot.resources import Resources
from bot.services import Services
from bot.services.reindex import ReindexRun, ReindexRunning, ReindexService
from index import segments
from index.search import Progress, SyncReport


def test_progress_reports_percent_and_eta() -> None:
    """Halfway after 10 s of embedding means about 10 s left."""
    now = [0.0]
    run = ReindexRun(lambda: now[0])
    assert run.progress().total is None
    now[0] = 2.0
    run.report(0, 200)
    now[0] = 12.0
    run.report(100, 200)
    progress = run.progress()
    assert progress.percent == 50
    assert progress.eta == pytest.approx(10.0)
    assert progress.elapsed == pytest.approx(12.0)


class Gate:
    """Holds the retriever's rebuild in its thread until the test opens it."""

    def __init__(self, context: Resources) -> None:
        self.opened = threading.Event()
        self.entered = threading.Event()
        retriever = context.retriever
        real = retriever.rebuild

        def gated(progress: Progress | None = None, in_worker: bool = False) -> SyncReport:
            if progress:
                progress(0, 40)
                progress(10, 40)
            self.entered.set()
            self.opened.wait(10)
            return real(progress)

        retriever.rebuild = gated  # type: ignore[method-assign]

    async def wait_entered(self) -> None:
        assert await asyncio.to_thread(self.entered.wait, 10)


@pytest.fixture
def gate(news: Resources) -> Iterator[Gate]:
    gate = Gate(news)
    yield gate
    gate.opened.set()


@pytest.mark.slow
async def test_second_reindex_is_refused_with_progress(
    news: Resources, services: Services, gate: Gate
) -> None:
    """While a rebuild runs, another start says it is running and how far it got."""
    run = services.reindex.start()
    await gate.wait_entered()
    with pytest.raises(ReindexRunning, match=r"already running, 25% done"):
        services.reindex.start()
    gate.opened.set()
    report = await run.wait()
    assert report.total == 7
    assert not services.reindex.running
    services.reindex.start()  # a new one may start once the first is over
    await services.reindex.current.wait()  # type: ignore[union-attr]


@pytest.mark.slow
async def test_questions_are_answered_during_a_rebuild(
    news: Resources, services: Services, gate: Gate
) -> None:
    """Answers keep coming from the old index until the new one is swapped in."""
    before = segments.current_version(news.settings.index_dir)
    run = services.reindex.start()
    await gate.wait_entered()
    answer = await asyncio.wait_for(services.ask.answer("lantern parade", None), 10)
    assert not answer.abstained
    assert segments.current_version(news.settings.index_dir) == before
    gate.opened.set()
    await run.wait()
    assert segments.current_version(news.settings.index_dir) != before
    after = await services.ask.answer("lantern parade", None)
    assert after.passages[0].passage_id == answer.passages[0].passage_id


async def test_a_failed_rebuild_is_reported_and_can_be_retried(empty_context: Resources) -> None:
    """The error reaches whoever waits; the next start is allowed."""
    service = ReindexService(empty_context)

    class Broken:
        def rebuild(self, progress: Progress | None = None, in_worker: bool = False) -> SyncReport:
            raise RuntimeError("disk full")

    empty_context._retriever = Broken()  # type: ignore[assignment]
    run = service.start()
    with pytest.raises(RuntimeError, match="disk full"):
        await run.wait()
    assert not service.running
    with pytest.raises(RuntimeError):
        await service.start().wait()
