"""The retriever: keeps the live index in step with the database and searches it."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, func, select

from index import vectors
from index.cache import cached_vectors, prune_cache, remember_vectors
from index.embedder import ENCODE_BATCH, Embedder
from index.facts import PassageFacts
from index.lexical import QUESTION_WORDS, LexicalIndex, document_text, tokenize
from index.query import ParsedQuery, match_outlets, parse_query
from index.ranking import DEFAULT_MODEL as DEFAULT_RANKING
from index.ranking import FEATURES, CandidateSignals, RankingModel, features
from index.vectors import NO_DATE, Catalog, IndexKind, VectorIndex
from ingest.db import session_scope
from ingest.errors import InputError, NewsbotError, first_line
from ingest.models import GLOBAL_GUILD, Article, Passage, Source

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
TEXT_CHUNK = 500
CACHE_BATCH = ENCODE_BATCH  # embedded passages written to the cache per transaction
DENSE_CANDIDATES = 200
LEXICAL_CANDIDATES = 200
# Tuned on the RealTime QA dev weeks (bench/README.md): articles dated up to this long after
# "as of" stay visible, ranked down by the recency prior.
AS_OF_GRACE = timedelta(days=1)
TITLES = "titles"  # the title-only BM25 index's folder in a version


@dataclass(frozen=True)
class SearchFilters:
    """What a question may see: one server's sources (plus global ones), a time window, outlets.

    ``as_of`` is "now" for the question: later articles are hidden (after a short grace, see
    ``Retriever.as_of_grace``) and recency is measured from it. ``outlets`` are article
    outlets as stored (e.g. "Reuters"). With ``read_question`` the question's own words can
    add an outlet or a time window ("according to Reuters", "in March 2025").
    """

    guild_id: int | None = None
    as_of: datetime | None = None
    since: datetime | None = None
    source_ids: tuple[int, ...] | None = None
    until: datetime | None = None
    outlets: tuple[str, ...] | None = None
    read_question: bool = True
    article_ids: tuple[int, ...] | None = None  # only these articles (what a refresh stored)


@dataclass(frozen=True)
class Hit:
    passage_id: int
    score: float
    similarity: float = 0.0  # cosine to the question: how on-topic, whatever the ranking adds
    coverage: float = 0.0  # idf-weighted share of the question's words the passage holds


@dataclass(frozen=True)
class SyncReport:
    added: int
    removed: int
    embedded: int
    total: int
    seconds: float
    rebuilt: bool


@dataclass(frozen=True)
class CandidateSet:
    """What one question's search put forward, before the ranking model orders it."""

    ids: np.ndarray  # passage ids
    similarity: np.ndarray  # cosine to the question
    coverage: np.ndarray  # idf-weighted share of the question's words in title and passage
    features: np.ndarray  # one row of ``ranking.FEATURES`` per candidate
    query: ParsedQuery


@dataclass
class _Lexical:
    """A BM25 index with its rows mapped to the catalog rows of one index version."""

    index: LexicalIndex
    catalog_rows: np.ndarray  # catalog row of each lexical row
    lexical_rows: np.ndarray  # lexical row of each catalog row, -1 if absent

    @classmethod
    def aligned(cls, catalog_ids: np.ndarray, index: LexicalIndex) -> _Lexical:
        if len(catalog_ids) == 0:
            index = LexicalIndex.empty()
        rows = np.searchsorted(catalog_ids, index.ids)
        last = max(len(catalog_ids) - 1, 0)
        known = (rows < len(catalog_ids)) & (catalog_ids[np.minimum(rows, last)] == index.ids)
        if not known.all():
            # The lexical index lags the vectors only if a save was interrupted; drop extras.
            index = index.updated(index.ids[~known], [])
            rows = rows[known]
        back = np.full(len(catalog_ids), -1, dtype=np.int64)
        back[rows] = np.arange(len(rows))
        return cls(index, rows.astype(np.int64), back)

    def at(self, values: np.ndarray, catalog_rows: np.ndarray) -> np.ndarray:
        """Per-lexical-row ``values`` read at catalog rows (0 where the index lacks a row)."""
        rows = self.lexical_rows[catalog_rows]
        out = np.zeros(len(catalog_rows), dtype=np.float32)
        out[rows >= 0] = values[rows[rows >= 0]]
        return out


