"""A rebuild in a worker process, as the bot's /reindex runs it, with the real model."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest
from sqlalchemy import Engine

from index.embedder import Embedder
from index.search import Retriever
from index.worker import BUILD_NICENESS, BuildFailed, BuildJob, rebuild_in_worker
from ingest.pipeline import store_raw_articles
from tests.index.words import FIRE, TRAM

pytestmark = pytest.mark.slow


def test_a_rebuild_in_a_worker_process_is_published_to_the_callers_retriever(
    sqlite_engine: Engine, embedder: Embedder, tmp_path: Path
) -> None:
    """The worker embeds, reports progress and publishes; the caller then answers from it."""
    store_raw_articles(sqlite_engine, [TRAM, FIRE], "ledger")
    retriever = Retriever(sqlite_engine, embedder, tmp_path / "index")
    assert retriever.searchable_count() == 0
    seen: list[tuple[int, int]] = []
    report = retriever.rebuild(lambda done, total: seen.append((done, total)), in_worker=True)
    assert (report.total, report.embedded, report.rebuilt) == (2, 2, True)
    assert seen and seen[-1] == (2, 2)
    assert retriever.searchable_count() == 2
    hits = retriever.search("How contained was the Sorrel Ridge wildfire?", k=1)
    assert hits and retriever.article_ids([hits[0].passage_id]) != [None]


def test_the_worker_builds_at_a_lower_priority_than_the_bot(
    sqlite_engine: Engine, embedder: Embedder, tmp_path: Path
) -> None:
    """While it builds, the worker runs niced, so the bot's questions get the cores first."""
    store_raw_articles(sqlite_engine, [TRAM, FIRE], "ledger")
    retriever = Retriever(sqlite_engine, embedder, tmp_path / "index")
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    seen: list[int] = []

    def progress(done: int, total: int) -> None:
        for child in multiprocessing.active_children():
            if child.name == "index-build" and child.pid is not None:
                seen.append(os.getpriority(os.PRIO_PROCESS, child.pid))

    retriever.rebuild(progress, in_worker=True)
    assert seen and min(seen) >= min(mine + BUILD_NICENESS, 19)


def test_a_worker_that_cannot_build_says_so_in_one_line(tmp_path: Path) -> None:
    """A build that fails in the worker raises there, and the previous index stays."""
    job = BuildJob(
        f"sqlite:///{tmp_path / 'x.db'}", tmp_path / "index", "no/such-model", "onnx", "auto"
    )
    with pytest.raises(BuildFailed, match="The index build failed: ModelLoadError"):
        rebuild_in_worker(job)
    assert not (tmp_path / "index" / "manifest.json").exists()
