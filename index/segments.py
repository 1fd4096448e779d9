"""The index on disk: immutable segments and one manifest naming the live ones.

Layout under the index folder::

    manifest.json        the live segments, with each one's deleted-passage file
    seg-<random>/        vectors.faiss, catalog.npz, facts.npz, outlets.json, lexical/, titles/
                         and deleted-<random>.npy files (passage ids deleted since it was made)

As search engines do (Lucene's segments and commit point): an update writes a small new
segment with the added passages, and a new deleted-ids file for each segment that lost some;
nothing already written is rewritten. Publication is one ``os.replace`` of the manifest
after every file it names has reached the disk, so a crash at any point leaves the previous
manifest live and complete, and a reader never sees half an update. Merging segments (done
in the background, see ``index.updates``) writes a new segment and publishes a manifest that
names it instead of the ones it replaces.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from index.lexical import Postings
from index.vectors import EXACT, IVF, Catalog, VectorIndex

log = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.json"
SEGMENT_PREFIX = "seg-"
STAGING_PREFIX = ".tmp-"
VECTORS_FILE = "vectors.faiss"
CATALOG_FILE = "catalog.npz"
FACTS_FILE = "facts.npz"
OUTLETS_FILE = "outlets.json"
TITLES = "titles"  # the title-only postings' folder in a segment
CATALOG_FIELDS = ("ids", "guild_ids", "source_ids", "article_ids", "published", "contents")
# A staging folder this old belongs to no running writer (a merge takes seconds to minutes).
STALE_STAGING_SECONDS = 6 * 3600


@dataclass(frozen=True)
class SegmentEntry:
    """One live segment as the manifest lists it."""

    name: str
    rows: int  # passages written in it, deleted ones included
    deleted: str = ""  # file in the segment folder holding its deleted passage ids
    deleted_count: int = 0
    kind: str = EXACT
    lists: int = 0  # IVF: inverted lists (trained centroids)
    probes: int = 0  # IVF: lists searched per question
    recall_at_10: float | None = None  # IVF: measured against exact search at training

    @property
    def live(self) -> int:
        return self.rows - self.deleted_count


@dataclass(frozen=True)
class Manifest:
    """The live index: its model, its segments, and how the largest one is searched."""

    model: str
    dimension: int
    count: int  # live passages
    built_at: float
    version: str  # changes with every publication
    segments: tuple[SegmentEntry, ...] = ()
    # The last passage change log entry this index includes (``ingest.changelog``); None:
    # saved before the log, compared with the database once. ``log_waiting``: passages the
    # log named that had no vector yet (workers embed them), taken in at a later catch-up.
    log_sequence: int | None = None
    log_waiting: tuple[int, ...] = ()
    log_origin: str = ""  # the database's change log token (``ingest.changelog.log_origin``)

    @property
    def base(self) -> SegmentEntry | None:
        return max(self.segments, key=lambda s: s.rows, default=None)

    @property
    def kind(self) -> str:
        base = self.base
        return base.kind if base is not None else EXACT

    @property
    def recall_at_10(self) -> float | None:
        base = self.base
        return base.recall_at_10 if base is not None else None

    def describe(self) -> str:
        base = self.base
        if base is None or base.kind != IVF:
            return "exact search"
        recall = "" if base.recall_at_10 is None else f", recall@10 {base.recall_at_10:.3f}"
        return f"IVF, {base.lists} lists, {base.probes} probed{recall} vs exact"

    def with_segments(self, segments: list[SegmentEntry]) -> Manifest:
        return replace(
            self,
            segments=tuple(segments),
            count=sum(s.live for s in segments),
            built_at=time.time(),
            version=new_version_name(),
        )

    @classmethod
    def empty(cls, model: str, dimension: int) -> Manifest:
        return cls(model, dimension, 0, time.time(), "")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        segments = tuple(SegmentEntry(**entry) for entry in data.pop("segments", []))
        waiting = tuple(data.pop("log_waiting", ()))
        return cls(**data, segments=segments, log_waiting=waiting)


@dataclass
class Segment:
    """One segment's contents, row-aligned: vectors, catalog, facts and two postings."""

    vectors: VectorIndex
    catalog: Catalog  # sorted by passage id
    positions: np.ndarray  # int32 place of the passage in its article
    chars: np.ndarray  # int32 length of the passage text
    outlets: np.ndarray  # int32 index into ``outlet_names``
    outlet_names: list[str]
    lexical: Postings  # title and passage text
    titles: Postings  # the article's title alone
    name: str = ""
    deleted: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.catalog.ids)

    def entry(self) -> SegmentEntry:
        return SegmentEntry(
            self.name,
            len(self),
            kind=self.vectors.kind,
            lists=int(self.vectors.faiss.nlist) if self.vectors.kind == IVF else 0,
            probes=self.vectors.probes,
            recall_at_10=self.vectors.recall_at_10,
        )

    def live_rows(self) -> np.ndarray:
        """A mask of the rows not deleted."""
        if len(self.deleted) == 0:
            return np.ones(len(self), dtype=bool)
        return ~np.isin(self.catalog.ids, self.deleted)

    # --- on disk ---------------------------------------------------------------------------

    def write(self, root: Path) -> SegmentEntry:
        """Write this segment durably under a new name; invisible until a manifest names it."""
        return self.commit(root, self.stage(root))

    def stage(self, root: Path) -> Path:
        """Write the files into a staging folder (which publications leave alone for hours)."""
        staged = root / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
        staged.mkdir(parents=True)
        faiss.write_index(self.vectors.faiss, str(staged / VECTORS_FILE))
        columns: dict[str, Any] = dict(zip(CATALOG_FIELDS, self.catalog.columns(), strict=True))
        np.savez(staged / CATALOG_FILE, **columns)
        facts: dict[str, Any] = {
            "positions": self.positions,
            "chars": self.chars,
            "outlets": self.outlets,
        }
        np.savez(staged / FACTS_FILE, **facts)
        (staged / OUTLETS_FILE).write_text(json.dumps(self.outlet_names, ensure_ascii=False))
        self.lexical.save(staged)
        self.titles.save(staged, TITLES)
        for path in durable_paths(staged):
            fsync(path)
        return staged

    def commit(self, root: Path, staged: Path) -> SegmentEntry:
        """Give the staged folder its segment name (call while holding the writer lock)."""
        self.name = f"{SEGMENT_PREFIX}{uuid.uuid4().hex[:12]}"
        os.replace(staged, root / self.name)
        fsync(root)
        return self.entry()

    @classmethod
    def load(cls, root: Path, entry: SegmentEntry, model: str, dimension: int) -> Segment:
        """A live segment: vectors and postings memory-mapped, the small columns read."""
        folder = root / entry.name
        vectors = VectorIndex(model, dimension)
        vectors.faiss = faiss.read_index(str(folder / VECTORS_FILE), faiss.IO_FLAG_MMAP_IFC)
        vectors.kind, vectors.probes = entry.kind, entry.probes
        vectors.recall_at_10 = entry.recall_at_10
        catalog = read_catalog(root, entry)
        vectors.catalog = catalog
        with np.load(folder / FACTS_FILE) as data:
            positions, chars, outlets = data["positions"], data["chars"], data["outlets"]
        segment = cls(
            vectors,
            catalog,
            positions,
            chars,
            outlets,
            json.loads((folder / OUTLETS_FILE).read_text()),
            Postings.load(folder),
            Postings.load(folder, TITLES),
            entry.name,
        )
        if len(vectors) != len(catalog.ids) or len(segment.lexical) != len(catalog.ids):
            raise IndexMismatch(f"segment {entry.name} is inconsistent: rebuild the index")
        segment.deleted = read_deleted(root, entry)
        return segment