@dataclass
class _Sidecar:
    """What one index version keeps beside its vectors: BM25 indexes and passage facts."""

    version: str
    lexical: _Lexical  # title and passage text
    titles: _Lexical  # the article's title alone
    facts: PassageFacts
    # Outlets each server can see, worked out once per version: every question asks.
    outlets_seen: dict[int, list[str]] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        index: VectorIndex,
        lexical: LexicalIndex,
        titles: LexicalIndex,
        facts: PassageFacts,
    ) -> _Sidecar:
        ids = index.catalog.ids
        return cls(
            index.version, _Lexical.aligned(ids, lexical), _Lexical.aligned(ids, titles), facts
        )

    @classmethod
    def empty(cls, index: VectorIndex, facts: PassageFacts | None = None) -> _Sidecar:
        none = LexicalIndex.empty()
        return cls.of(index, none, none, facts or PassageFacts.empty())


class IndexUnavailable(NewsbotError):
    """The saved index exists but cannot be read (damaged files): it needs a rebuild."""


class Retriever:
    """Owns the on-disk index folder; ``sync``/``rebuild``/``search`` are blocking calls.

    Writers (this process or another) take a file lock; readers reload whenever the live
    version changes, so a bot keeps answering from the old index until a rebuild is swapped in.
    A version holds the vectors, the BM25 index and the per-passage facts the ranking uses.
    """

    def __init__(
        self,
        engine: Engine,
        embedder: Embedder,
        index_dir: Path,
        model: RankingModel = DEFAULT_RANKING,
        as_of_grace: timedelta = AS_OF_GRACE,
        index_type: IndexKind = "auto",
        embed_passages: bool = True,
    ) -> None:
        self.engine = engine
        self.index_type = index_type  # exact or IVF search; "auto" chooses by corpus size
        # False for a bot whose workers embed (NEWSBOT_JOBS=queue): passages come from the
        # embedding cache only, and one not embedded yet waits for a later sync.
        self.embed_passages = embed_passages
        self.embedder = embedder
        self.root = index_dir
        self.model = model
        self.as_of_grace = as_of_grace
        self._live: VectorIndex | None = None
        self._sidecar: _Sidecar | None = None
        self._reload_lock = threading.Lock()
        self._fresh_build = False
        self._previous_version: str | None = None
        self._saved_sidecar: _Sidecar | None = None
        self._checked = False  # whether this process compared the index with the database

    # --- reading -------------------------------------------------------------------------

    def live(self) -> VectorIndex:
        """The live index, reloaded if another writer published a newer version."""
        return self._state()[0]

    def _state(self) -> tuple[VectorIndex, _Sidecar]:
        version = vectors.current_version(self.root)
        live, sidecar = self._live, self._sidecar
        if live is not None and sidecar is not None and live.version == version:
            return live, sidecar
        with self._reload_lock:
            if self._live is None or self._sidecar is None or self._live.version != version:
                self._live, self._sidecar = self._load_or_empty()
            state = self._live, self._sidecar
        if not self._checked:
            # Once per process: a writer killed between its commit and its index sync leaves
            # vectors of deleted passages, searched and counted until something syncs.
            self._checked = True
            orphans = orphan_ids(self.engine, state[0].catalog.ids)
            if len(orphans):
                log.warning(
                    "index %s holds %d passages the database no longer has; repairing it",
                    state[0].version,
                    len(orphans),
                )
                self.sync()
                return self._state()
        return state

    def _load_or_empty(self) -> tuple[VectorIndex, _Sidecar]:
        """The live version; empty before the first save or for another model (sync rebuilds).

        Raises :class:`IndexUnavailable` when the saved files cannot be read: answering from
        an empty index would say "not found" to every question without saying why.
        """
        failure: Exception | None = None
        for attempt in range(3):
            try:
                loaded = vectors.load(self.root, mapped=True)
                if loaded is not None and self._compatible(loaded):
                    return loaded, self._load_sidecar(loaded)
                break
            except Exception as error:  # faiss, numpy and json each raise their own types
                # A writer may have removed the version between reading CURRENT and the files.
                log.debug("index reload failed (%s), retrying", error)
                failure = error
                time.sleep(0.05 * (attempt + 1))
        else:
            assert failure is not None
            log.error("cannot load the index in %s: %s", self.root, failure)
            raise IndexUnavailable(
                f"The index could not be loaded ({first_line(failure)}); "
                "rebuild it with `newsbot reindex` (or /reindex)."
            )
        empty = VectorIndex(self.embedder.name, self.embedder.dimension)
        return empty, _Sidecar.empty(empty)

    def _load_sidecar(self, index: VectorIndex) -> _Sidecar:
        folder = self.root / index.version
        lexical = LexicalIndex.load(folder)
        titles = LexicalIndex.load(folder, TITLES)
        facts = PassageFacts.load(folder)
        if lexical is None or titles is None or facts is None:
            # Saved before hybrid search existed: answer from the vectors until the next sync.
            log.warning("index %s has no lexical index; run a sync or reindex", index.version)
            return _Sidecar.empty(index, PassageFacts.from_database(self.engine, index.catalog))
        return _Sidecar.of(index, lexical, titles, facts)

    def _compatible(self, index: VectorIndex) -> bool:
        return index.model == self.embedder.name and index.dimension == self.embedder.dimension

    def needs_rebuild(self) -> bool:
        manifest = vectors.read_manifest(self.root)
        return manifest is not None and (
            manifest.model != self.embedder.name or manifest.dimension != self.embedder.dimension
        )

    def _mask(self, index: VectorIndex, sidecar: _Sidecar, filters: SearchFilters) -> np.ndarray:
        """Catalog rows the filters admit."""
        catalog = index.catalog
        mask = np.ones(len(catalog.ids), dtype=bool)
        if filters.guild_id is not None:
            mask &= np.isin(catalog.guild_ids, [GLOBAL_GUILD, filters.guild_id])
        dated = catalog.published != NO_DATE
        if filters.as_of is not None:
            # A story dated a little after "now" is usually the same day's story in another
            # time zone, or one updated since; only later ones are truly from the future.
            latest = _seconds(filters.as_of, self.as_of_grace)
            mask &= ~dated | (catalog.published <= latest)
        if filters.since is not None:
            mask &= dated & (catalog.published >= int(filters.since.timestamp()))
        if filters.until is not None:
            mask &= dated & (catalog.published <= int(filters.until.timestamp()))
        if filters.source_ids is not None:
            mask &= np.isin(catalog.source_ids, list(filters.source_ids))
        if filters.article_ids is not None:
            mask &= np.isin(catalog.article_ids, list(filters.article_ids))
        if filters.outlets is not None:
            if len(sidecar.facts.ids) == len(mask):
                mask &= sidecar.facts.rows_with_outlets(filters.outlets)
            else:
                log.warning("no passage facts for index %s: outlet filter ignored", index.version)
        return mask

    def allowed_ids(self, index: VectorIndex, filters: SearchFilters) -> np.ndarray | None:
        """Passage ids the filters admit, or None when they admit everything."""
        live, sidecar = self._state()
        if live is not index:
            sidecar = _Sidecar.empty(index)
        mask = self._mask(index, sidecar, filters)
        return None if mask.all() else index.catalog.ids[mask]

    def outlets(self, guild_id: int | None = None) -> list[str]:
        """Outlet names in the live index that a server can see (None: every server's).

        What a question ("according to Reuters") and ``source`` can name: another server's
        outlet is unknown here, not an empty filter.
        """
        index, sidecar = self._state()
        facts = sidecar.facts
        if guild_id is None or len(facts.ids) != len(index.catalog.ids):
            return [name for name in facts.outlet_names if name]
        if guild_id not in sidecar.outlets_seen:
            visible = np.isin(index.catalog.guild_ids, [GLOBAL_GUILD, guild_id])
            names = (facts.outlet_names[code] for code in np.unique(facts.outlets[visible]))
            sidecar.outlets_seen[guild_id] = [name for name in names if name]
        return sidecar.outlets_seen[guild_id]

    def unindexed_words(self, text: str) -> set[str]:
        """Words of ``text`` (stemmed, as BM25 sees them) that no indexed passage or title holds.

        Question words ("what", "about") never count.
        """
        _, sidecar = self._state()
        vocabulary = sidecar.lexical.index.vocab
        return {word for word in tokenize(text) if word not in vocabulary} - QUESTION_WORDS

    def word_weights(self, text: str) -> dict[str, float]:
        """The idf of each word of ``text`` (stemmed); a word no passage holds weighs most."""
        _, sidecar = self._state()
        lexical = sidecar.lexical.index
        idf = lexical.idf()
        unseen = float(np.log1p(max(len(lexical), 1)))
        return {
            word: float(idf[lexical.vocab[word]]) if word in lexical.vocab else unseen
            for word in set(tokenize(text))
        }

    def article_ids(self, passage_ids: list[int]) -> list[int | None]:
        """The article of each passage, as the live index has it (None: not indexed)."""
        catalog = self._state()[0].catalog
        if len(catalog.ids) == 0:
            return [None] * len(passage_ids)
        ids = np.asarray(passage_ids, dtype=np.int64)
        rows = np.searchsorted(catalog.ids, ids).clip(max=len(catalog.ids) - 1)
        found = catalog.ids[rows] == ids
        return [
            int(catalog.article_ids[row]) if hit else None
            for row, hit in zip(rows.tolist(), found.tolist(), strict=True)
        ]

    def narrowed(
        self, filters: SearchFilters, source: str | None = None, since: datetime | None = None
    ) -> SearchFilters:
        """``filters`` limited to a source or outlet named by the user, and a start date.

        ``source`` is a source's name (as in ``newsbot sources``) or an outlet ("Reuters");
        a name that matches neither raises ``InputError`` rather than silently searching all.
        """
        if since is not None:
            filters = replace(filters, since=since)
        if source is None or not source.strip():
            return filters
        source_ids = self._sources_named(source.strip(), filters.guild_id)
        if source_ids:
            return replace(filters, source_ids=source_ids)
        outlets = match_outlets(source, self.outlets(filters.guild_id))
        if outlets:
            return replace(filters, outlets=outlets)
        raise InputError(f"no source or outlet called {source!r}")

    def _sources_named(self, name: str, guild_id: int | None) -> tuple[int, ...]:
        query = select(Source.id).where(func.lower(Source.name) == name.casefold())
        if guild_id is not None:
            query = query.where(Source.guild_id.in_([GLOBAL_GUILD, guild_id]))
        with session_scope(self.engine) as session:
            return tuple(session.scalars(query))

    def understand(
        self, question: str, filters: SearchFilters
    ) -> tuple[ParsedQuery, SearchFilters]:
        """The question's own constraints, merged into ``filters`` (explicit filters win)."""
        now = filters.as_of or datetime.now(UTC)
        if not filters.read_question:
            return ParsedQuery(question), filters
        parsed = parse_query(question, now, self.outlets(filters.guild_id))
        merged = filters
        if parsed.outlets and filters.outlets is None and filters.source_ids is None:
            merged = replace(merged, outlets=parsed.outlets)
        window = parsed.window
        if window is not None and window.explicit:
            if window.since is not None and (merged.since is None or window.since > merged.since):
                merged = replace(merged, since=window.since)
            if window.until is not None and (merged.until is None or window.until < merged.until):
                merged = replace(merged, until=window.until)
        return parsed, merged

    def candidates(self, query: str, filters: SearchFilters | None = None) -> CandidateSet:
        """Passages dense or lexical search puts forward, with the ranking's features."""
        filters = filters or SearchFilters()
        index, sidecar = self._state()
        parsed, merged = self.understand(query, filters)
        mask = self._mask(index, sidecar, merged)
        if not mask.any():
            none = np.zeros(0, np.int64)
            empty = none.astype(np.float32)
            return CandidateSet(none, empty, empty, np.zeros((0, len(FEATURES))), parsed)
        query_vector = self.embedder.embed_query(parsed.text)
        catalog = index.catalog
        allowed = None if mask.all() else catalog.ids[mask]
        dense_ids, _ = index.search(query_vector, DENSE_CANDIDATES, allowed)
        dense_rows = np.searchsorted(catalog.ids, dense_ids)
        lexical = sidecar.lexical
        bm25_all = lexical.index.scores(parsed.text)
        bm25_allowed = np.where(mask[lexical.catalog_rows], bm25_all, 0.0)
        bm25_best = float(bm25_allowed.max()) if len(bm25_allowed) else 0.0
        lexical_top = np.zeros(0, dtype=np.int64)
        if bm25_best > 0:
            top = np.argpartition(-bm25_allowed, min(LEXICAL_CANDIDATES, len(bm25_allowed) - 1))
            top = top[:LEXICAL_CANDIDATES]
            top = top[bm25_allowed[top] > 0]
            lexical_top = lexical.catalog_rows[top[np.argsort(-bm25_allowed[top], kind="stable")]]
        cand = np.unique(np.concatenate([dense_rows, lexical_top]))
        cos, near = _cosines(index, sidecar.facts, cand, query_vector)
        titles = sidecar.titles
        now = (filters.as_of or datetime.now(UTC)).timestamp()
        signals = CandidateSignals(
            cos=cos,
            dense_rank=_ranks(cand, dense_rows),
            bm25=lexical.at(bm25_all, cand),
            bm25_best=bm25_best,
            bm25_rank=_ranks(cand, lexical_top),
            coverage=_coverage(lexical, parsed.text, cand),
            title_bm25=titles.at(titles.index.scores(parsed.text), cand),
            title_coverage=_coverage(titles, parsed.text, cand),
            neighbour_cos=near,
            article_ids=catalog.article_ids[cand],
            published=catalog.published[cand],
            positions=sidecar.facts.positions[cand],
            chars=sidecar.facts.chars[cand],
            now=now,
            recent_hint=parsed.window is not None and not parsed.window.explicit,
        )
        return CandidateSet(catalog.ids[cand], cos, signals.coverage, features(signals), parsed)

    def search(self, query: str, k: int = 10, filters: SearchFilters | None = None) -> list[Hit]:
        """The best ``k`` passages for the query, best first; ``score`` is the ranking's."""
        found = self.candidates(query, filters)
        if len(found.ids) == 0:
            return []
        scores = self.model.scores(found.features)
        order = np.argsort(-scores, kind="stable")[:k]
        return [
            Hit(
                int(found.ids[i]),
                float(scores[i]),
                float(found.similarity[i]),
                float(found.coverage[i]),
            )
            for i in order
        ]

    def searchable_count(self, filters: SearchFilters | None = None) -> int:
        index, sidecar = self._state()
        return int(self._mask(index, sidecar, filters or SearchFilters()).sum())

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
            # A version saved before the lexical index existed gets one now.
            lacks_sidecar = not LexicalIndex.saved_in(self.root / current.version)
            return self._update(current, progress, force_save=lacks_sidecar)

    def rebuild(self, progress: Progress | None = None) -> SyncReport:
        """A fresh index from the database; cached embeddings make unchanged text free.

        Cached vectors of text no passage holds any more are dropped afterwards.
        """
        with self._writer():
            report = self._build(progress, rebuilt=True)
        pruned = prune_cache(self.engine)
        if pruned:
            log.info("dropped %d cached vectors of text no passage holds", pruned)
        return report

    def _build(self, progress: Progress | None, rebuilt: bool) -> SyncReport:
        fresh = VectorIndex(self.embedder.name, self.embedder.dimension)
        self._fresh_build = True
        try:
            return self._update(fresh, progress, rebuilt=rebuilt, force_save=True)
        finally:
            self._fresh_build = False

    def _update(
        self,
        index: VectorIndex,
        progress: Progress | None,
        rebuilt: bool = False,
        force_save: bool = False,
    ) -> SyncReport:
        started = time.perf_counter()
        # Ingest never changes a passage's text or title under its id (ingest/store.py makes
        # new rows), but a wiped or swapped database reuses ids, and so does a SQLite table
        # made before AUTOINCREMENT: a reused id counts as a removed passage and a new one.
        catalog, outlets = self._catalog_from_database()
        rewritten = _rewritten(index.catalog, catalog)
        if len(rewritten):
            log.info("%d passage ids now hold other text; re-indexing them", len(rewritten))
        gone = index.catalog.ids[~np.isin(index.catalog.ids, catalog.ids)]
        removed = index.remove(np.concatenate([gone, rewritten]))
        retagged = self._copies_changed(index, catalog, outlets)
        missing = catalog.ids[~np.isin(catalog.ids, index.catalog.ids)]
        if not self.embed_passages:
            missing = self._cached_only(missing)
        vectors_missing, embedded = self._vectors_for(missing, progress)
        index.add(vectors_missing, catalog.subset(np.isin(catalog.ids, missing)))
        # Dates and owners can change without the text changing: take them from the database.
        index.catalog = catalog.subset(np.isin(catalog.ids, index.catalog.ids))
        kind = vectors.kind_for(len(index), self.index_type)
        converted = kind != index.kind
        if converted:
            log.info("index of %d passages becomes %s search", len(index), kind)
            index = index.converted(kind)
        if force_save or removed or len(missing) or retagged or converted:
            previous = vectors.current_version(self.root)
            staged = vectors.new_version_dir(self.root)
            index.version = vectors.new_version_name()
            vectors.save_into(index, staged)
            self._previous_version = previous
            self.after_save(index, staged, rewritten)
            vectors.publish(self.root, staged, index.version)
            with self._reload_lock:
                self._live, self._sidecar = index, self._saved_sidecar
        return SyncReport(
            added=len(missing),
            removed=removed,
            embedded=embedded,
            total=len(index),
            seconds=time.perf_counter() - started,
            rebuilt=rebuilt,
        )

    def after_save(self, index: VectorIndex, staged: Path, rewritten: np.ndarray) -> None:
        """Save the BM25 indexes and passage facts beside the vectors, in the same version.

        ``rewritten`` ids keep their place in the index but hold other text than before.
        """
        started = time.perf_counter()
        base = self._previous_sidecar()
        wanted = index.catalog.ids
        new = wanted[~np.isin(wanted, base[0].ids) | np.isin(wanted, rewritten)]
        documents = self._documents(new)
        lexical, titles = (
            old.updated(
                old.ids[~np.isin(old.ids, wanted) | np.isin(old.ids, rewritten)],
                [(pid, make(title, text)) for pid, title, text in documents],
            )
            for old, make in zip(base, (document_text, lambda title, _: title), strict=True)
        )
        facts = PassageFacts.from_database(self.engine, index.catalog)
        lexical.save(staged)
        titles.save(staged, TITLES)
        facts.save(staged)
        self._saved_sidecar = _Sidecar.of(index, lexical, titles, facts)
        log.debug(
            "lexical index of %d passages (%d new) saved in %.1fs",
            len(lexical),
            len(new),
            time.perf_counter() - started,
        )

    def _previous_sidecar(self) -> tuple[LexicalIndex, LexicalIndex]:
        """The BM25 indexes an update starts from: the previous version's, none for a rebuild."""
        if not self._fresh_build and self._previous_version is not None:
            folder = self.root / self._previous_version
            lexical, titles = LexicalIndex.load(folder), LexicalIndex.load(folder, TITLES)
            if lexical is not None and titles is not None:
                return lexical, titles
        return LexicalIndex.empty(), LexicalIndex.empty()

    def _documents(self, ids: np.ndarray) -> list[tuple[int, str, str]]:
        """(passage id, article title, passage text) for these passages."""
        documents: list[tuple[int, str, str]] = []
        id_list = [int(i) for i in ids]
        with session_scope(self.engine) as session:
            for start in range(0, len(id_list), TEXT_CHUNK):
                chunk = id_list[start : start + TEXT_CHUNK]
                query = (
                    select(Passage.id, Article.title, Passage.text)
                    .join(Article, Passage.article_id == Article.id)
                    .where(Passage.id.in_(chunk))
                )
                documents.extend(tuple(row) for row in session.execute(query))  # type: ignore[misc]
        return documents

    def _copies_changed(self, index: VectorIndex, catalog: Catalog, outlets: np.ndarray) -> bool:
        """Whether the saved ``index`` holds a date, owner or outlet the database has changed.

        ``index`` holds only passages still stored; ``outlets`` is row-aligned with ``catalog``.
        """
        if not index.version:
            return False  # a fresh build is saved anyway
        kept = np.isin(catalog.ids, index.catalog.ids)
        now = catalog.subset(kept)
        pairs = zip(index.catalog.columns(), now.columns(), strict=True)
        if not all(np.array_equal(saved, current) for saved, current in pairs):
            return True
        facts = PassageFacts.load(self.root / index.version)
        if facts is None:
            return False  # saved again anyway, facts and all (``lacks_sidecar``)
        rows = np.isin(facts.ids, now.ids)
        if not np.array_equal(facts.ids[rows], now.ids):
            return True
        names = np.array(facts.outlet_names, dtype=object)
        return bool(np.any(names[facts.outlets[rows]] != outlets[kept]))

    def _catalog_from_database(self) -> tuple[Catalog, np.ndarray]:
        """The catalog of every stored passage, and each one's outlet (an object array)."""
        query = (
            select(
                Passage.id,
                Source.guild_id,
                Source.id,
                Article.id,
                Article.published_at,
                Article.outlet,
                Article.title,
                Passage.text_hash,
            )
            .join(Article, Passage.article_id == Article.id)
            .join(Source, Article.source_id == Source.id)
            .order_by(Passage.id)
        )
        with session_scope(self.engine) as session:
            rows = session.execute(query).all()
        if not rows:
            return Catalog.empty(), np.zeros(0, dtype=object)
        ids, guilds, sources, articles, published, outlets, titles, hashes = zip(*rows, strict=True)
        stamps = [int(p.timestamp()) if p is not None else NO_DATE for p in published]
        catalog = Catalog(
            np.array(ids, dtype=np.int64),
            np.array(guilds, dtype=np.int64),
            np.array(sources, dtype=np.int64),
            np.array(articles, dtype=np.int64),
            np.array(stamps, dtype=np.int64),
            np.array(list(map(_contents_digest, titles, hashes)), dtype=np.int64),
        )
        return catalog, np.array([outlet or "" for outlet in outlets], dtype=object)

    def _cached_only(self, ids: np.ndarray) -> np.ndarray:
        """The passages among ``ids`` whose vectors are in the embedding cache."""
        hashes = self._hashes(ids)
        known = cached_vectors(self.engine, self.embedder.name, list(hashes.values()))
        return np.array([i for i in ids if hashes[int(i)] in known], dtype=np.int64)

    def _hashes(self, ids: np.ndarray) -> dict[int, str]:
        found: dict[int, str] = {}
        id_list = [int(i) for i in ids]
        with session_scope(self.engine) as session:
            for start in range(0, len(id_list), TEXT_CHUNK):
                chunk = id_list[start : start + TEXT_CHUNK]
                query = select(Passage.id, Passage.text_hash).where(Passage.id.in_(chunk))
                found.update((pid, digest) for pid, digest in session.execute(query))
        return found

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
        for first in range(0, len(todo), CACHE_BATCH):
            batch = todo[first : first + CACHE_BATCH]
            fresh = self.embedder.embed(
                [text_of[h] for h in batch],
                progress=_offset(progress, first, len(todo)),
            )
            new = dict(zip(batch, fresh, strict=True))
            # Committed batch by batch: a crash or kill mid-embedding loses one batch at most.
            remember_vectors(self.engine, self.embedder.name, new)
            known.update(new)
        return np.vstack([known[h] for h in hashes]).astype(np.float32), len(todo)


