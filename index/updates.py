"""Building and updating the index on disk: full builds, incremental updates, merges.

An update costs work and bytes in proportion to what changed: the added (or changed)
passages become one new small segment, and each segment that lost passages gets a new
deleted-ids file; then a new manifest is published (``index.segments``). When small segments
pile up, or deletions make up a large share of a segment, a merge rewrites them as one, in a
background thread (FAISS and numpy do the work and release the GIL; questions go on reading
the published segments meanwhile) that publishes only if nothing it merged has changed
under it.

``IndexWriter.sync`` finds what changed in the database's passage change log
(``ingest.changelog``): the entries after the last one the manifest records. An index the log
cannot bring up to date is compared with the whole database once instead. ``apply(added,
removed)`` is for a caller that knows the ids itself.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, select

from index import segments as disk
from index.cache import cached_vectors, prune_cache, remember_vectors
from index.embedder import ENCODE_BATCH, Embedder
from index.lexical import Postings, document_text
from index.live import LiveIndex
from index.segments import Manifest, Segment, SegmentEntry
from index.vectors import NO_DATE, Catalog, IndexKind, VectorIndex, kind_for
from ingest.changelog import (
    Changes,
    changes_after,
    latest_sequence,
    log_origin,
    prune_changes,
)
from ingest.db import session_scope
from ingest.models import Article, Passage, Source

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
TEXT_CHUNK = 500
CACHE_BATCH = ENCODE_BATCH  # embedded passages written to the cache per transaction
# Merge policy (Lucene's tiered policy, simplified): more segments than this are merged
# into one delta; deltas holding more than this share of the base, or a base with more than
# this share deleted, are merged with the base into a new base.
MAX_SEGMENTS = 8
REBASE_SHARE = 0.25


# How an update found what changed: the change log's new entries, a comparison of the whole
# index with the database (an index from before the log, or behind its window), a full build.
FROM_LOG, COMPARED, BUILT = "log", "compared", "built"
# Pruning the change log is a cheap delete; once an hour per process is plenty.
PRUNE_EVERY_SECONDS = 3600.0
CHANGE_LOG_DAYS = 30.0


@dataclass(frozen=True)
class SyncReport:
    added: int
    removed: int
    embedded: int
    total: int
    seconds: float
    rebuilt: bool
    found_by: str = FROM_LOG  # FROM_LOG, COMPARED or BUILT
    log_entries: int = 0  # change log entries read
    log_sequence: int | None = None  # the last change log entry the index now includes


class IndexWriter:
    """The one writer of an index folder; several processes coordinate through a file lock."""

    def __init__(
        self,
        engine: Engine,
        embedder: Embedder,
        root: Path,
        index_type: IndexKind = "auto",
        embed_passages: bool = True,
        on_publish: Callable[[], None] | None = None,
        change_log_days: float = CHANGE_LOG_DAYS,
    ) -> None:
        self.engine = engine
        self.embedder = embedder
        self.root = root
        self.index_type = index_type
        self.embed_passages = embed_passages  # False: only passages the cache has a vector for
        self.on_publish = on_publish  # called after each publication (the reader reloads)
        self.change_log_window = timedelta(days=change_log_days)
        self._merging: threading.Thread | None = None
        self._pruned_at: float | None = None

    @contextmanager
    def lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _manifest_or_build(self, progress: Progress | None) -> Manifest | SyncReport:
        """The live manifest to update, or the report of the full build done instead.

        A build is due before the first one, for another model, or for an index saved in
        the layout before segments. Call with the lock held.
        """
        manifest = disk.read_manifest(self.root)
        if (
            manifest is not None
            and manifest.model == self.embedder.name
            and manifest.dimension == self.embedder.dimension
        ):
            return manifest
        older = manifest is not None or disk.has_older_layout(self.root)
        return self._build(progress, rebuilt=older)

    # --- the three ways to change the index ----------------------------------------------

    def rebuild(self, progress: Progress | None = None) -> SyncReport:
        """A fresh index (one segment) from the database; cached vectors make it cheap.

        Cached vectors of text no passage holds any more are dropped afterwards.
        """
        with self.lock():
            report = self._build(progress, rebuilt=True)
        pruned = prune_cache(self.engine)
        if pruned:
            log.info("dropped %d cached vectors of text no passage holds", pruned)
        return report

    def sync(self, progress: Progress | None = None, compare: bool = False) -> SyncReport:
        """Catch up with the passage change log: index what its new entries added or
        re-tagged, drop what they removed, and record the last entry taken in.

        Reads only the log's new entries and the rows of the passages they name. An index
        without a recorded entry (saved before the log), or one behind the log's window
        (``change_log_days``), is compared with the whole database once instead; so is any
        index with ``compare`` (a repair).
        """
        with self.lock():
            manifest = self._manifest_or_build(progress)
            if isinstance(manifest, SyncReport):
                return manifest
            started = time.perf_counter()
            cursor = manifest.log_sequence
            changes = None
            if cursor is not None:
                changes = changes_after(self.engine, cursor, manifest.log_origin)
            if compare or changes is None or not changes.complete:
                report = self._compare(manifest, progress, started)
            else:
                report = self._catch_up(manifest, changes, progress, started)
        self._prune_now_and_then()
        base = manifest.base
        if base is not None and base.kind != kind_for(base.rows, self.index_type):
            # The index type setting changed: the base is searched the other way from now on.
            log.info("index of %d passages becomes %s search", report.total, self.index_type)
            self.merge(everything=True)
        return report

    def _catch_up(
        self, manifest: Manifest, changes: Changes, progress: Progress | None, started: float
    ) -> SyncReport:
        """Apply the log's entries after the index's: a new passage once, even if read again."""
        indexed = disk.read_catalog_ids(self.root)
        fresh = np.asarray(changes.added, dtype=np.int64)
        fresh = fresh[~np.isin(fresh, indexed)]  # a full build may have taken it in already
        retagged = np.asarray(changes.retagged, dtype=np.int64)
        waiting = np.asarray(manifest.log_waiting, dtype=np.int64)
        gone = np.asarray(changes.removed, dtype=np.int64)
        wanted = np.setdiff1d(np.concatenate([fresh, retagged, waiting]), gone)
        return self._apply_ids(
            manifest, wanted, gone, indexed, progress, started, changes.through, changes.entries
        )

    def _apply_ids(
        self,
        manifest: Manifest,
        wanted: np.ndarray,
        gone: np.ndarray,
        indexed: np.ndarray,
        progress: Progress | None,
        started: float,
        sequence: int | None = None,
        log_entries: int = 0,
    ) -> SyncReport:
        """Index ``wanted`` as the database has them now (one it lacks counts as removed) and
        drop ``gone``; ``indexed`` is what the index holds, for the report's counts."""
        stored, outlets = self._catalog(wanted)
        gone = np.union1d(gone, wanted)
        gone = gone[~np.isin(gone, stored.ids)]
        return self._apply(
            manifest,
            stored,
            outlets,
            gone,
            progress,
            started,
            added=int((~np.isin(stored.ids, indexed)).sum()),
            removed=int(np.isin(gone, indexed).sum()),
            sequence=sequence,
            log_entries=log_entries,
        )

    def _compare(self, manifest: Manifest, progress: Progress | None, started: float) -> SyncReport:
        """Compare the whole index with the database's catalog; write only the difference.

        Also re-indexes passages whose text, title, date, owner or outlet changed. Reads
        every passage's catalog row: for an index the change log cannot bring up to date.
        """
        sequence = latest_sequence(self.engine)  # before the passages: see latest_sequence
        stored, outlets = self._catalog(None)
        indexed, indexed_outlets = self._indexed(manifest)
        gone = indexed.ids[~np.isin(indexed.ids, stored.ids)]
        both = np.isin(stored.ids, indexed.ids)
        rows = np.searchsorted(indexed.ids, stored.ids[both])
        rewritten = stored.ids[both][stored.contents[both] != indexed.contents[rows]]
        moved = np.zeros(int(both.sum()), dtype=bool)
        for mine, theirs in zip(stored.subset(both).columns(), indexed.columns(), strict=True):
            moved |= mine != theirs[rows]
        moved |= outlets[both] != indexed_outlets[rows]
        changed = stored.ids[both][moved]  # rewritten ones included
        fresh = stored.ids[~both]
        wanted = np.isin(stored.ids, np.concatenate([fresh, changed]))
        return self._apply(
            manifest,
            stored.subset(wanted),
            outlets[wanted],
            gone,
            progress,
            started,
            added=len(fresh) + len(rewritten),
            removed=len(gone) + len(rewritten),
            sequence=sequence,
            found_by=COMPARED,
        )

    def _prune_now_and_then(self) -> None:
        """Drop change log entries older than the window, at most once an hour here."""
        now = time.monotonic()
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY_SECONDS:
            return
        self._pruned_at = now
        try:
            prune_changes(self.engine, self.change_log_window)
        except Exception:  # pruning is housekeeping: the index is up to date all the same
            log.exception("pruning the passage change log failed")

    def apply(
        self,
        added: Sequence[int],
        removed: Sequence[int],
        progress: Progress | None = None,
    ) -> SyncReport:
        """Index passages ``added`` to (or changed in) the database; drop ``removed`` ones.

        Work and bytes written are in proportion to the ids given: their rows are read from
        the database (an added id the database no longer holds counts as removed), and the
        rest of the index is left as it is. An id given in ``added`` that is already indexed
        is indexed again (its text, title, date or outlet may have changed).
        """
        with self.lock():
            manifest = self._manifest_or_build(progress)
            if isinstance(manifest, SyncReport):
                return manifest
            started = time.perf_counter()
            wanted = np.unique(np.asarray(list(added), dtype=np.int64))
            gone = np.asarray(list(removed), dtype=np.int64)
            indexed = disk.read_catalog_ids(self.root)
            return self._apply_ids(manifest, wanted, gone, indexed, progress, started)

    def merge(self, everything: bool = False) -> bool:
        """Merge segments as the policy says (or all of them); whether a merge was published.

        Reads and writes without the lock, takes it only to publish, and gives up if the
        segments it merged were replaced meanwhile (deletions that arrived are carried over).
        """
        manifest = disk.read_manifest(self.root)
        if manifest is None:
            return False
        chosen = list(manifest.segments) if everything else merge_plan(manifest)
        if not chosen:
            return False
        started = time.perf_counter()
        loaded = [self._load(entry, manifest) for entry in chosen]
        merged = self._merged(manifest, loaded)
        staged = merged.stage(self.root)
        with self.lock():
            now = disk.read_manifest(self.root)
            by_name = {entry.name: entry for entry in now.segments} if now else {}
            if now is None or any(entry.name not in by_name for entry in chosen):
                log.info("segments changed during a merge; dropping it")
                shutil.rmtree(staged, ignore_errors=True)
                return False
            entry = merged.commit(self.root, staged)
            later = [disk.read_deleted(self.root, by_name[e.name]) for e in chosen]
            since = np.setdiff1d(np.concatenate(later), np.concatenate([s.deleted for s in loaded]))
            if len(since):
                entry = disk.write_deleted(self.root, entry, since)
            names = {e.name for e in chosen}
            kept = [e for e in now.segments if e.name not in names]
            self._publish(now.with_segments([entry, *kept]))
        log.info(
            "merged %d segments into one of %d passages in %.1fs",
            len(chosen),
            len(merged),
            time.perf_counter() - started,
        )
        return True

    def merge_in_background(self) -> None:
        """Start a merge in a thread if the policy wants one and none is running."""
        manifest = disk.read_manifest(self.root)
        if manifest is None or not merge_plan(manifest):
            return
        if self._merging is not None and self._merging.is_alive():
            return
        # Not a daemon: a command-line process finishes its merge before it exits.
        self._merging = threading.Thread(target=self._merge_logged, name="index-merge")
        self._merging.start()

    def wait_for_merge(self) -> None:
        if self._merging is not None:
            self._merging.join()

    def _merge_logged(self) -> None:
        try:
            while self.merge():
                pass
        except Exception:
            log.exception("index merge failed; the index stays as published")

    # --- building and publishing ---------------------------------------------------------

    def _build(self, progress: Progress | None, rebuilt: bool) -> SyncReport:
        started = time.perf_counter()
        sequence = latest_sequence(self.engine)  # before the passages: see latest_sequence
        catalog, outlets = self._catalog(None)
        segment, embedded = self._segment(catalog, outlets, progress)
        entries = [segment.write(self.root)] if len(segment) else []
        empty = Manifest.empty(self.embedder.name, self.embedder.dimension)
        waiting = _missing(catalog.ids, segment.catalog.ids)
        self._publish(
            replace(
                empty.with_segments(entries),
                log_sequence=sequence,
                log_waiting=waiting,
                log_origin=log_origin(self.engine),
            )
        )
        return SyncReport(
            len(segment),
            0,
            embedded,
            len(segment),
            time.perf_counter() - started,
            rebuilt,
            found_by=BUILT,
            log_sequence=sequence,
        )

    def _apply(
        self,
        manifest: Manifest,
        catalog: Catalog,
        outlets: np.ndarray,
        gone: np.ndarray,
        progress: Progress | None,
        started: float,
        added: int,
        removed: int,
        sequence: int | None = None,
        log_entries: int = 0,
        found_by: str = FROM_LOG,
    ) -> SyncReport:
        """Delete ``gone`` and older copies of ``catalog``'s ids; add ``catalog`` as a segment.

        With ``sequence``, the published manifest records it as the last change log entry
        included, and the passages left out for want of a vector as waiting.
        """
        dropped = np.concatenate([gone, catalog.ids])
        entries: list[SegmentEntry] = []
        changed = False
        for entry in manifest.segments:
            ids = disk.read_catalog(self.root, entry).ids
            deleted = disk.read_deleted(self.root, entry)
            hit = np.isin(ids, dropped) & ~np.isin(ids, deleted)
            if hit.any():
                entry = disk.write_deleted(self.root, entry, np.concatenate([deleted, ids[hit]]))
                changed = True
            if entry.live > 0:
                entries.append(entry)
            else:
                changed = True
        embedded = 0
        waiting: tuple[int, ...] = ()
        if len(catalog.ids):
            segment, embedded = self._segment(catalog, outlets, progress)
            added -= len(catalog.ids) - len(segment)  # not embedded yet (embed_passages off)
            waiting = _missing(catalog.ids, segment.catalog.ids)
            if len(segment):
                entries.append(segment.write(self.root))
                changed = True
        published = manifest.with_segments(entries)
        if sequence is not None:
            origin = log_origin(self.engine)
            published = replace(
                published, log_sequence=sequence, log_waiting=waiting, log_origin=origin
            )
            changed |= (sequence, waiting, origin) != (
                manifest.log_sequence,
                manifest.log_waiting,
                manifest.log_origin,
            )
        if changed:
            self._publish(published)
            self.merge_in_background()
        return SyncReport(
            added,
            removed,
            embedded,
            published.count,
            time.perf_counter() - started,
            False,
            found_by=found_by,
            log_entries=log_entries,
            log_sequence=published.log_sequence,
        )

    def _publish(self, manifest: Manifest) -> None:
        disk.publish(self.root, manifest)
        if self.on_publish is not None:
            self.on_publish()

    def _load(self, entry: SegmentEntry, manifest: Manifest) -> Segment:
        return Segment.load(self.root, entry, manifest.model, manifest.dimension)

    def _indexed(self, manifest: Manifest) -> tuple[Catalog, np.ndarray]:
        """The live catalog and outlets as indexed, from the segments' small files only."""
        catalogs, outlets = [], []
        for entry in manifest.segments:
            catalog = disk.read_catalog(self.root, entry)
            live = ~np.isin(catalog.ids, disk.read_deleted(self.root, entry))
            catalogs.append(catalog.subset(live))
            outlets.append(disk.read_outlets(self.root, entry)[live])
        joined = Catalog.empty()
        for catalog in catalogs:
            joined = joined.extend(catalog)
        order = np.argsort(joined.ids, kind="stable")
        names = np.concatenate([np.zeros(0, dtype=object), *outlets])
        return joined.subset(order), names[order]

    def _merged(self, manifest: Manifest, loaded: list[Segment]) -> Segment:
        """One segment holding the live passages of ``loaded``."""
        live = LiveIndex(manifest, loaded)
        parts = list(zip(loaded, live.rows, strict=True))
        return Segment(
            self._vectors(live.all_vectors(), live.catalog),
            live.catalog,
            live.facts.positions,
            live.facts.chars,
            live.facts.outlets,
            live.facts.outlet_names,
            Postings.merged([(segment.lexical, rows) for segment, rows in parts]),
            Postings.merged([(segment.titles, rows) for segment, rows in parts]),
        )

    def _vectors(self, data: np.ndarray, catalog: Catalog) -> VectorIndex:
        """A segment's FAISS index: exact search, or IVF trained on it when it is large."""
        kind = kind_for(len(catalog.ids), self.index_type)
        return VectorIndex.built(
            self.embedder.name, data.reshape(-1, self.embedder.dimension), catalog, kind
        )

    def _segment(
        self, catalog: Catalog, outlets: np.ndarray, progress: Progress | None
    ) -> tuple[Segment, int]:
        """A segment of these passages (sorted by id), and how many had to be embedded."""
        found = self._documents(catalog.ids)
        if not self.embed_passages:
            # Workers embed (a job queue): a passage not in the cache yet waits for a later sync.
            cached = cached_vectors(
                self.engine, self.embedder.name, [d.text_hash for d in found.values()]
            )
            ready = np.array(
                [found[int(pid)].text_hash in cached for pid in catalog.ids], dtype=bool
            )
            catalog, outlets = catalog.subset(ready), outlets[ready]
        documents = [found[int(pid)] for pid in catalog.ids]
        data, embedded = self._vectors_for(documents, progress)
        names: dict[str, int] = {}
        codes = np.array([names.setdefault(o, len(names)) for o in outlets], dtype=np.int32)
        segment = Segment(
            self._vectors(data, catalog),
            catalog,
            np.array([d.position for d in documents], dtype=np.int32),
            np.array([len(d.text) for d in documents], dtype=np.int32),
            codes,
            list(names),
            Postings.build([document_text(d.title, d.text) for d in documents]),
            Postings.build([d.title for d in documents]),
        )
        return segment, embedded

    # --- the database side ---------------------------------------------------------------

    def _catalog(self, ids: np.ndarray | None) -> tuple[Catalog, np.ndarray]:
        """The catalog of every stored passage (or of these ids), and each one's outlet."""
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
        rows: list = []
        with session_scope(self.engine) as session:
            if ids is None:
                rows = list(session.execute(query))
            else:
                id_list = [int(i) for i in ids]
                for start in range(0, len(id_list), TEXT_CHUNK):
                    chunk = id_list[start : start + TEXT_CHUNK]
                    rows.extend(session.execute(query.where(Passage.id.in_(chunk))))
        if not rows:
            return Catalog.empty(), np.zeros(0, dtype=object)
        ids_, guilds, sources, articles, published, outlets, titles, hashes = zip(
            *rows, strict=True
        )
        stamps = [int(p.timestamp()) if p is not None else NO_DATE for p in published]
        catalog = Catalog(
            np.array(ids_, dtype=np.int64),
            np.array(guilds, dtype=np.int64),
            np.array(sources, dtype=np.int64),
            np.array(articles, dtype=np.int64),
            np.array(stamps, dtype=np.int64),
            np.array(list(map(_contents_digest, titles, hashes)), dtype=np.int64),
        )
        order = np.argsort(catalog.ids, kind="stable")
        named = np.array([outlet or "" for outlet in outlets], dtype=object)
        return catalog.subset(order), named[order]

    def _documents(self, ids: np.ndarray) -> dict[int, _Document]:
        """What indexing these passages needs from the database, by passage id."""
        documents: dict[int, _Document] = {}
        id_list = [int(i) for i in ids]
        query = select(
            Passage.id, Article.title, Passage.text, Passage.position, Passage.text_hash
        ).join(Article, Passage.article_id == Article.id)
        with session_scope(self.engine) as session:
            for start in range(0, len(id_list), TEXT_CHUNK):
                chunk = id_list[start : start + TEXT_CHUNK]
                for pid, title, text, position, digest in session.execute(
                    query.where(Passage.id.in_(chunk))
                ):
                    documents[pid] = _Document(title, text, position, digest)
        return documents

    def _vectors_for(
        self, documents: list[_Document], progress: Progress | None
    ) -> tuple[np.ndarray, int]:
        """A vector per document: from the cache where possible, embedded otherwise."""
        if not documents:
            return np.zeros((0, self.embedder.dimension), dtype=np.float32), 0
        hashes = [d.text_hash for d in documents]
        known = cached_vectors(self.engine, self.embedder.name, hashes)
        todo = list(dict.fromkeys(h for h in hashes if h not in known))
        text_of = {d.text_hash: d.text for d in documents}
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