class IndexMismatch(RuntimeError):
    """A saved segment does not match its manifest (damaged files): rebuild the index."""


def read_catalog(root: Path, entry: SegmentEntry) -> Catalog:
    with np.load(root / entry.name / CATALOG_FILE) as data:
        return Catalog(*(data[name] for name in CATALOG_FIELDS))


def read_outlets(root: Path, entry: SegmentEntry) -> np.ndarray:
    """Each row's outlet name (an object array), without loading the rest of the segment."""
    names = json.loads((root / entry.name / OUTLETS_FILE).read_text())
    with np.load(root / entry.name / FACTS_FILE) as data:
        codes = data["outlets"]
    return np.array(names, dtype=object)[codes] if names else np.zeros(0, dtype=object)


def read_deleted(root: Path, entry: SegmentEntry) -> np.ndarray:
    if not entry.deleted:
        return np.zeros(0, dtype=np.int64)
    return np.asarray(np.load(root / entry.name / entry.deleted), dtype=np.int64)


def write_deleted(root: Path, entry: SegmentEntry, deleted: np.ndarray) -> SegmentEntry:
    """The entry with ``deleted`` (all of the segment's deleted ids) in a new, durable file."""
    name = f"deleted-{uuid.uuid4().hex[:12]}.npy"
    path = root / entry.name / name
    np.save(path, np.unique(deleted.astype(np.int64)))
    fsync(path)
    fsync(path.parent)
    return replace(entry, deleted=name, deleted_count=len(np.unique(deleted)))


