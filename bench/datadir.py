"""A fresh newsbot data directory holding the benchmark corpus, built by the product's ingest."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, select

from bench.realtimeqa import CorpusArticle
from bench.vector_cache import VectorCache
from index.embedder import Embedder
from index.search import Retriever
from ingest.db import open_engine, session_scope
from ingest.models import GLOBAL_GUILD, Passage
from ingest.pipeline import store_raw_articles

log = logging.getLogger(__name__)

SOURCE_NAME = "realtimeqa-2022"


@dataclass
class ProductCorpus:
    engine: Engine
    retriever: Retriever
    ingest_seconds: float
    index_seconds: float


def build(
    data_dir: Path,
    articles: list[CorpusArticle],
    embedder: Embedder,
    cache: VectorCache,
    ingest: bool = True,
) -> ProductCorpus:
    """Ingest ``articles`` into ``data_dir`` and build its index, embedding only new text.

    With ``ingest=False`` the database in ``data_dir`` already holds them (a snapshot of an
    earlier ingest of the same data by the same code).
    """
    engine = open_engine(f"sqlite:///{(data_dir / 'newsbot.db').resolve()}")
    started = time.perf_counter()
    if ingest:
        report = store_raw_articles(
            engine, [a.as_raw() for a in articles], SOURCE_NAME, GLOBAL_GUILD, _log_progress
        )
        log.info(
            "ingested %d articles (%d duplicates) into %d passages in %.0fs",
            report.result.added,
            report.result.duplicates,
            report.result.passages_added,
            time.perf_counter() - started,
        )
    ingest_seconds = time.perf_counter() - started
    started = time.perf_counter()
    with session_scope(engine) as session:
        rows = session.execute(select(Passage.text, Passage.text_hash)).all()
    cache.vectors(embedder, [text for text, _ in rows], label="passages")
    cache.copy_into(engine, embedder.name, [digest for _, digest in rows])
    retriever = Retriever(engine, embedder, data_dir / "index")
    sync = retriever.sync()
    if sync.embedded:
        log.warning("the index embedded %d passages the cache missed", sync.embedded)
    index_seconds = time.perf_counter() - started
    log.info("index of %d passages ready in %.0fs", sync.total, index_seconds)
    return ProductCorpus(engine, retriever, ingest_seconds, index_seconds)


def _log_progress(done: int, total: int) -> None:
    if done == total or done % 1000 == 0:
        log.info("ingest: %d/%d articles", done, total)
