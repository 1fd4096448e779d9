"""The retriever: searches the live index and keeps it in step with the database.

Reading and writing are apart: ``index.live`` is the index questions search (the published
segments), ``index.updates`` builds and updates it on disk. The retriever owns both for one
index folder.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, func, select

from index import segments as disk
from index.embedder import Embedder
from index.facts import PassageFacts
from index.lexical import QUESTION_WORDS, LexicalIndex, QueryTerms, tokenize
from index.live import LiveIndex
from index.query import ParsedQuery, match_outlets, parse_query
from index.ranking import DEFAULT_MODEL as DEFAULT_RANKING
from index.ranking import FEATURES, CandidateSignals, RankingModel, features
from index.segments import Segment
from index.updates import CHANGE_LOG_DAYS, IndexWriter, SyncReport
from index.vectors import NO_DATE, IndexKind
from index.worker import job_for, rebuild_in_worker
from ingest.db import session_scope
from ingest.errors import InputError, NewsbotError, first_line
from ingest.models import GLOBAL_GUILD, Passage, Source

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
DENSE_CANDIDATES = 200
LEXICAL_CANDIDATES = 200
# Tuned on the RealTime QA dev weeks (bench/README.md): articles dated up to this long after
# "as of" stay visible, ranked down by the recency prior.
AS_OF_GRACE = timedelta(days=1)


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
class CandidateSet:
    """What one question's search put forward, before the ranking model orders it."""

    ids: np.ndarray  # passage ids
    similarity: np.ndarray  # cosine to the question
    coverage: np.ndarray  # idf-weighted share of the question's words in title and passage
    features: np.ndarray  # one row of ``ranking.FEATURES`` per candidate
    query: ParsedQuery


@dataclass
class _Lexical:
    """A BM25 index with its rows mapped to the catalog rows of the live index."""

    index: LexicalIndex
    catalog_rows: np.ndarray  # catalog row of each lexical row
    lexical_rows: np.ndarray  # lexical row of each catalog row, -1 if absent

    @classmethod
    def aligned(cls, index: LexicalIndex) -> _Lexical:
        rows = np.arange(len(index), dtype=np.int64)  # the live index's rows are its own
        return cls(index, rows, rows)

    def at(self, values: np.ndarray, catalog_rows: np.ndarray) -> np.ndarray:
        """Per-lexical-row ``values`` read at catalog rows (0 where the index lacks a row)."""
        rows = self.lexical_rows[catalog_rows]
        out = np.zeros(len(catalog_rows), dtype=np.float32)
        out[rows >= 0] = values[rows[rows >= 0]]
        return out


