"""FAISS search keyed by passage id: filters, exact or IVF by size."""

from __future__ import annotations

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


def test_an_ivf_index_finds_what_exact_search_finds() -> None:
    """Trained on the corpus, the IVF index keeps recall@10 ≥ 0.95 and finds vectors by id."""
    data = clustered(5000)
    ids = np.arange(5000, dtype=np.int64) * 3 + 1
    exact = VectorIndex("m", 32)
    exact.add(data, catalog(ids.tolist()))
    ivf = VectorIndex.built("m", data, catalog(ids.tolist()), "ivf")
    assert ivf.kind == "ivf" and ivf.recall_at_10 is not None and ivf.recall_at_10 >= 0.95
    assert np.allclose(ivf.vectors_for(ids[:5]), data[:5])
    queries = clustered(50, seed=1)
    found = sum(
        len(set(ivf.search(q, 10)[0].tolist()) & set(exact.search(q, 10)[0].tolist()))
        for q in queries
    )
    assert found >= 0.9 * 10 * len(queries)
    assert np.allclose(ivf.vectors_for(ids[-3:]), data[-3:])


def test_an_ivf_search_filtered_to_a_few_passages_is_exact() -> None:
    """A small server's passages are all considered: a filtered IVF search misses none."""
    data = clustered(3000)
    index = VectorIndex("m", 32)
    index.add(data, catalog(list(range(3000))))
    ivf = VectorIndex.built("m", data, catalog(list(range(3000))), "ivf")
    allowed = np.arange(0, 3000, 100, dtype=np.int64)
    query = clustered(1, seed=2)[0]
    assert ivf.search(query, 5, allowed)[0].tolist() == index.search(query, 5, allowed)[0].tolist()


@pytest.mark.parametrize("kind", ["exact", "ivf"])
def test_a_memory_mapped_index_answers_as_the_one_in_memory(kind: str, tmp_path) -> None:
    """Loaded memory-mapped from disk, an index finds and returns the same vectors."""
    import faiss

    data = clustered(3000)
    ids = (np.arange(3000, dtype=np.int64) * 7 + 3)[::-1].copy()  # not in id order
    built = VectorIndex.built("m", data, catalog(ids.tolist()), kind)
    faiss.write_index(built.faiss, str(tmp_path / "v.faiss"))
    mapped = VectorIndex("m", 32)
    mapped.faiss = faiss.read_index(str(tmp_path / "v.faiss"), faiss.IO_FLAG_MMAP_IFC)
    mapped.kind, mapped.probes, mapped.catalog = built.kind, built.probes, built.catalog
    wanted = ids[[5, 2999, 0, 1234]]
    assert np.array_equal(mapped.vectors_for(wanted), data[[5, 2999, 0, 1234]])
    assert np.array_equal(mapped.all_vectors(), data)
    for query in clustered(20, seed=3):
        assert [r.tolist() for r in mapped.search(query, 10)] == [
            r.tolist() for r in built.search(query, 10)
        ]


def test_vectors_of_added_batches_follow_their_ids() -> None:
    """An exact index grown batch by batch returns each id's own vector."""
    index = VectorIndex("m", 8)
    first, second = unit(4, seed=1), unit(3, seed=2)
    index.add(first, catalog([40, 10, 30, 20]))
    assert np.array_equal(index.vectors_for(np.array([10, 40])), first[[1, 0]])
    index.add(second, catalog([5, 50, 25]))
    assert np.array_equal(
        index.vectors_for(np.array([25, 5, 20])), np.vstack([second[2], second[0], first[3]])
    )
    with pytest.raises(KeyError):
        index.vectors_for(np.array([11]))
