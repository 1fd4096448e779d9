"""FAISS vectors keyed by passage id, saved as immutable versions swapped in atomically.

Layout under the index folder::

    CURRENT             name of the live version, replaced with os.replace
    v-<time>-<random>/  vectors.faiss, catalog.npz, manifest.json (and the lexical index)

A save writes a fresh version folder and only then points CURRENT at it, so a crash leaves
the old version live and a reader never sees a half-written index.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np

log = logging.getLogger(__name__)

POINTER = "CURRENT"
VECTORS_FILE = "vectors.faiss"
CATALOG_FILE = "catalog.npz"
MANIFEST_FILE = "manifest.json"
NO_DATE = np.iinfo(np.int64).min
UNKNOWN_CONTENTS = 0  # saved before digests were: a sync re-checks those passages


class IndexMismatch(RuntimeError):
    """The saved index was built with another model or dimension and needs a rebuild."""


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


@dataclass(frozen=True)
class Manifest:
    model: str
    dimension: int
    count: int
    built_at: float
    version: str
    kind: str = EXACT
    lists: int = 0  # IVF: inverted lists (trained centroids)
    probes: int = 0  # IVF: lists searched per question
    recall_at_10: float | None = None  # IVF: measured against exact search at training

    def describe(self) -> str:
        if self.kind != IVF:
            return "exact search"
        recall = "" if self.recall_at_10 is None else f", recall@10 {self.recall_at_10:.3f}"
        return f"IVF, {self.lists} lists, {self.probes} probed{recall} vs exact"


@dataclass
class Catalog:
    """Per-passage facts that filters need at search time, aligned by row with ``ids``."""

    ids: np.ndarray  # int64 passage ids
    guild_ids: np.ndarray  # int64
    source_ids: np.ndarray  # int64
    article_ids: np.ndarray  # int64
    published: np.ndarray  # int64 unix seconds, NO_DATE when unknown
    contents: np.ndarray  # int64 digest of the title and text indexed, UNKNOWN_CONTENTS if none

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

    def __len__(self) -> int:
        return int(self.faiss.ntotal)

    def add(self, vectors: np.ndarray, catalog: Catalog) -> None:
        if len(catalog.ids) == 0:
            return
        if vectors.shape != (len(catalog.ids), self.dimension):
            raise ValueError(f"expected {len(catalog.ids)}×{self.dimension} vectors")
        self.faiss.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), catalog.ids)
        self.catalog = self.catalog.extend(catalog)

    def remove(self, ids: np.ndarray) -> int:
        if len(ids) == 0:
            return 0
        removed = int(self.faiss.remove_ids(np.asarray(ids, dtype=np.int64)))
        self.catalog = self.catalog.subset(~np.isin(self.catalog.ids, ids))
        return removed

    def vectors_for(self, ids: np.ndarray) -> np.ndarray:
        if len(ids) and self.kind == IVF:
            return np.asarray(self.faiss.reconstruct_batch(np.asarray(ids, dtype=np.int64)))
        return (
            np.vstack([self.faiss.reconstruct(int(i)) for i in ids])
            if len(ids)
            else (np.zeros((0, self.dimension), dtype=np.float32))
        )

    def all_vectors(self) -> np.ndarray:
        """Every vector, row-aligned with ``catalog.ids``."""
        if self.kind == EXACT and len(self):
            stored = faiss.vector_to_array(self.faiss.id_map)
            flat = self.faiss.index.reconstruct_n(0, len(self))
            order = np.argsort(stored)
            return np.asarray(flat[order[np.searchsorted(stored[order], self.catalog.ids)]])
        return self.vectors_for(self.catalog.ids)

    def converted(self, kind: str) -> VectorIndex:
        """The same vectors and catalog in an index of ``kind``; an IVF is trained on them."""
        out = VectorIndex(self.model, self.dimension)
        out.version, out.catalog = self.version, self.catalog
        data = self.all_vectors()
        if kind == IVF:
            out.faiss, out.probes, out.recall_at_10 = _trained_ivf(data, self.catalog.ids)
            out.kind = IVF
        elif len(data):
            out.faiss.add_with_ids(np.ascontiguousarray(data), self.catalog.ids)
        return out

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

    def manifest(self) -> Manifest:
        return Manifest(
            model=self.model,
            dimension=self.dimension,
            count=len(self),
            built_at=time.time(),
            version=self.version,
            kind=self.kind,
            lists=int(self.faiss.nlist) if self.kind == IVF else 0,
            probes=self.probes,
            recall_at_10=self.recall_at_10,
        )


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


def _trained_ivf(data: np.ndarray, ids: np.ndarray) -> tuple[Any, int, float]:
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


# --- on disk ---------------------------------------------------------------------------------


def current_version(root: Path) -> str | None:
    try:
        name = (root / POINTER).read_text().strip()
    except FileNotFoundError:
        return None
    return name if name and (root / name).is_dir() else None


def load(root: Path, mapped: bool = False) -> VectorIndex | None:
    """The live version under ``root``, or None when nothing was saved yet.

    ``mapped`` memory-maps the vectors (for readers: the index cannot change then); start-up
    reads none of them, and the page cache shares them between processes.
    """
    version = current_version(root)
    if version is None:
        return None
    folder = root / version
    manifest = Manifest(**json.loads((folder / MANIFEST_FILE).read_text()))
    index = VectorIndex(manifest.model, manifest.dimension)
    flags = faiss.IO_FLAG_MMAP_IFC if mapped else 0
    index.faiss = faiss.read_index(str(folder / VECTORS_FILE), flags)
    with np.load(folder / CATALOG_FILE) as data:
        unknown = np.full(len(data["ids"]), UNKNOWN_CONTENTS, dtype=np.int64)
        index.catalog = Catalog(
            *(data[name] if name in data.files else unknown for name in _CATALOG_FIELDS)
        )
    index.version = version
    index.kind, index.probes, index.recall_at_10 = (
        manifest.kind,
        manifest.probes,
        manifest.recall_at_10,
    )
    if len(index) != len(index.catalog.ids):
        raise IndexMismatch(f"index {version} is inconsistent: rebuild it")
    return index


_CATALOG_FIELDS = ("ids", "guild_ids", "source_ids", "article_ids", "published", "contents")


def read_catalog_ids(root: Path) -> np.ndarray:
    """The live version's passage ids, without loading its vectors (none if nothing saved)."""
    version = current_version(root)
    if version is None:
        return np.zeros(0, dtype=np.int64)
    with np.load(root / version / CATALOG_FILE) as data:
        return np.asarray(data["ids"], dtype=np.int64)