@dataclass(frozen=True)
class _Document:
    title: str
    text: str
    position: int
    text_hash: str


def merge_plan(manifest: Manifest) -> list[SegmentEntry]:
    """The segments the merge policy would merge now (none: leave the index as it is)."""
    entries = sorted(manifest.segments, key=lambda e: e.rows, reverse=True)
    if len(entries) < 2:
        base = entries[0] if entries else None
        if base is not None and base.deleted_count > REBASE_SHARE * base.rows:
            return [base]  # rewritten without its deleted passages
        return []
    base, deltas = entries[0], entries[1:]
    delta_rows = sum(e.rows for e in deltas)
    if delta_rows > REBASE_SHARE * base.rows or base.deleted_count > REBASE_SHARE * base.rows:
        return entries
    if len(entries) > MAX_SEGMENTS:
        return deltas
    return []


def _missing(wanted: np.ndarray, made: np.ndarray) -> tuple[int, ...]:
    """The ids of ``wanted`` a segment was made without (no vector yet), ascending."""
    return tuple(int(i) for i in np.setdiff1d(wanted, made))


def _offset(progress: Progress | None, done: int, total: int) -> Callable[[int], None] | None:
    """A batch's progress callback reporting to the whole job's ``progress``."""
    if progress is None:
        return None
    return lambda finished: progress(done + finished, total)


def _contents_digest(title: str, text_hash: str) -> int:
    """What an id's vector and BM25 documents were made from, in 64 bits."""
    digest = hashlib.blake2b(f"{title}\x1f{text_hash}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True) or 1
