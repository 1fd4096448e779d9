"""Embeddings remembered by (model, passage text hash), so unchanged text is embedded once."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import Engine, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ingest.db import session_scope
from ingest.models import CachedEmbedding, Passage

CHUNK = 500


def cached_vectors(engine: Engine, model: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
    found: dict[str, np.ndarray] = {}
    unique = list(dict.fromkeys(hashes))
    with session_scope(engine) as session:
        for start in range(0, len(unique), CHUNK):
            chunk = unique[start : start + CHUNK]
            query = select(CachedEmbedding.text_hash, CachedEmbedding.vector).where(
                CachedEmbedding.model == model, CachedEmbedding.text_hash.in_(chunk)
            )
            for digest, blob in session.execute(query):
                found[digest] = np.frombuffer(blob, dtype=np.float32)
    return found


def remember_vectors(engine: Engine, model: str, vectors: dict[str, np.ndarray]) -> None:
    rows = [
        {"model": model, "text_hash": digest, "vector": vector.astype(np.float32).tobytes()}
        for digest, vector in vectors.items()
    ]
    insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
    with session_scope(engine) as session:
        for start in range(0, len(rows), CHUNK):
            statement = insert(CachedEmbedding).values(rows[start : start + CHUNK])
            session.execute(statement.on_conflict_do_nothing())


def prune_cache(engine: Engine) -> int:
    """Delete cached vectors (of any model) whose text no stored passage holds; how many.

    Read first, then delete in small transactions, so no writer waits on a long one.
    """
    query = select(CachedEmbedding.model, CachedEmbedding.text_hash).where(
        CachedEmbedding.text_hash.not_in(select(Passage.text_hash))
    )
    with session_scope(engine) as session:
        unused = session.execute(query).all()
    by_model: dict[str, list[str]] = {}
    for model, digest in unused:
        by_model.setdefault(model, []).append(digest)
    for model, digests in by_model.items():
        for start in range(0, len(digests), CHUNK):
            with session_scope(engine) as session:
                session.execute(
                    delete(CachedEmbedding).where(
                        CachedEmbedding.model == model,
                        CachedEmbedding.text_hash.in_(digests[start : start + CHUNK]),
                    )
                )
    return len(unused)
