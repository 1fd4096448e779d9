"""Workers embed into the cache; a bot that does not embed indexes what the cache holds."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from sqlalchemy import Engine

from index.embedder import Embedder
from index.precompute import embed_uncached
from index.search import Retriever
from ingest.pipeline import store_raw_articles
from tests.index.test_cache import articles, cached
from tests.index.words import WordEmbedder


class SlowEmbedder(WordEmbedder):
    """Slow enough that a second run starting meanwhile would find the same texts uncached."""

    def embed(self, texts: Sequence[str], *args: Any, **kwargs: Any) -> np.ndarray:
        time.sleep(0.5)
        return super().embed(texts, *args, **kwargs)


def test_the_workers_embed_only_text_without_a_vector(engine: Engine) -> None:
    """Each text is embedded once, by the first call that finds it uncached."""
    store_raw_articles(engine, articles(3), "ledger")
    embedder = cast(Embedder, WordEmbedder())
    assert embed_uncached(engine, embedder) == 3
    assert embed_uncached(engine, embedder) == 0
    store_raw_articles(engine, articles(2, "b"), "courier")
    assert embed_uncached(engine, embedder) == 2
    assert cached(engine) == 5


def test_a_refresh_embeds_its_own_source_s_new_passages_only(engine: Engine) -> None:
    """After one source's refresh only its passages are embedded, whatever else waits."""
    ledger = store_raw_articles(engine, articles(3), "ledger")
    store_raw_articles(engine, articles(2, "b"), "courier")
    embedder = cast(Embedder, WordEmbedder())
    assert embed_uncached(engine, embedder, source_id=ledger.source_id) == 3
    assert embed_uncached(engine, embedder) == 2


def test_a_bot_that_does_not_embed_takes_the_workers_vectors_only(
    engine: Engine, tmp_path: Path
) -> None:
    """Passages without a cached vector wait for a later sync; none is embedded by the bot."""
    embedder = cast(Embedder, WordEmbedder())
    store_raw_articles(engine, articles(3), "ledger")
    embed_uncached(engine, embedder)
    store_raw_articles(engine, articles(2, "b"), "courier")  # not embedded yet
    bot = Retriever(engine, embedder, tmp_path / "index", embed_passages=False)
    first = bot.sync()
    assert (first.added, first.embedded, first.total) == (3, 0, 3)
    assert cached(engine) == 3
    embed_uncached(engine, embedder)
    second = bot.sync()
    assert (second.added, second.embedded, second.total) == (2, 0, 5)
    assert bot.searchable_count() == 5


@pytest.mark.postgres
def test_workers_embedding_at_once_embed_each_text_once(postgres_engine: Engine) -> None:
    """Two workers' embedding runs take turns: together they embed every new text once."""
    store_raw_articles(postgres_engine, articles(40), "ledger")
    counts: list[int] = []
    embedder = cast(Embedder, SlowEmbedder())

    def run() -> None:
        counts.append(embed_uncached(postgres_engine, embedder))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(counts) == [0, 40]
