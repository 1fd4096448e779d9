"""FAISS vectors keyed by passage id, and the per-passage catalog that filters read.

One ``VectorIndex`` is the vectors of one index segment (``index.segments`` saves them);
exact search while a segment is small, an inverted-file index trained on it above that.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import faiss
import numpy as np

log = logging.getLogger(__name__)

NO_DATE = np.iinfo(np.int64).min

EXACT = "exact"
IVF = "ivf"
IndexKind = Literal["auto", "exact", "ivf"]
# Exact search of one question over 250k vectors takes ~30 ms on one core; past that an
# inverted-file index keeps a question's search to a small share of the corpus.
EXACT_UP_TO = 250_000
RECALL_TARGET = 0.95
RECALL_QUERIES = 100
# Filters that admit fewer passages than this are searched exactly over just those: an
# inverted-file search probes a few lists and could miss a small server's few passages.
EXACT_FILTER_BELOW = 20_000


IVF_FROM = 1_000  # fewer passages are too few to train inverted lists on


def kind_for(count: int, setting: IndexKind = "auto") -> str:
    """The index type for ``count`` passages: exact up to ``EXACT_UP_TO``, IVF above."""
    if count < IVF_FROM:
        return EXACT
    if setting != "auto":
        return setting
    return EXACT if count <= EXACT_UP_TO else IVF


@dataclass
class Catalog:
    """Per-passage facts that filters need at search time, aligned by row with ``ids``."""

    ids: np.ndarray  # int64 passage ids
    guild_ids: np.ndarray  # int64
    source_ids: np.ndarray  # int64
    article_ids: np.ndarray  # int64
    published: np.ndarray  # int64 unix seconds, NO_DATE when unknown
    contents: np.ndarray  # int64 digest of the title and text indexed

    @classmethod
    def empty(cls) -> Catalog:
        return cls(*(np.zeros(0, dtype=np.int64) for _ in range(6)))

    def subset(self, keep: np.ndarray) -> Catalog:
        return Catalog(*(column[keep] for column in self.columns()))

    def columns(self) -> tuple[np.ndarray, ...]:
        return (
            self.ids,
            self.guild_ids,
            self.source_ids,
            self.article_ids,
            self.published,
            self.contents,
        )

    def extend(self, other: Catalog) -> Catalog:
        return Catalog(
            *(np.concatenate(pair) for pair in zip(self.columns(), other.columns(), strict=True))
        )


class VectorIndex:
    """Exact inner-product search over unit vectors (cosine), by passage id."""

    def __init__(self, model: str, dimension: int) -> None:
        self.model = model
        self.dimension = dimension
        # The faiss stubs disagree with its SWIG API (search params, remove_ids with arrays).
        self.faiss: Any = faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        self.catalog = Catalog.empty()
        self.version = ""
        self.kind = EXACT
        self.probes = 0
        self.recall_at_10: float | None = None
        self._sorted: tuple[np.ndarray, np.ndarray] | None = None  # see _stored_ids

    def __len__(self) -> int:
        return int(self.faiss.ntotal)

    def add(self, vectors: np.ndarray, catalog: Catalog) -> None:
        if len(catalog.ids) == 0:
            return
        if vectors.shape != (len(catalog.ids), self.dimension):
            raise ValueError(f"expected {len(catalog.ids)}×{self.dimension} vectors")
        self.faiss.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), catalog.ids)
        self.catalog = self.catalog.extend(catalog)

    @classmethod
    def built(
        cls, model: str, data: np.ndarray, catalog: Catalog, kind: str = EXACT
    ) -> VectorIndex:
        """An index of ``data`` (row-aligned with ``catalog``); an IVF one is trained on it."""
        index = cls(model, data.shape[1])
        index.catalog = catalog
        if kind == IVF:
            index.faiss, index.probes, index.recall_at_10 = trained_ivf(data, catalog.ids)
            index.kind = IVF
        elif len(catalog.ids):
            index.faiss.add_with_ids(np.ascontiguousarray(data, dtype=np.float32), catalog.ids)
        return index

    def vectors_for(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of these passage ids (each must be in the index)."""
        if len(ids) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        ids = np.asarray(ids, dtype=np.int64)
        if self.kind == IVF:
            return np.asarray(self.faiss.reconstruct_batch(ids))
        # A question reads ~1,000 vectors: gathered from the flat array (memory-mapped
        # when loaded) at once, not one ``reconstruct`` call through SWIG each.
        stored, order = self._stored_ids()
        places = order[np.searchsorted(stored, ids).clip(max=len(stored) - 1)]
        if not np.array_equal(self._id_map()[places], ids):
            raise KeyError("passage ids not in the index")
        return self._flat()[places]

    def all_vectors(self) -> np.ndarray:
        """Every vector, row-aligned with ``catalog.ids``."""
        return self.vectors_for(self.catalog.ids)

    def _id_map(self) -> np.ndarray:
        """The passage id of each stored row (a view of FAISS's own array, no copy)."""
        id_map = self.faiss.id_map
        return faiss.rev_swig_ptr(id_map.data(), id_map.size()).view(np.int64)

    def _flat(self) -> np.ndarray:
        """The stored vectors in row order (a view of FAISS's codes, no copy)."""
        flat: Any = faiss.downcast_index(self.faiss.index)
        raw = faiss.rev_swig_ptr(flat.get_xb(), len(self) * self.dimension)
        return raw.view(np.float32).reshape(len(self), self.dimension)

    def _stored_ids(self) -> tuple[np.ndarray, np.ndarray]:
        """Stored ids ascending and the row of each, kept until vectors are added."""
        if self._sorted is None or len(self._sorted[0]) != len(self):
            stored = self._id_map()
            order = np.argsort(stored, kind="stable")
            self._sorted = stored[order], order
        return self._sorted

    def search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest passage ids and their cosine scores, among ``allowed`` ids if given."""
        if len(self) == 0 or k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        params: Any = None
        if allowed is not None:
            if len(allowed) == 0:
                return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
            if self.kind == IVF and len(allowed) < EXACT_FILTER_BELOW:
                return _exact_among(self, query, k, allowed)
            selector = _bitmap_selector(allowed)
            if self.kind == IVF:
                params = faiss.SearchParametersIVF(sel=selector, nprobe=self.probes)  # type: ignore[call-arg]
            else:
                params = faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]
        elif self.kind == IVF:
            params = faiss.SearchParametersIVF(nprobe=self.probes)  # type: ignore[call-arg]
        k = min(k, len(self))
        # One question is too small a job for two threads: they only wait on each other, and
        # on a busy machine for cores held by other work (bench/bench_question_latency.py).
        # The setting is per thread, and this runs on whichever worker answers the question.
        faiss.omp_set_num_threads(1)
        scores, ids = self.faiss.search(
            np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), k, params=params
        )
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]


def _exact_among(
    index: VectorIndex, query: np.ndarray, k: int, allowed: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    scores = index.vectors_for(allowed) @ query.astype(np.float32)
    top = np.argsort(-scores, kind="stable")[:k]
    return np.asarray(allowed, dtype=np.int64)[top], scores[top]


def recall_at_10(exact: np.ndarray, found: np.ndarray) -> float:
    """Share of the true top 10 found, from the scores of both (queries × 10 each).

    A found passage scoring at least the true 10th counts: among equally close passages any
    10 are a right answer, which comparing ids alone would call misses.
    """
    tenth = exact[:, -1:] - 1e-5
    return float(np.mean(found >= tenth))


def _exact_top10_scores(data: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Each query's 10 best inner products over ``data``, best first, block by block.

    Blocks, not a second flat index: a copy of every vector would double the build's memory.
    """
    best = np.zeros((len(queries), 0), dtype=np.float32)
    for start in range(0, len(data), 100_000):
        best = np.concatenate([best, queries @ data[start : start + 100_000].T], axis=1)
        if best.shape[1] > 10:
            best = -np.partition(-best, 9, axis=1)[:, :10]
    return -np.sort(-best, axis=1)


