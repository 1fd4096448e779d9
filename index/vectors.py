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
from typing import Any

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


@dataclass(frozen=True)
class Manifest:
    model: str
    dimension: int
    count: int
    built_at: float
    version: str


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
        return (
            np.vstack([self.faiss.reconstruct(int(i)) for i in ids])
            if len(ids)
            else (np.zeros((0, self.dimension), dtype=np.float32))
        )

    def search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest passage ids and their cosine scores, among ``allowed`` ids if given."""
        if len(self) == 0 or k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        params = None
        if allowed is not None:
            if len(allowed) == 0:
                return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
            params = faiss.SearchParameters(sel=_bitmap_selector(allowed))  # type: ignore[call-arg]
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
        )


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
