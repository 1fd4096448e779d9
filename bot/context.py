"""The one owner of newsbot's resources: database engine, embedding model, index."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Engine

from bot.settings import Settings
from index.answer import NO_BARS, Answerer, QuoteBars
from index.embedder import Embedder
from index.search import Retriever
from ingest.db import open_database

log = logging.getLogger(__name__)


@dataclass
class AppContext:
    """Opened once by ``main``/the CLI and handed to every service.

    The model loads on first use: listing sources or showing stats needs no torch.
    """

    settings: Settings
    engine: Engine
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


@contextmanager
def open_context(settings: Settings) -> Iterator[AppContext]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = open_database(settings.resolved_database_url)
    try:
        yield AppContext(settings=settings, engine=engine)
    finally:
        engine.dispose()
