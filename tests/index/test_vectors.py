"""The FAISS index on disk: keyed by passage id, swapped in atomically, never half-written."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from index import vectors
from index.vectors import Catalog, VectorIndex


def unit(rows: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    data = np.random.default_rng(seed).normal(size=(rows, dim)).astype(np.float32)
    return data / np.linalg.norm(data, axis=1, keepdims=True)


def catalog(ids: list[int], guild: int = 0) -> Catalog:
    n = len(ids)
    zeros = np.zeros(n, dtype=np.int64)
    return Catalog(np.array(ids, dtype=np.int64), zeros + guild, zeros, zeros, zeros, zeros)


def saved(root: Path, index: VectorIndex) -> str:
    staged = vectors.new_version_dir(root)
    index.version = vectors.new_version_name()
    vectors.save_into(index, staged)
    vectors.publish(root, staged, index.version)
    return index.version


def test_search_returns_passage_ids_not_positions() -> None:
    """Vectors are found by the passage ids they were added with."""
    index = VectorIndex("m", 8)
    data = unit(5)
    index.add(data, catalog([101, 205, 307, 409, 511]))
    ids, scores = index.search(data[2], 2)
    assert ids[0] == 307 and scores[0] == pytest.approx(1.0, abs=1e-5)


def test_search_can_be_limited_to_allowed_ids() -> None:
    """A filter admits only some passages, even when others are nearer."""
    index = VectorIndex("m", 8)
    data = unit(4)
    index.add(data, catalog([1, 2, 3, 4]))
    ids, _ = index.search(data[0], 4, allowed=np.array([3, 4]))
    assert sorted(ids.tolist()) == [3, 4]


def test_filter_bitmap_is_never_read_past_its_end() -> None:
    """Ids beyond the allowed bitmap are refused, whatever memory follows it."""
    memory = np.full(16, 0xFF, dtype=np.uint8)
    memory[0] = 0b10  # only id 1 allowed; the bytes after it must not be consulted
    selector = vectors._BitmapSelector(memory[:1])
    assert [i for i in range(128) if selector.is_member(i)] == [1]


def test_a_filter_admitting_one_low_id_never_returns_higher_ones() -> None:
    """With many passages and one allowed, only that one comes back."""
    index = VectorIndex("m", 8)
    data = unit(300)
    index.add(data, catalog(list(range(1, 301))))
    for row in range(0, 300, 7):
        ids, _ = index.search(data[row], 10, allowed=np.array([1]))
        assert ids.tolist() == [1]


def test_removed_passages_are_no_longer_found() -> None:
    """Removing ids drops their vectors and catalog rows."""
    index = VectorIndex("m", 8)
    data = unit(3)
    index.add(data, catalog([1, 2, 3]))
    index.remove(np.array([2]))
    ids, _ = index.search(data[1], 3)
    assert 2 not in ids.tolist() and len(index) == 2
    assert index.catalog.ids.tolist() == [1, 3]


def test_saved_index_loads_with_manifest(tmp_path: Path) -> None:
    """A saved version reloads with the same vectors and a manifest of model, dimension, count."""
    index = VectorIndex("my-model", 8)
    index.add(unit(3), catalog([7, 8, 9]))
    version = saved(tmp_path, index)
    loaded = vectors.load(tmp_path)
    assert loaded is not None and loaded.version == version and len(loaded) == 3
    manifest = vectors.read_manifest(tmp_path)
    assert manifest is not None
    assert (manifest.model, manifest.dimension, manifest.count) == ("my-model", 8, 3)


def test_crash_while_saving_keeps_the_old_index(tmp_path: Path) -> None:
    """A half-written new version is ignored: readers keep the last published one."""
    old = VectorIndex("m", 8)
    old.add(unit(2), catalog([1, 2]))
    saved(tmp_path, old)
    staged = vectors.new_version_dir(tmp_path)
    (staged / vectors.VECTORS_FILE).write_bytes(b"truncated")  # the crash happens here
    loaded = vectors.load(tmp_path)
    assert loaded is not None and len(loaded) == 2


def test_publishing_removes_old_versions(tmp_path: Path) -> None:
    """After a swap only the live version stays on disk."""
    index = VectorIndex("m", 8)
    index.add(unit(2), catalog([1, 2]))
    saved(tmp_path, index)
    latest = saved(tmp_path, index)
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == [latest]


def test_publishing_fsyncs_every_file_and_folder_of_the_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nested files (the BM25 and title indexes) and their folders reach the disk first."""
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(descriptor: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{descriptor}"))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    index = VectorIndex("m", 8)
    index.add(unit(2), catalog([1, 2]))
    staged = vectors.new_version_dir(tmp_path)
    vectors.save_into(index, staged)
    (staged / "lexical" / "bm25").mkdir(parents=True)
    (staged / "lexical" / "tokens.npz").write_bytes(b"tokens")
    (staged / "lexical" / "bm25" / "data.npy").write_bytes(b"scores")
    (staged / "titles").mkdir()
    (staged / "titles" / "tokens.npz").write_bytes(b"titles")
    everything = {str(p) for p in staged.rglob("*")} | {str(staged)}
    vectors.publish(tmp_path, staged, vectors.new_version_name())
    pointer_moved = next(i for i, path in enumerate(synced) if f".{vectors.POINTER}." in path)
    assert everything <= set(synced[:pointer_moved])


def clustered(rows: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    """Unit vectors around 50 topics, as news passages are."""
    rng = np.random.default_rng(seed)
    topics = rng.normal(size=(50, dim))
    data = topics[rng.integers(0, 50, rows)] + 0.5 * rng.normal(size=(rows, dim))
    data = data.astype(np.float32)
    return data / np.linalg.norm(data, axis=1, keepdims=True)


def test_the_index_type_follows_the_corpus_size_unless_set() -> None:
    """Exact search up to the threshold, IVF above it; a setting overrides either way."""
    assert vectors.kind_for(vectors.EXACT_UP_TO) == "exact"
    assert vectors.kind_for(vectors.EXACT_UP_TO + 1) == "ivf"
    assert vectors.kind_for(5000, "ivf") == "ivf"
    assert vectors.kind_for(10, "ivf") == "exact"  # too few passages to train on
    assert vectors.kind_for(10**7, "exact") == "exact"


def test_an_ivf_index_finds_what_exact_search_finds_and_survives_a_reload(
    tmp_path: Path,
) -> None:
    """Trained on the corpus, the IVF index keeps recall@10 ≥ 0.95, saves, reloads, removes."""
    data = clustered(5000)
    ids = np.arange(5000, dtype=np.int64) * 3 + 1
    exact = VectorIndex("m", 32)
    exact.add(data, catalog(ids.tolist()))
    ivf = exact.converted("ivf")
    assert ivf.kind == "ivf" and ivf.recall_at_10 is not None and ivf.recall_at_10 >= 0.95
    assert np.allclose(ivf.vectors_for(ids[:5]), data[:5])
    version = saved(tmp_path, ivf)
    loaded = vectors.load(tmp_path, mapped=True)
    assert loaded is not None and loaded.kind == "ivf" and loaded.version == version
    manifest = vectors.read_manifest(tmp_path)
    assert manifest is not None and "IVF" in manifest.describe()
    queries = clustered(50, seed=1)
    found = sum(
        len(set(loaded.search(q, 10)[0].tolist()) & set(exact.search(q, 10)[0].tolist()))
        for q in queries
    )
    assert found >= 0.9 * 10 * len(queries)
    assert np.allclose(loaded.vectors_for(ids[-3:]), data[-3:])
    writable = vectors.load(tmp_path)  # a writer's copy: read-only mapped files never change
    assert writable is not None and writable.remove(ids[:10]) == 10 and len(writable) == 4990
    assert not set(ids[:10].tolist()) & set(writable.search(data[0], 10)[0].tolist())


def test_an_ivf_search_filtered_to_a_few_passages_is_exact() -> None:
    """A small server's passages are all considered: a filtered IVF search misses none."""
    data = clustered(3000)
    index = VectorIndex("m", 32)
    index.add(data, catalog(list(range(3000))))
    ivf = index.converted("ivf")
    allowed = np.arange(0, 3000, 100, dtype=np.int64)
    query = clustered(1, seed=2)[0]
    assert ivf.search(query, 5, allowed)[0].tolist() == index.search(query, 5, allowed)[0].tolist()
