"""The embedding cache: written as batches finish, pruned of text no passage holds."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import cast

import numpy as np
import pytest
from sqlalchemy import Engine, func, select

from index.embedder import Embedder
from index.search import Retriever
from index.updates import CACHE_BATCH
from ingest.db import session_scope
from ingest.extract import RawArticle
from ingest.models import CachedEmbedding
from ingest.pipeline import store_raw_articles
from ingest.sources import remove_source
from tests.index.words import WordEmbedder


class Crash(Exception):
    pass


class CrashingEmbedder(WordEmbedder):
    """Embeds ``batches`` batches, then dies as a killed process would."""

    def __init__(self, batches: int) -> None:
        self.batches = batches

    def embed(
        self,
        texts: Sequence[str],
        progress: Callable[[int], None] | None = None,
        batch_size: int = 64,
    ) -> np.ndarray:
        if self.batches == 0:
            raise Crash
        self.batches -= 1
        return super().embed(texts, progress, batch_size)


def articles(count: int, prefix: str = "a") -> list[RawArticle]:
    return [
        RawArticle(
            title=f"Story {prefix}{i}",
            body=f"The {prefix}{i} committee met on Monday and voted to repair bridge {i}.",
            key=f"{prefix}{i}",
        )
        for i in range(count)
    ]


def cached(engine: Engine) -> int:
    with session_scope(engine) as session:
        return session.scalar(select(func.count()).select_from(CachedEmbedding)) or 0


def test_a_crash_mid_embedding_keeps_the_batches_already_done(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    """Two batches done, then a crash: both are in the cache and never embedded again."""
    store_raw_articles(sqlite_engine, articles(CACHE_BATCH * 3), "ledger")
    crashing = Retriever(sqlite_engine, cast(Embedder, CrashingEmbedder(2)), tmp_path / "index")
    with pytest.raises(Crash):
        crashing.sync()
    assert cached(sqlite_engine) == 2 * CACHE_BATCH
    report = Retriever(sqlite_engine, cast(Embedder, WordEmbedder()), tmp_path / "index").sync()
    assert report.embedded == CACHE_BATCH and report.total == 3 * CACHE_BATCH


def test_reindex_drops_cached_vectors_no_passage_uses(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    """After a source is removed, `reindex` leaves only the vectors of stored passages."""
    store_raw_articles(sqlite_engine, articles(3), "ledger")
    gone = store_raw_articles(sqlite_engine, articles(2, "b"), "courier")
    retriever = Retriever(sqlite_engine, cast(Embedder, WordEmbedder()), tmp_path / "index")
    retriever.sync()
    with session_scope(sqlite_engine) as session:
        remove_source(session, gone.source_id)
    assert cached(sqlite_engine) == 5
    report = retriever.rebuild()
    assert cached(sqlite_engine) == 3 and report.total == 3 and report.embedded == 0


def test_vectors_cached_before_model_numbers_survive_the_upgrade(tmp_path: Path) -> None:
    """A database at 0003 (model names in every row) keeps its cached vectors at 0007."""
    from alembic import command
    from sqlalchemy import create_engine, text

    from index.cache import cached_vectors
    from ingest.db import open_engine
    from ingest.migrations import alembic_config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = create_engine(url)
    config = alembic_config()
    with old.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")
    vector = np.arange(4, dtype=np.float32)
    with old.begin() as connection:
        for shift, model in enumerate(("model-a", "model-b")):
            connection.execute(
                text("INSERT INTO embedding_cache VALUES (:m, 'h1', :v)"),
                {"m": model, "v": (vector + shift).tobytes()},
            )
    old.dispose()
    engine = open_engine(url)
    try:
        assert np.array_equal(cached_vectors(engine, "model-a", ["h1"])["h1"], vector)
        assert np.array_equal(cached_vectors(engine, "model-b", ["h1"])["h1"], vector + 1)
        assert cached_vectors(engine, "model-c", ["h1"]) == {}
        with session_scope(engine) as session:
            numbers = session.execute(text("SELECT model_id FROM embedding_cache")).scalars()
            assert sorted(numbers) == [1, 2]
    finally:
        engine.dispose()
