"""Embedding stored passages ahead of any index: what a worker does for the bot replicas.

With ``NEWSBOT_JOBS=queue`` the workers embed every new passage into the embedding cache (a
table), and each bot builds its own index from that cache without embedding anything
(``Retriever(embed_passages=False)``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, and_, select, text

from index.cache import model_id, remember_vectors
from index.embedder import ENCODE_BATCH, Embedder
from ingest.db import session_scope
from ingest.models import Article, CachedEmbedding, Passage

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
# Any fixed number: the advisory lock names "newsbot embeds the uncached passages".
_EMBED_LOCK_KEY = 0x6E6577736D626564


def uncached_passages(engine: Engine, model: str, source_id: int | None = None) -> dict[str, str]:
    """Text hash → text of every stored passage (of one source) without a ``model`` vector."""
    query = (
        select(Passage.text_hash, Passage.text)
        .outerjoin(
            CachedEmbedding,
            and_(
                CachedEmbedding.model_id == model_id(engine, model),  # None: nothing cached
                CachedEmbedding.text_hash == Passage.text_hash,
            ),
        )
        .where(CachedEmbedding.text_hash.is_(None))
        .order_by(Passage.id)
    )
    if source_id is not None:
        query = query.join(Article, Passage.article_id == Article.id).where(
            Article.source_id == source_id
        )
    with session_scope(engine) as session:
        return {digest: body for digest, body in session.execute(query)}


def embed_uncached(
    engine: Engine,
    embedder: Embedder,
    progress: Progress | None = None,
    source_id: int | None = None,
) -> int:
    """Embed and cache every passage text without a vector for this model; how many.

    With ``source_id``, only that source's passages: what a refresh just stored, at a cost in
    proportion to the source, not to the corpus. Sweeps of the whole corpus run one at a time
    on PostgreSQL (the others wait, then find little or nothing left), so two workers never
    embed the same new text. Batches are committed as they are done: a worker killed midway
    loses one batch.
    """
    alone = _one_at_a_time(engine) if source_id is None else contextlib.nullcontext()
    with alone:
        todo = uncached_passages(engine, embedder.name, source_id)
        hashes = list(todo)
        if progress:
            progress(0, len(hashes))
        for first in range(0, len(hashes), ENCODE_BATCH):
            batch = hashes[first : first + ENCODE_BATCH]
            vectors = embedder.embed([todo[h] for h in batch])
            remember_vectors(engine, embedder.name, dict(zip(batch, vectors, strict=True)))
            if progress:
                progress(first + len(batch), len(hashes))
    if hashes:
        log.info("embedded %d new passage texts", len(hashes))
    return len(hashes)


@contextmanager
def _one_at_a_time(engine: Engine) -> Iterator[None]:
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _EMBED_LOCK_KEY})
        connection.commit()
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _EMBED_LOCK_KEY})
            connection.commit()
