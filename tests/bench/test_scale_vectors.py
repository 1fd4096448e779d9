"""The scale benchmark's synthetic vectors: drawn around real ones, clustered as they are."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.scale_vectors import RealMixture, probes_needed, real_vectors
from index.cache import remember_vectors
from ingest.db import open_engine


def topics(rows: int, seed: int = 0, dim: int = 32) -> np.ndarray:
    """Unit vectors around 40 topics: a stand-in for real news embeddings."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, dim))
    data = centres[rng.integers(0, 40, rows)] + 0.4 * rng.normal(size=(rows, dim))
    return (data / np.linalg.norm(data, axis=1, keepdims=True)).astype(np.float32)


def test_real_vectors_are_read_from_a_benchmark_cache(tmp_path: Path) -> None:
    """The vectors another benchmark cached are what the mixture is fitted to."""
    path = tmp_path / "passages.db"
    engine = open_engine(f"sqlite:///{path}")
    data = topics(120)
    remember_vectors(engine, "model-a", {f"h{i:04d}": v for i, v in enumerate(data)})
    engine.dispose()
    read = real_vectors("model-a", path)
    assert read.shape == (120, 32)
    assert np.allclose(np.sort(read @ data[0])[-1], 1.0, atol=1e-5)


def test_synthetic_vectors_cluster_as_the_real_ones_do() -> None:
    """Drawn from the fitted mixture, IVF reaches recall@10 0.95 probing about as many lists
    as on the real vectors, and far fewer than on vectors without clusters."""
    real = topics(4000)
    rng = np.random.default_rng(1)
    mixture = RealMixture(real)
    synthetic = mixture.sample(mixture.components(4000, rng), rng)
    assert np.allclose(np.linalg.norm(synthetic, axis=1), 1.0, atol=1e-5)
    assert not (synthetic @ real.T > 0.9999).any()  # new vectors, not copies
    _, real_probes, _ = probes_needed(real)
    _, synthetic_probes, recall = probes_needed(synthetic)
    noise = np.random.default_rng(2).normal(size=real.shape).astype(np.float32)
    _, noise_probes, _ = probes_needed(noise / np.linalg.norm(noise, axis=1, keepdims=True))
    assert recall >= 0.95
    assert synthetic_probes <= 2 * real_probes < noise_probes


def test_an_articles_passages_come_from_one_cluster() -> None:
    """Passages of one article are closer to each other than to another article's."""
    mixture = RealMixture(topics(2000))
    rng = np.random.default_rng(3)
    vectors = mixture.for_articles(np.repeat(np.arange(200), 5), rng)
    same = np.mean([vectors[a * 5] @ vectors[a * 5 + 1] for a in range(200)])
    other = np.mean([vectors[a * 5] @ vectors[a * 5 + 5] for a in range(199)])
    assert same > other + 0.2
