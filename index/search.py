"""The retriever: keeps the live index in step with the database and searches it."""

from __future__ import annotations

import fcntl
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, select

from index import vectors
from index.cache import cached_vectors, remember_vectors
from index.embedder import Embedder
from index.vectors import NO_DATE, Catalog, VectorIndex
from ingest.db import session_scope
from ingest.models import GLOBAL_GUILD, Article, Passage, Source

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
TEXT_CHUNK = 500


@dataclass(frozen=True)
class SearchFilters:
    """What a question may see: one server's sources (plus global ones), a time window, outlets."""

    guild_id: int | None = None
    as_of: datetime | None = None
    since: datetime | None = None
    source_ids: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Hit:
    passage_id: int
    score: float


@dataclass(frozen=True)
class SyncReport:
    added: int
    removed: int
    embedded: int
    total: int
    seconds: float
    rebuilt: bool


class Retriever:
    """Owns the on-disk index folder; ``sync``/``rebuild``/``search`` are blocking calls.

    Writers (this process or another) take a file lock; readers reload whenever the live
    version changes, so a bot keeps answering from the old index until a rebuild is swapped in.
    """

    def __init__(self, engine: Engine, embedder: Embedder, index_dir: Path) -> None:
        self.engine = engine
        self.embedder = embedder
        self.root = index_dir
        self._live: VectorIndex | None = None
        self._reload_lock = threading.Lock()

    # --- reading -------------------------------------------------------------------------

    def live(self) -> VectorIndex:
        """The live index, reloaded if another writer published a newer version."""
        version = vectors.current_version(self.root)
        live = self._live
        if live is not None and live.version == version:
            return live
        with self._reload_lock:
            if self._live is None or self._live.version != version:
                self._live = self._load_or_empty()
            return self._live

    def _load_or_empty(self) -> VectorIndex:
        for attempt in range(3):
            try:
                loaded = vectors.load(self.root)
                break
            except (FileNotFoundError, RuntimeError) as error:
                # A writer removed the version between reading CURRENT and the files.
                log.debug("index reload raced a writer (%s), retrying", error)
                time.sleep(0.05 * (attempt + 1))
        else:
            loaded = None
        if loaded is None or not self._compatible(loaded):
            return VectorIndex(self.embedder.name, self.embedder.dimension)
        return loaded

    def _compatible(self, index: VectorIndex) -> bool:
        return index.model == self.embedder.name and index.dimension == self.embedder.dimension

    def needs_rebuild(self) -> bool:
        manifest = vectors.read_manifest(self.root)
        return manifest is not None and (
            manifest.model != self.embedder.name or manifest.dimension != self.embedder.dimension
        )

    def allowed_ids(self, index: VectorIndex, filters: SearchFilters) -> np.ndarray | None:
        """Passage ids the filters admit, or None when they admit everything."""
        catalog = index.catalog
        mask = np.ones(len(catalog.ids), dtype=bool)
        if filters.guild_id is not None:
            mask &= np.isin(catalog.guild_ids, [GLOBAL_GUILD, filters.guild_id])
        dated = catalog.published != NO_DATE
        if filters.as_of is not None:
            mask &= ~dated | (catalog.published <= int(filters.as_of.timestamp()))
        if filters.since is not None:
            mask &= dated & (catalog.published >= int(filters.since.timestamp()))
        if filters.source_ids is not None:
            mask &= np.isin(catalog.source_ids, list(filters.source_ids))
        return None if mask.all() else catalog.ids[mask]

    def search(self, query: str, k: int = 10, filters: SearchFilters | None = None) -> list[Hit]:
        """Passages nearest to the query, best first (cosine similarity as the score)."""
        index = self.live()
        allowed = self.allowed_ids(index, filters or SearchFilters())
        query_vector = self.embedder.embed_query(query)
        ids, scores = index.search(query_vector, k, allowed)
        return [Hit(int(i), float(s)) for i, s in zip(ids, scores, strict=True)]

    def searchable_count(self, filters: SearchFilters | None = None) -> int:
        index = self.live()
        allowed = self.allowed_ids(index, filters or SearchFilters())
        return len(index) if allowed is None else len(allowed)

    # --- writing -------------------------------------------------------------------------

    @contextmanager
    def _writer(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def sync(self, progress: Progress | None = None) -> SyncReport:
        """Embed passages the index lacks and drop the ones the database no longer has."""
        with self._writer():
            current = vectors.load(self.root)
            if current is None or not self._compatible(current):
                return self._build(progress, rebuilt=current is not None)
            return self._update(current, progress)

    def rebuild(self, progress: Progress | None = None) -> SyncReport:
        """A fresh index from the database; cached embeddings make unchanged text free."""
        with self._writer():
            return self._build(progress, rebuilt=True)

    def _build(self, progress: Progress | None, rebuilt: bool) -> SyncReport:
        fresh = VectorIndex(self.embedder.name, self.embedder.dimension)
        return self._update(fresh, progress, rebuilt=rebuilt, force_save=True)

    def _update(
        self,
        index: VectorIndex,
        progress: Progress | None,
        rebuilt: bool = False,
        force_save: bool = False,
    ) -> SyncReport:
        started = time.perf_counter()
        catalog = self._catalog_from_database()
        stale = index.catalog.ids[~np.isin(index.catalog.ids, catalog.ids)]
        removed = index.remove(stale)
        missing = catalog.ids[~np.isin(catalog.ids, index.catalog.ids)]
        vectors_missing, embedded = self._vectors_for(missing, progress)
        index.add(vectors_missing, catalog.subset(np.isin(catalog.ids, missing)))
        # Dates and owners can change without the text changing: take them from the database.
        index.catalog = catalog.subset(np.isin(catalog.ids, index.catalog.ids))
        if force_save or removed or len(missing) or self._live is None:
            staged = vectors.new_version_dir(self.root)
            index.version = vectors.new_version_name()
            vectors.save_into(index, staged)
            self.after_save(index, staged)
            vectors.publish(self.root, staged, index.version)
            self._live = index
        return SyncReport(
            added=len(missing),
            removed=removed,
            embedded=embedded,
            total=len(index),
            seconds=time.perf_counter() - started,
            rebuilt=rebuilt,
        )

    def after_save(self, index: VectorIndex, staged: Path) -> None:
        """Hook for indexes that live beside the vectors in the same version folder."""

    def _catalog_from_database(self) -> Catalog:
        query = (
            select(Passage.id, Source.guild_id, Source.id, Article.id, Article.published_at)
            .join(Article, Passage.article_id == Article.id)
            .join(Source, Article.source_id == Source.id)
            .order_by(Passage.id)
        )
        with session_scope(self.engine) as session:
            rows = session.execute(query).all()
        if not rows:
            return Catalog.empty()
        ids, guilds, sources, articles, published = zip(*rows, strict=True)
        stamps = [int(p.timestamp()) if p is not None else NO_DATE for p in published]
        return Catalog(
            np.array(ids, dtype=np.int64),
            np.array(guilds, dtype=np.int64),
            np.array(sources, dtype=np.int64),
            np.array(articles, dtype=np.int64),
            np.array(stamps, dtype=np.int64),
        )

    def _vectors_for(self, ids: np.ndarray, progress: Progress | None) -> tuple[np.ndarray, int]:
        """Vectors for these passages: from the cache where possible, embedded otherwise."""
        if len(ids) == 0:
            return np.zeros((0, self.embedder.dimension), dtype=np.float32), 0
        texts: dict[int, tuple[str, str]] = {}
        with session_scope(self.engine) as session:
            id_list = [int(i) for i in ids]
            for start in range(0, len(id_list), TEXT_CHUNK):
                chunk = id_list[start : start + TEXT_CHUNK]
                query = select(Passage.id, Passage.text, Passage.text_hash).where(
                    Passage.id.in_(chunk)
                )
                texts.update((pid, (text, digest)) for pid, text, digest in session.execute(query))
        hashes = [texts[int(i)][1] for i in ids]
        known = cached_vectors(self.engine, self.embedder.name, hashes)
        todo = list(dict.fromkeys(h for h in hashes if h not in known))
        text_of = {digest: text for text, digest in texts.values()}
        if progress:
            progress(0, len(todo))
        if todo:
            fresh = self.embedder.embed(
                [text_of[h] for h in todo],
                progress=(lambda done: progress(done, len(todo))) if progress else None,
            )
            new = dict(zip(todo, fresh, strict=True))
            remember_vectors(self.engine, self.embedder.name, new)
            known.update(new)
        return np.vstack([known[h] for h in hashes]).astype(np.float32), len(todo)