@dataclass
class _Sidecar:
    """What the live index keeps beside its vectors: BM25 indexes and passage facts."""

    version: str
    lexical: _Lexical  # title and passage text
    titles: _Lexical  # the article's title alone
    facts: PassageFacts
    # Outlets each server can see, worked out once per version: every question asks.
    outlets_seen: dict[int, list[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, index: LiveIndex) -> _Sidecar:
        lexical, titles = _Lexical.aligned(index.lexical), _Lexical.aligned(index.titles)
        return cls(index.version, lexical, titles, index.facts)


class IndexUnavailable(NewsbotError):
    """The saved index exists but cannot be read (damaged files): it needs a rebuild."""


class Retriever:
    """Owns the on-disk index folder; ``sync``/``apply``/``rebuild``/``search`` are blocking.

    Writers (this process or another) take a file lock; readers reload whenever a new
    manifest is published, so a bot keeps answering from the old segments until an update
    is swapped in. Segments it already loaded are reused: after an update only the new
    segment and the deleted-id files are read.
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
        change_log_days: float = CHANGE_LOG_DAYS,
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
        self.writer = IndexWriter(
            engine, embedder, index_dir, index_type, embed_passages, change_log_days=change_log_days
        )
        self._live: LiveIndex | None = None
        self._sidecar: _Sidecar | None = None
        self._stamp: tuple[int, int] | None = None
        self._segments: dict[str, Segment] = {}  # loaded segments by name
        self._reload_lock = threading.Lock()
        self._checked = False  # whether this process compared the index with the database

    # --- reading -------------------------------------------------------------------------

    def live(self) -> LiveIndex:
        """The live index, reloaded if a writer published a newer manifest."""
        return self._state()[0]

    def _state(self) -> tuple[LiveIndex, _Sidecar]:
        stamp = disk.manifest_stamp(self.root)
        live, sidecar = self._live, self._sidecar
        if live is not None and sidecar is not None and self._stamp == stamp:
            return live, sidecar
        with self._reload_lock:
            if self._live is None or self._sidecar is None or self._stamp != stamp:
                self._live, self._stamp = self._load_or_empty()
                self._sidecar = _Sidecar.of(self._live)
            state = self._live, self._sidecar
        if not self._checked:
            # Once per process: a writer killed between its commit and its index sync leaves
            # vectors of deleted passages, searched and counted until something syncs; an
            # index saved before segments is rebuilt (from the embedding cache).
            self._checked = True
            orphans = orphan_ids(self.engine, state[0].catalog.ids)
            older = disk.has_older_layout(self.root)
            if len(orphans) or older:
                log.warning(
                    "index %s %s; repairing it",
                    state[0].version or self.root,
                    f"holds {len(orphans)} passages the database no longer has"
                    if len(orphans)
                    else "was saved by an older newsbot",
                )
                # The change log's new entries usually explain it; if they do not, the index
                # is compared with the whole database.
                self.sync()
                if len(orphan_ids(self.engine, disk.read_catalog_ids(self.root))):
                    self.writer.sync(compare=True)
                return self._state()
        return state

    def _load_or_empty(self) -> tuple[LiveIndex, tuple[int, int] | None]:
        """The published index; empty before the first sync or for another model.

        Raises :class:`IndexUnavailable` when the saved files cannot be read: answering from
        an empty index would say "not found" to every question without saying why.
        """
        failure: Exception | None = None
        for attempt in range(3):
            stamp = disk.manifest_stamp(self.root)
            try:
                manifest = disk.read_manifest(self.root)
                if manifest is None or not self._compatible(manifest.model, manifest.dimension):
                    break
                loaded = {}
                for entry in manifest.segments:
                    known = self._segments.get(entry.name)
                    if known is None:
                        known = Segment.load(self.root, entry, manifest.model, manifest.dimension)
                    elif entry.deleted_count != len(known.deleted):
                        known = replace(known, deleted=disk.read_deleted(self.root, entry))
                    loaded[entry.name] = known
                self._segments = loaded
                return LiveIndex(manifest, list(loaded.values())), stamp
            except Exception as error:  # faiss, numpy and json each raise their own types
                # A writer may have removed a segment between reading the manifest and it.
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
        return LiveIndex.empty(self.embedder.name, self.embedder.dimension), stamp

    def _compatible(self, model: str, dimension: int) -> bool:
        return model == self.embedder.name and dimension == self.embedder.dimension

    def _mask(self, index: LiveIndex, sidecar: _Sidecar, filters: SearchFilters) -> np.ndarray:
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
        unseen = float(np.log1p(max(len(lexical), 1)))
        weights = {word: lexical.idf(word) for word in set(tokenize(text))}
        return {word: unseen if idf is None else idf for word, idf in weights.items()}

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
        lexical, titles = sidecar.lexical, sidecar.titles
        terms, title_terms = lexical.index.terms(parsed.text), titles.index.terms(parsed.text)
        bm25_all = lexical.index.scores(terms)
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
        now = (filters.as_of or datetime.now(UTC)).timestamp()
        signals = CandidateSignals(
            cos=cos,
            dense_rank=_ranks(cand, dense_rows),
            bm25=lexical.at(bm25_all, cand),
            bm25_best=bm25_best,
            bm25_rank=_ranks(cand, lexical_top),
            coverage=_coverage(lexical, terms, cand),
            title_bm25=titles.at(titles.index.scores(title_terms), cand),
            title_coverage=_coverage(titles, title_terms, cand),
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

    def sync(self, progress: Progress | None = None) -> SyncReport:
        """Catch up with the database's passage change log (``IndexWriter.sync``)."""
        return self.writer.sync(progress)

    def apply(
        self, added: Sequence[int], removed: Sequence[int], progress: Progress | None = None
    ) -> SyncReport:
        """Index these added (or changed) passage ids and drop the removed ones.

        For a caller that knows what changed (a replica told by the database): the cost is
        in proportion to the ids given, whatever the size of the corpus.
        """
        return self.writer.apply(added, removed, progress)

    def rebuild(self, progress: Progress | None = None, in_worker: bool = False) -> SyncReport:
        """A fresh index from the database; cached embeddings make unchanged text free.

        ``in_worker`` builds it in another process (``index.worker``): the bot does, so that
        questions asked meanwhile do not wait for the build's Python work.
        """
        job = job_for(self.writer) if in_worker else None
        if job is None:
            return self.writer.rebuild(progress)
        return rebuild_in_worker(job, progress)


def _seconds(moment: datetime, later_by: timedelta) -> int:
    """Unix seconds of ``moment + later_by``, or of the calendar's end if that is past it."""
    try:
        return int((moment + later_by).timestamp())
    except OverflowError:
        return int(datetime.max.replace(tzinfo=UTC).timestamp())


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


def _cosines(
    index: LiveIndex, facts: PassageFacts, rows: np.ndarray, query: np.ndarray
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


def _coverage(lexical: _Lexical, query: QueryTerms, catalog_rows: np.ndarray) -> np.ndarray:
    rows = lexical.lexical_rows[catalog_rows]
    out = np.zeros(len(catalog_rows), dtype=np.float32)
    present = rows >= 0
    out[present] = lexical.index.coverage(query, rows[present])
    return out