# --- the manifest ------------------------------------------------------------------------------


def read_manifest(root: Path) -> Manifest | None:
    """The published manifest, or None when nothing was published (or an older layout)."""
    try:
        return Manifest.from_json((root / MANIFEST_FILE).read_text())
    except FileNotFoundError:
        return None


def current_version(root: Path) -> str | None:
    """The live publication's name (it changes with every update), None before the first."""
    manifest = read_manifest(root)
    return manifest.version if manifest is not None else None


def manifest_stamp(root: Path) -> tuple[int, int] | None:
    """A cheap change marker for the manifest file (each publication is a new file)."""
    try:
        status = os.stat(root / MANIFEST_FILE)
    except FileNotFoundError:
        return None
    return status.st_ino, status.st_mtime_ns


def read_catalog_ids(root: Path) -> np.ndarray:
    """The live passage ids, ascending, without loading any vectors (none if nothing saved)."""
    manifest = read_manifest(root)
    if manifest is None or not manifest.segments:
        return np.zeros(0, dtype=np.int64)
    parts = []
    for entry in manifest.segments:
        with np.load(root / entry.name / CATALOG_FILE) as data:
            ids = np.asarray(data["ids"], dtype=np.int64)
        deleted = read_deleted(root, entry)
        parts.append(ids[~np.isin(ids, deleted)] if len(deleted) else ids)
    return np.sort(np.concatenate(parts))


def new_version_name() -> str:
    return f"v-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"


def publish(root: Path, manifest: Manifest) -> None:
    """Make ``manifest`` the live one, atomically; then delete what no manifest names.

    Every file it names reached the disk before (``Segment.write``, ``write_deleted``), so
    after a power cut the manifest never names a missing or empty file.
    """
    staged = root / f".{MANIFEST_FILE}.{uuid.uuid4().hex}"
    staged.write_text(manifest.to_json())
    fsync(staged)
    os.replace(staged, root / MANIFEST_FILE)
    fsync(root)
    remove_unused(root, manifest)
    log.debug("index version %s is live (%d segments)", manifest.version, len(manifest.segments))


def remove_unused(root: Path, manifest: Manifest) -> None:
    """Delete segments and deleted-id files the manifest does not name, and dead staging.

    A reader that memory-mapped a deleted file keeps it until it lets go (POSIX unlink); a
    reader that read the previous manifest and has not opened its files yet retries.
    """
    live = {entry.name: entry for entry in manifest.segments}
    now = time.time()
    for child in root.iterdir():
        name = child.name
        if name.startswith(SEGMENT_PREFIX) and child.is_dir():
            entry = live.get(name)
            if entry is None:
                shutil.rmtree(child, ignore_errors=True)
                continue
            for old in child.glob("deleted-*.npy"):
                if old.name != entry.deleted:
                    old.unlink(missing_ok=True)
        elif name.startswith(("v-", STAGING_PREFIX)) or name == "CURRENT":
            # v-* and CURRENT: the layout before segments (a full version per update).
            staging = name.startswith(STAGING_PREFIX)
            if staging and now - child.stat().st_mtime < STALE_STAGING_SECONDS:
                continue  # maybe a merge still writing it
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
        elif name.startswith(f".{MANIFEST_FILE}.") and now - child.stat().st_mtime > 60:
            child.unlink(missing_ok=True)


def has_older_layout(root: Path) -> bool:
    """Whether ``root`` holds an index saved before segments (a CURRENT pointer)."""
    return (root / "CURRENT").exists() and not (root / MANIFEST_FILE).exists()


def durable_paths(folder: Path) -> list[Path]:
    """Everything under ``folder`` to fsync, deepest first: files, then their folders."""
    found: list[Path] = []
    for parent, folders, files in os.walk(folder, topdown=False):
        found.extend(Path(parent) / name for name in files)
        found.extend(Path(parent) / name for name in folders)
    found.append(folder)
    return found


def fsync(path: Path) -> None:
    # A folder is opened read-only too: fsync on its descriptor makes its entries durable.
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
