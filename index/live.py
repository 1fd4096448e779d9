"""The live index as questions see it: every live segment behind one catalog.

Built when a reader loads a manifest, from the segments' memory-mapped files plus a few
array operations over their small per-passage columns (no vectors or postings are read):
one catalog sorted by passage id over the live passages of all segments, the passage facts
in that row order, BM25 over all segments' postings with corpus statistics of the live
passages, and vector search that asks each segment and merges by score. Search results are
the ones a single index built from scratch over the same passages gives (tests/index/
test_segments.py compares them).
"""

from __future__ import annotations

import numpy as np

from index.facts import PassageFacts, neighbours
from index.lexical import LexicalIndex
from index.segments import Manifest, Segment
from index.vectors import Catalog


class LiveIndex:
    """Vector search and the catalog over a manifest's segments; rows follow ``catalog.ids``."""

    def __init__(self, manifest: Manifest, segments: list[Segment]) -> None:
        self.model = manifest.model
        self.dimension = manifest.dimension
        self.version = manifest.version
        self.kind = manifest.kind
        self.segments = segments
        live = [segment.live_rows() for segment in segments]
        self._live = live
        ids = self._gather([s.catalog.ids for s in segments], np.int64, ordered=False)
        order = np.argsort(ids, kind="stable")
        self._order = order
        self.catalog = Catalog.empty()
        if segments:
            columns = zip(*(s.catalog.columns() for s in segments), strict=True)
            self.catalog = Catalog(*(self._gather(list(c), np.int64) for c in columns))
        position = np.empty(len(order), dtype=np.int64)
        position[order] = np.arange(len(order))
        self.segment_of_row = self._gather(
            [np.full(len(s), i, np.int32) for i, s in enumerate(segments)], np.int32
        )
        self.rows: list[np.ndarray] = []  # per segment: live index row of each row, -1 if deleted
        start = 0
        for segment, mask in zip(segments, live, strict=True):
            rows = np.full(len(segment), -1, dtype=np.int64)
            rows[mask] = position[start : start + int(mask.sum())]
            start += int(mask.sum())
            self.rows.append(rows)
        ids = self.catalog.ids
        self.lexical = LexicalIndex(
            ids, [(s.lexical, r) for s, r in zip(segments, self.rows, strict=True)]
        )
        self.titles = LexicalIndex(
            ids, [(s.titles, r) for s, r in zip(segments, self.rows, strict=True)]
        )
        self.facts = self._facts()

    def _gather(self, columns: list[np.ndarray], dtype: type, ordered: bool = True) -> np.ndarray:
        """One value per live passage from per-segment columns, in live row order."""
        parts = [np.asarray(c)[m] for c, m in zip(columns, self._live, strict=True)]
        out: np.ndarray = np.concatenate([np.zeros(0, dtype), *parts]).astype(dtype)
        return out[self._order] if ordered else out

    @classmethod
    def empty(cls, model: str, dimension: int) -> LiveIndex:
        return cls(Manifest.empty(model, dimension), [])

    def _facts(self) -> PassageFacts:
        # Outlet codes of all segments into one table, in order of first passage id (as a
        # build of the whole corpus numbers them).
        names: dict[str, int] = {}
        codes = []
        for segment in self.segments:
            table = [names.setdefault(name, len(names)) for name in segment.outlet_names]
            codes.append(np.array(table, np.int32)[segment.outlets] if table else segment.outlets)
        outlets = self._gather(codes, np.int32)
        used, first = np.unique(outlets, return_index=True)
        ranked = used[np.argsort(first, kind="stable")]
        renumber = np.zeros(len(names), dtype=np.int32)
        renumber[ranked] = np.arange(len(ranked), dtype=np.int32)
        listed = list(names)
        positions = self._gather([s.positions for s in self.segments], np.int32)
        previous, following = neighbours(self.catalog.article_ids, positions)
        return PassageFacts(
            self.catalog.ids,
            positions,
            self._gather([s.chars for s in self.segments], np.int32),
            renumber[outlets] if len(outlets) else outlets,
            previous,
            following,
            [listed[code] for code in ranked.tolist()],
        )

    def __len__(self) -> int:
        return len(self.catalog.ids)

    def search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest live passage ids and their cosine scores (best first, ties by id).

        Each segment is asked for its own best ``k`` (plus as many as it holds deleted, which
        are then dropped), so the merged best ``k`` are the corpus's best ``k``.
        """
        none = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        if len(self) == 0 or k <= 0 or (allowed is not None and len(allowed) == 0):
            return none
        if allowed is not None:
            owner = self.segment_of_row[np.searchsorted(self.catalog.ids, allowed)]
        found_ids, found_scores = [], []
        for number, segment in enumerate(self.segments):
            if allowed is None:
                ids, scores = segment.vectors.search(query, k + len(segment.deleted))
                if len(segment.deleted):
                    keep = ~np.isin(ids, segment.deleted)
                    ids, scores = ids[keep], scores[keep]
            else:
                mine = allowed[owner == number]
                if len(mine) == 0:
                    continue
                ids, scores = segment.vectors.search(query, k, mine)
            found_ids.append(ids)
            found_scores.append(scores)
        if not found_ids:
            return none
        ids, scores = np.concatenate(found_ids), np.concatenate(found_scores)
        best = np.lexsort((ids, -scores))[:k]
        return ids[best], scores[best]

    def vectors_for(self, ids: np.ndarray) -> np.ndarray:
        out = np.zeros((len(ids), self.dimension), dtype=np.float32)
        if len(ids) == 0:
            return out
        owner = self.segment_of_row[np.searchsorted(self.catalog.ids, ids)]
        for number in np.unique(owner).tolist():
            mine = owner == number
            out[mine] = self.segments[number].vectors.vectors_for(np.asarray(ids)[mine])
        return out

    def all_vectors(self) -> np.ndarray:
        """Every live vector, row-aligned with ``catalog.ids``."""
        out = np.zeros((len(self), self.dimension), dtype=np.float32)
        for segment, rows in zip(self.segments, self.rows, strict=True):
            kept = rows >= 0
            if kept.any():
                out[rows[kept]] = segment.vectors.all_vectors()[kept]
        return out
