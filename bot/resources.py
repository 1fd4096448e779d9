"""What a newsbot process shares: the database engine, the model and index, one HTTP fetcher.

:func:`open_resources` is the one place that opens them, and every entry point goes through
it: the bot's ``main`` with ``async with`` (as in discord.py's ``examples/advanced_startup.py``),
the command line and the console through :func:`resources_on`. The services are handed the
:class:`Resources` and never open their own.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Engine

from bot.settings import Settings
from index.answer import NO_BARS, Answerer, QuoteBars
from index.embedder import Embedder
from index.search import Retriever
from ingest.db import open_database
from ingest.fetch import SafeFetcher, SharedHostSlots

log = logging.getLogger(__name__)


@dataclass
class Resources:
    """Opened once per process by :func:`open_resources` and handed to every service.

    One ``fetcher`` serves every refresh, so its limits ("at most 2 requests at once per
    host") hold for the whole process. The model loads on first use: listing sources or
    showing stats needs no torch.
    """

    settings: Settings
    engine: Engine
    fetcher: SafeFetcher
    _retriever: Retriever | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def retriever(self) -> Retriever:
        with self._lock:
            if self._retriever is None:
                embedder = Embedder(self.settings.model, backend=self.settings.embedding_backend)
                self._retriever = Retriever(
                    self.engine,
                    embedder,
                    self.settings.index_dir,
                    index_type=self.settings.index_type,
                    # With workers, they embed; this process takes their vectors.
                    embed_passages=not self.settings.queued,
                    change_log_days=self.settings.change_log_days,
                )
            return self._retriever

    @property
    def answerer(self) -> Answerer:
        return Answerer(
            self.engine,
            self.retriever,
            min_score=self.settings.min_score,
            min_coverage=self.settings.min_coverage,
            bars=QuoteBars() if self.settings.related_quotes_only else NO_BARS,
        )


@asynccontextmanager
async def open_resources(
    settings: Settings, shared_slots: SharedHostSlots | None = None
) -> AsyncIterator[Resources]:
    """The database (migrated to the current schema), the lazy model and index, the fetcher;
    the engine is disposed and the fetcher's connections closed on the way out.

    ``shared_slots``: the per-host limit the fetcher shares with other processes (workers).
    """
    policy = settings.fetch_policy()  # a malformed allow-list is refused before anything opens
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # Blocking (it may run migrations), but nothing else runs in the process yet.
    engine = open_database(settings.resolved_database_url)
    try:
        async with SafeFetcher(policy, shared_slots=shared_slots) as fetcher:
            yield Resources(settings=settings, engine=engine, fetcher=fetcher)
    finally:
        engine.dispose()


@contextmanager
def resources_on(runner: asyncio.Runner, settings: Settings) -> Iterator[Resources]:
    """:func:`open_resources` for the command line and the console, which run blocking work
    (embedding under a progress bar, ``input()``) in the main thread, where Ctrl+C stops it,
    and their async calls with ``runner.run``: the fetcher lives on that runner's loop."""
    stack = AsyncExitStack()
    resources = runner.run(stack.enter_async_context(open_resources(settings)))
    try:
        yield resources
    finally:
        runner.run(stack.aclose())
