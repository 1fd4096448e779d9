"""Synthetic passage vectors that cluster as real news embeddings do (for ``bench_scale``).

Approximate search is only as good as the data's clusters: vectors that cluster poorly (a
bag of random word vectors, say) need half the inverted lists probed, real news embeddings a
few percent. So the scale benchmark's vectors are drawn from a mixture fitted to *real*
passage embeddings, those the other benchmarks cache in ``bench/.cache/passages.db`` (the
RealTime QA corpus, 62k passages, and the natural-question corpus): k-means clusters of the
real vectors (about 50 per cluster), then each synthetic vector is a draw from one cluster's
Gaussian, with the cluster's mean and its empirical covariance (a random combination of its
members' offsets from the mean), renormalised to unit length. An article's passages come
from one cluster, as a real article's passages are about one story. No real vector is
copied, so a million of them hold no duplicates; ``python -m bench.scale_vectors`` compares the
probes IVF needs on the real vectors and on as many synthetic ones.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import faiss
import numpy as np

CACHE = Path(__file__).resolve().parent / ".cache"
REAL_VECTORS = CACHE / "passages.db"
PER_CLUSTER = 50  # real vectors per mixture component


def real_vectors(model: str, path: Path = REAL_VECTORS) -> np.ndarray:
    """The real passage embeddings of ``model`` cached by the benchmarks (unit rows)."""
    if not path.is_file():
        raise SystemExit(
            f"no real passage vectors in {path}: run `python -m bench.eval_natural` (2,600 "
            "passages, a minute) or the RealTime QA bench (62k) first"
        )
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        blobs = db.execute(
            "SELECT c.vector FROM embedding_cache c JOIN embedding_models m ON m.id = c.model_id"
            " WHERE m.name = ? ORDER BY c.text_hash",
            (model,),
        ).fetchall()
    if len(blobs) < 2 * PER_CLUSTER:
        raise SystemExit(f"only {len(blobs)} real vectors of {model} in {path}")
    data = np.frombuffer(b"".join(blob for (blob,) in blobs), dtype=np.float32)
    return _unit(data.reshape(len(blobs), -1).copy())


class RealMixture:
    """A Gaussian mixture fitted to real vectors: one component per k-means cluster."""

    def __init__(self, real: np.ndarray, seed: int = 0) -> None:
        real = np.ascontiguousarray(real, dtype=np.float32)
        clusters = max(2, len(real) // PER_CLUSTER)
        kmeans = faiss.Kmeans(real.shape[1], clusters, niter=15, seed=seed, spherical=True)
        kmeans.train(real)
        _, assigned = kmeans.index.search(real, 1)
        order = np.argsort(assigned[:, 0], kind="stable")
        sizes = np.bincount(assigned[:, 0], minlength=clusters)
        self.members = np.split(real[order], np.cumsum(sizes)[:-1])
        self.means = [m.mean(axis=0) if len(m) else None for m in self.members]
        self.weights = sizes / sizes.sum()
        self.dimension = real.shape[1]

    def components(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """``count`` component numbers, drawn by the components' share of the real vectors."""
        return rng.choice(len(self.weights), size=count, p=self.weights)

    def sample(self, components: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One unit vector drawn from each given component."""
        out = np.empty((len(components), self.dimension), dtype=np.float32)
        for number in np.unique(components).tolist():
            rows = np.flatnonzero(components == number)
            members, mean = self.members[number], self.means[number]
            offsets = members - mean
            # z @ offsets has the members' covariance when z ~ N(0, 1/(m-1)) per entry.
            scale = 1 / np.sqrt(max(len(members) - 1, 1))
            z = rng.normal(scale=scale, size=(len(rows), len(members))).astype(np.float32)
            out[rows] = mean + z @ offsets
        return _unit(out)

    def for_articles(self, article_ids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A vector per passage, the passages of one article from one component."""
        articles, inverse = np.unique(article_ids, return_inverse=True)
        return self.sample(self.components(len(articles), rng)[inverse], rng)


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-6)).astype(np.float32)


def probes_needed(data: np.ndarray) -> tuple[int, int, float]:
    """The product's IVF choice for ``data``: (lists, probes, recall@10), as a build trains it."""
    from index.vectors import trained_ivf

    ivf, probes, recall = trained_ivf(data, np.arange(len(data), dtype=np.int64))
    return int(ivf.nlist), probes, recall


def main() -> None:
    """Compare the IVF the product trains on the real vectors and on as many synthetic ones."""
    import argparse

    from index.embedder import Embedder

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--real", type=Path, default=REAL_VECTORS)
    parser.add_argument("--synthetic", type=int, nargs="*", default=[], help="more sizes")
    options = parser.parse_args()
    real = real_vectors(Embedder().name, options.real)
    mixture = RealMixture(real)
    rng = np.random.default_rng(1)
    print("| vectors | count | IVF lists | probes for recall@10 ≥ 0.95 | recall@10 |")
    print("|---|---|---|---|---|")
    sizes = [("real", len(real))] + [("synthetic", n) for n in [len(real), *options.synthetic]]
    for label, count in sizes:
        data = real if label == "real" else mixture.sample(mixture.components(count, rng), rng)
        lists, probes, recall = probes_needed(data)
        print(f"| {label} | {count:,} | {lists} | {probes} | {recall:.3f} |", flush=True)


if __name__ == "__main__":
    main()
