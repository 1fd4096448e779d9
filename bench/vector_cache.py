"""Embeddings kept between benchmark runs, so a second run embeds nothing.

Two stores, one per text kind, both keyed by (model, sha256 of the text):

* product passages: a SQLite file with the product's own ``embedding_cache`` table, copied
  into each run's fresh database before the index is built (the product reads it there);
* baseline chunks: the same, in a second file, read directly by the baseline retrievers.

Texts are embedded in resumable batches: an interrupted first run keeps what it finished.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sqlalchemy import Engine

from index.cache import cached_vectors, remember_vectors
from index.embedder import Embedder
from ingest.db import open_engine
from ingest.store import text_hash

log = logging.getLogger(__name__)

BATCH = 1024


class VectorCache:
    """A persistent (model, text hash) → vector store in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.engine = open_engine(f"sqlite:///{path.resolve()}")

    def vectors(self, embedder: Embedder, texts: Sequence[str], label: str = "texts") -> np.ndarray:
        """One unit vector per text, embedding (and remembering) only the unknown ones."""
        hashes = [text_hash(t) for t in texts]
        known = cached_vectors(self.engine, embedder.name, hashes)
        todo: dict[str, str] = {}
        for digest, text in zip(hashes, texts, strict=True):
            if digest not in known:
                todo.setdefault(digest, text)
        if todo:
            log.info("embedding %d new %s (%d cached)", len(todo), label, len(known))
            self._embed(embedder, todo, known)
        if not texts:
            return np.zeros((0, embedder.dimension), dtype=np.float32)
        return np.vstack([known[h] for h in hashes]).astype(np.float32)

    def _embed(self, embedder: Embedder, todo: dict[str, str], known: dict) -> None:
        digests = list(todo)
        started = time.perf_counter()
        for start in range(0, len(digests), BATCH):
            chunk = digests[start : start + BATCH]
            fresh = embedder.embed([todo[d] for d in chunk])
            new = dict(zip(chunk, fresh, strict=True))
            remember_vectors(self.engine, embedder.name, new)
            known.update(new)
            done = start + len(chunk)
            rate = done / (time.perf_counter() - started)
            log.info("embedded %d/%d (%.0f/s)", done, len(digests), rate)

    def copy_into(self, engine: Engine, model: str, hashes: Sequence[str]) -> int:
        """Put the cached vectors of these hashes into another database's embedding cache."""
        known = cached_vectors(self.engine, model, hashes)
        remember_vectors(engine, model, known)
        return len(known)