def _seconds(moment: datetime, later_by: timedelta) -> int:
    """Unix seconds of ``moment + later_by``, or of the calendar's end if that is past it."""
    try:
        return int((moment + later_by).timestamp())
    except OverflowError:
        return int(datetime.max.replace(tzinfo=UTC).timestamp())


def _offset(progress: Progress | None, done: int, total: int) -> Callable[[int], None] | None:
    """A batch's progress callback reporting to the whole job's ``progress``."""
    if progress is None:
        return None
    return lambda finished: progress(done + finished, total)


def orphan_ids(engine: Engine, indexed: np.ndarray) -> np.ndarray:
    """Indexed passage ids (ascending) that the database no longer holds.

    Cheap when there are none, the usual case: one count over the indexed id range. Passages
    stored after the index was synced have higher ids and do not count.
    """
    if len(indexed) == 0:
        return indexed
    top = int(indexed[-1])
    with session_scope(engine) as session:
        stored = session.scalar(select(func.count(Passage.id)).where(Passage.id <= top)) or 0
        if stored == len(indexed):
            return np.zeros(0, dtype=np.int64)
        ids = np.fromiter(
            session.scalars(select(Passage.id).where(Passage.id <= top)), dtype=np.int64
        )
    return indexed[~np.isin(indexed, ids)]


