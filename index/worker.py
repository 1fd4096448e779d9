"""A full index build in a worker process, so the bot's questions never wait on it.

A rebuild spends much of its time in Python (reading a million rows, tokenizing them), which
holds the GIL: in the bot's process that slowed questions several-fold. The worker is a
fresh (spawned) process with its own database engine and model; it publishes the new index
as any writer does, and the bot's retriever picks it up at its next question. Progress comes
back over a queue.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
from dataclasses import asdict, dataclass
from pathlib import Path

from index.embedder import Backend, Embedder
from index.updates import IndexWriter, Progress, SyncReport
from index.vectors import IndexKind
from ingest.errors import NewsbotError

log = logging.getLogger(__name__)
# The build yields the cores to the bot's questions: it can take a second longer, a member
# waiting for an answer cannot (bench/README.md, question latency during a reindex).
BUILD_NICENESS = 10


@dataclass(frozen=True)
class BuildJob:
    database_url: str
    index_dir: Path
    model: str  # as configured (NEWSBOT_MODEL), not the embedder's name with its backend
    backend: Backend  # the one in use (onnx falls back to torch where it cannot export)
    index_type: IndexKind


class BuildFailed(NewsbotError):
    """The worker building the index stopped without publishing it."""


def job_for(writer: IndexWriter) -> BuildJob | None:
    """The job that rebuilds ``writer``'s index elsewhere (None: its embedder cannot be)."""
    embedder = writer.embedder
    if not isinstance(embedder, Embedder):
        return None  # a stand-in (tests) that another process could not make again
    url = writer.engine.url.render_as_string(hide_password=False)
    return BuildJob(url, writer.root, embedder.model, embedder.backend, writer.index_type)


def rebuild_in_worker(job: BuildJob, progress: Progress | None = None) -> SyncReport:
    """Run ``IndexWriter.rebuild`` in a spawned process; its report, or ``BuildFailed``."""
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    process = context.Process(target=_build, args=(job, messages), name="index-build")
    process.start()
    try:
        while True:
            try:
                kind, *payload = messages.get(timeout=1.0)
            except queue.Empty:
                if not process.is_alive():
                    raise BuildFailed(
                        f"The index build stopped (exit code {process.exitcode}); "
                        "the previous index is still live."
                    ) from None
                continue
            if kind == "progress" and progress is not None:
                progress(*payload)
            elif kind == "done":
                return SyncReport(**payload[0])
            elif kind == "failed":
                raise BuildFailed(f"The index build failed: {payload[0]}")
    finally:
        process.join(timeout=30)
        if process.is_alive():
            process.kill()


def _build(job: BuildJob, messages: multiprocessing.Queue) -> None:
    from ingest.db import open_engine

    os.nice(BUILD_NICENESS)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    engine = open_engine(job.database_url)
    try:
        embedder = Embedder(job.model, backend=job.backend)
        writer = IndexWriter(engine, embedder, job.index_dir, job.index_type)
        report = writer.rebuild(lambda done, total: messages.put(("progress", done, total)))
        writer.wait_for_merge()
        messages.put(("done", asdict(report)))
    except Exception as error:  # reported to the parent, which raises it as one line
        log.exception("index build failed")
        messages.put(("failed", f"{type(error).__name__}: {error}"))
    finally:
        engine.dispose()