def trained_ivf(data: np.ndarray, ids: np.ndarray) -> tuple[Any, int, float]:
    """An IVF index of ``data`` trained on it, probing enough lists for recall@10 ≥ 0.95.

    Recall is measured on the spot: a sample of the corpus's own vectors as questions,
    against exact search over all of them; the probes double until the target is met.
    """
    count, dimension = data.shape
    lists = int(min(max(np.sqrt(count), 16), 4096))
    rng = np.random.default_rng(0)
    sample = data[rng.choice(count, min(count, 40 * lists), replace=False)]
    quantizer = faiss.IndexFlatIP(dimension)
    ivf: Any = faiss.IndexIVFFlat(quantizer, dimension, lists, faiss.METRIC_INNER_PRODUCT)
    ivf.cp.niter = 10
    ivf.train(np.ascontiguousarray(sample))
    ivf.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]  # reconstruct and remove by id
    ivf.add_with_ids(np.ascontiguousarray(data), ids)
    queries = np.ascontiguousarray(data[rng.choice(count, min(count, RECALL_QUERIES), False)])
    truth = _exact_top10_scores(data, queries)
    probes, recall = max(8, lists // 32), 0.0
    while True:
        params = faiss.SearchParametersIVF(nprobe=probes)  # type: ignore[call-arg]
        found, _ = ivf.search(queries, 10, params=params)
        recall = recall_at_10(truth, found)
        if recall >= RECALL_TARGET or probes >= lists:
            break
        probes = min(probes * 2, lists)
    log.info("IVF of %d vectors: %d lists, %d probed, recall@10 %.3f", count, lists, probes, recall)
    return ivf, probes, recall


class _BitmapSelector(faiss.IDSelectorBitmap):
    """Keeps the bitmap's buffer alive as long as FAISS may read it."""

    def __init__(self, bits: np.ndarray) -> None:
        super().__init__(len(bits), faiss.swig_ptr(bits))  # n counts bytes, not ids
        self.bits = bits


def _bitmap_selector(allowed: np.ndarray) -> faiss.IDSelector:
    # FAISS reads bit (id & 7) of byte (id >> 3): little-endian bit order.
    flags = np.zeros(int(allowed.max()) + 1, dtype=bool)
    flags[allowed] = True
    return _BitmapSelector(np.packbits(flags, bitorder="little"))