def _contents_digest(title: str, text_hash: str) -> int:
    """What an id's vector and BM25 documents were made from, in 64 bits."""
    digest = hashlib.blake2b(f"{title}\x1f{text_hash}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True) or 1  # never UNKNOWN_CONTENTS


def _rewritten(saved: Catalog, current: Catalog) -> np.ndarray:
    """Ids in both catalogs whose title or text differ; ``current`` is sorted by id."""
    both = np.isin(saved.ids, current.ids)
    rows = np.searchsorted(current.ids, saved.ids[both])
    return saved.ids[both][saved.contents[both] != current.contents[rows]]


def _cosines(
    index: VectorIndex, facts: PassageFacts, rows: np.ndarray, query: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine of each candidate row, and the best cosine of its article neighbours.

    The answer is often one passage past the words a question shares with the story, so a
    passage next to a strong match is worth more than the same passage on its own.
    """
    previous, following = facts.previous[rows], facts.following[rows]
    need = np.union1d(rows, np.concatenate([previous[previous >= 0], following[following >= 0]]))
    lookup = np.full(len(index.catalog.ids), np.nan, dtype=np.float32)
    lookup[need] = index.vectors_for(index.catalog.ids[need]) @ query
    cos = lookup[rows]
    around = np.fmax(
        np.where(previous >= 0, lookup[previous], np.nan),
        np.where(following >= 0, lookup[following], np.nan),
    )
    return cos, np.where(np.isnan(around), cos, around)


def _ranks(rows: np.ndarray, ranked: np.ndarray) -> np.ndarray:
    """Each row's 0-based position in ``ranked``, -1 where it is absent."""
    position = {int(row): rank for rank, row in enumerate(ranked.tolist())}
    return np.array([position.get(int(row), -1) for row in rows.tolist()], dtype=np.int64)


def _coverage(lexical: _Lexical, query: str, catalog_rows: np.ndarray) -> np.ndarray:
    rows = lexical.lexical_rows[catalog_rows]
    out = np.zeros(len(catalog_rows), dtype=np.float32)
    present = rows >= 0
    out[present] = lexical.index.coverage(query, rows[present])
    return out
