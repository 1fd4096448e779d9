"""Embeddings remembered by (model, passage text hash), so unchanged text is embedded once.

Rows name their model by a small number (``embedding_models``), not by its name.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import Engine, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ingest.db import session_scope
from ingest.models import CachedEmbedding, EmbeddingModel, Passage

CHUNK = 500


def _insert(engine: Engine):
    return pg_insert if engine.dialect.name == "postgresql" else sqlite_insert


def model_id(engine: Engine, model: str, create: bool = False) -> int | None:
    """The number ``model``'s vectors are cached under (None if it has none and not ``create``)."""
    query = select(EmbeddingModel.id).where(EmbeddingModel.name == model)
    with session_scope(engine) as session:
        found = session.scalar(query)
        if found is not None or not create:
            return found
        # Two processes may add the same model at once: the second insert does nothing.
        session.execute(_insert(engine)(EmbeddingModel).values(name=model).on_conflict_do_nothing())
        return session.scalar(query)


def cached_vectors(engine: Engine, model: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
    found: dict[str, np.ndarray] = {}
    number = model_id(engine, model)
    if number is None:
        return found
    unique = list(dict.fromkeys(hashes))
    with session_scope(engine) as session:
        for start in range(0, len(unique), CHUNK):
            chunk = unique[start : start + CHUNK]
            query = select(CachedEmbedding.text_hash, CachedEmbedding.vector).where(
                CachedEmbedding.model_id == number, CachedEmbedding.text_hash.in_(chunk)
            )
            for digest, blob in session.execute(query):
                found[digest] = np.frombuffer(blob, dtype=np.float32)
    return found


def remember_vectors(engine: Engine, model: str, vectors: dict[str, np.ndarray]) -> None:
    if not vectors:
        return
    number = model_id(engine, model, create=True)
    rows = [
        {"model_id": number, "text_hash": digest, "vector": vector.astype(np.float32).tobytes()}
        for digest, vector in vectors.items()
    ]
    # One executemany of a compiled statement: a multi-row VALUES per chunk was compiled
    # anew for every chunk, which cost more than the writing.
    statement = _insert(engine)(CachedEmbedding.__table__).on_conflict_do_nothing()
    with session_scope(engine) as session:
        session.connection().execute(statement, rows)


def prune_cache(engine: Engine) -> int:
    """Delete cached vectors (of any model) whose text no stored passage holds; how many.

    Read first, then delete in small transactions, so no writer waits on a long one.
    """
    query = select(CachedEmbedding.model_id, CachedEmbedding.text_hash).where(
        CachedEmbedding.text_hash.not_in(select(Passage.text_hash))
    )
    with session_scope(engine) as session:
        unused = session.execute(query).all()
    by_model: dict[int, list[str]] = {}
    for number, digest in unused:
        by_model.setdefault(number, []).append(digest)
    for number, digests in by_model.items():
        for start in range(0, len(digests), CHUNK):
            with session_scope(engine) as session:
                session.execute(
                    delete(CachedEmbedding).where(
                        CachedEmbedding.model_id == number,
                        CachedEmbedding.text_hash.in_(digests[start : start + CHUNK]),
                    )
                )
    return len(unused)