def read_manifest(root: Path) -> Manifest | None:
    version = current_version(root)
    if version is None:
        return None
    return Manifest(**json.loads((root / version / MANIFEST_FILE).read_text()))


def new_version_dir(root: Path) -> Path:
    """A fresh hidden folder to write a version into; :func:`publish` makes it live."""
    root.mkdir(parents=True, exist_ok=True)
    folder = root / f".tmp-{uuid.uuid4().hex}"
    folder.mkdir()
    return folder


def save_into(index: VectorIndex, folder: Path) -> None:
    faiss.write_index(index.faiss, str(folder / VECTORS_FILE))
    columns: dict[str, Any] = dict(zip(_CATALOG_FIELDS, index.catalog.columns(), strict=True))
    np.savez(folder / CATALOG_FILE, **columns)
    (folder / MANIFEST_FILE).write_text(json.dumps(asdict(index.manifest()), indent=2))


def new_version_name() -> str:
    return f"v-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"


def publish(root: Path, staged: Path, version: str) -> None:
    """Rename the staged folder to ``version`` and atomically point CURRENT at it.

    Every file and folder the version holds reaches the disk before the pointer moves: after a
    power cut CURRENT never names a version with a missing or empty BM25 or title index.
    """
    for path in durable_paths(staged):
        _fsync(path)
    os.replace(staged, root / version)
    _fsync(root)  # the rename itself
    pointer_tmp = root / f".{POINTER}.{uuid.uuid4().hex}"
    pointer_tmp.write_text(version)
    _fsync(pointer_tmp)
    os.replace(pointer_tmp, root / POINTER)
    _fsync(root)
    _remove_stale(root, keep=version)
    log.debug("index version %s is live", version)


def durable_paths(folder: Path) -> list[Path]:
    """Everything under ``folder`` to fsync, deepest first: files, then their folders."""
    found: list[Path] = []
    for parent, folders, files in os.walk(folder, topdown=False):
        found.extend(Path(parent) / name for name in files)
        found.extend(Path(parent) / name for name in folders)
    found.append(folder)
    return found


def _fsync(path: Path) -> None:
    # A folder is opened read-only too: fsync on its descriptor makes its entries durable.
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _remove_stale(root: Path, keep: str) -> None:
    # Older folders can go right away: a reader that memory-mapped their files keeps them
    # until it lets go (POSIX unlink). A leftover .tmp- folder is a save that crashed.
    for child in root.iterdir():
        if child.is_dir() and child.name != keep and child.name.startswith(("v-", ".tmp-")):
            shutil.rmtree(child, ignore_errors=True)
