"""Fit the product's ranking weights and "as of" grace on the dev weeks.

    .venv/bin/python -m bench.tune_ranking [--grace-days 0,1,2,3]

Only dev questions are read (the held-out weeks stay unseen). For each question the
retriever's candidate passages and their features are computed once (with the widest grace);
then, per grace, a logistic regression on "passage contains the answer" gives the weights a
start and a coordinate search maximises MRR@10 + AnsRecall@5 over the candidate lists.
Prints the constants to paste into index/ranking.py and index/search.py. (The abstention
thresholds are read off the calibration table of ``bench.eval_realtimeqa``.)
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np

from bench.baselines import PassageTable
from bench.realtimeqa import Question, contains_answer
from bench.setup import CACHE, Bench, prepared, single_threaded
from index.ranking import AGE_FEATURES, DEFAULT_MODEL, FEATURES, RankingModel
from index.search import AS_OF_GRACE, SearchFilters

log = logging.getLogger(__name__)

K = 10
DAY = 86_400


@dataclass
class Pools:
    """Candidate features of many questions, stacked; ``group`` says which question a row is."""

    features: np.ndarray
    labels: np.ndarray  # passage contains the answer
    similarity: np.ndarray
    future_days: np.ndarray  # how far after "as of" the passage is dated (<= 0: not after)
    group: np.ndarray
    questions: int

    def save(self, path: Path) -> None:
        np.savez(
            path,
            features=self.features,
            labels=self.labels,
            similarity=self.similarity,
            future_days=self.future_days,
            group=self.group,
            questions=self.questions,
        )

    @classmethod
    def load(cls, path: Path) -> Pools:
        with np.load(path) as data:
            arrays = {name: data[name] for name in data.files}
        return cls(**{**arrays, "questions": int(arrays["questions"])})

    def keep(self, mask: np.ndarray) -> Pools:
        return Pools(
            self.features[mask],
            self.labels[mask],
            self.similarity[mask],
            self.future_days[mask],
            self.group[mask],
            self.questions,
        )


def collect(bench: Bench, questions: list[Question], widest_grace: float) -> Pools:
    retriever = bench.corpus.retriever
    retriever.as_of_grace = timedelta(days=widest_grace)
    table = PassageTable(bench.corpus.engine)
    parts: list[tuple[np.ndarray, ...]] = []
    for number, question in enumerate(questions):
        found = retriever.candidates(question.text, SearchFilters(as_of=question.as_of))
        rows = table.rows(found.ids)
        labels = np.array([contains_answer(table.texts[r], question.answer) for r in rows])
        published = table.published[rows]
        future = (published - question.as_of.timestamp()) / DAY
        parts.append((found.features, labels, found.similarity, future, np.full(len(rows), number)))
        if number % 50 == 0:
            log.info("candidates for %d/%d questions", number, len(questions))
    features, labels, similarity, future, group = (
        np.concatenate([p[i] for p in parts]) for i in range(5)
    )
    return Pools(features, labels, similarity, future, group, len(questions))


def collect_natural(split: str = "dev") -> Pools:
    """Candidates of the answerable natural questions (asked without a date, as ``/ask``)."""
    from bench.eval_natural import prepared as natural_corpus
    from bench.natural import load_split
    from index.embedder import Embedder

    questions = [q for q in load_split(split) if q.answerable]
    parts: list[tuple[np.ndarray, ...]] = []
    with natural_corpus(Embedder()) as corpus:
        single_threaded()
        table = PassageTable(corpus.engine)
        for number, question in enumerate(questions):
            found = corpus.retriever.candidates(question.text, SearchFilters())
            rows = table.rows(found.ids)
            labels = np.array([question.holds_answer(table.texts[r]) for r in rows])
            zeros = np.zeros(len(rows))
            group = np.full(len(rows), number)
            parts.append((found.features, labels, found.similarity, zeros, group))
    features, labels, similarity, future, group = (
        np.concatenate([p[i] for p in parts]) for i in range(5)
    )
    return Pools(features, labels, similarity, future, group, len(questions))


# Feature groups whose part in the ranking the ablation measures (bench/README.md, #11).
GROUPS = {
    "shared words (bm25, bm25_log, article_bm25, coverage)": (
        "bm25",
        "bm25_log",
        "article_bm25",
        "coverage",
        "bm25_rank",
    ),
    "title (title_bm25, title_coverage)": ("title_bm25", "title_coverage"),
    "lead paragraph": ("lead",),
    "recency (age buckets, recent hint)": (*AGE_FEATURES, "undated", "recent_hint_week"),
    "cosine (cos, cos_gap, article_cos, neighbour_cos, dense_rank)": (
        "cos",
        "cos_gap",
        "article_cos",
        "neighbour_cos",
        "dense_rank",
    ),
    "passage length": ("log_chars",),
}


def ablation(quiz: Pools, natural: Pools, model: RankingModel) -> list[str]:
    """The shipped weights on both benches' dev candidates, and with each group zeroed."""
    lines = [
        "| Weights | RTQA dev (passage) | natural dev (passage) |",
        "|---|---|---|",
        f"| shipped | {describe(quiz, model.logits(quiz.features))} "
        f"| {describe(natural, model.logits(natural.features))} |",
    ]
    for label, names in GROUPS.items():
        without = RankingModel(
            {n: w for n, w in model.weights.items() if n not in names}, model.bias
        )
        lines.append(
            f"| without {label} | {describe(quiz, without.logits(quiz.features))} "
            f"| {describe(natural, without.logits(natural.features))} |"
        )
    return lines


def first_ranks(pools: Pools, scores: np.ndarray) -> np.ndarray:
    """1-based rank of each question's first answer-holding candidate (0 = none)."""
    ranks = np.zeros(pools.questions, dtype=np.int64)
    order = np.lexsort((-scores, pools.group))
    group = pools.group[order]
    labels = pools.labels[order]
    starts = np.searchsorted(group, np.arange(pools.questions))
    position = np.arange(len(order)) - starts[group]
    hit = labels.astype(bool)
    first = np.full(pools.questions, np.iinfo(np.int64).max)
    np.minimum.at(first, group[hit], position[hit])
    found = first < np.iinfo(np.int64).max
    ranks[found] = first[found] + 1
    return ranks


def objective(pools: Pools, scores: np.ndarray) -> float:
    ranks = first_ranks(pools, scores)
    hit = (ranks > 0) & (ranks <= K)
    mrr = np.where(hit, 1.0 / np.maximum(ranks, 1), 0.0).mean()
    recall5 = ((ranks > 0) & (ranks <= 5)).mean()
    return float(mrr + recall5)


def logistic(
    x: np.ndarray,
    y: np.ndarray,
    l2: float = 1e-2,
    steps: int = 50,
    sample_weights: np.ndarray | None = None,
) -> np.ndarray:
    """Newton's method for L2-regularised logistic regression; the last weight is the bias.

    ``sample_weights`` (mean 1) let a smaller set of examples count as much as a larger one.
    """
    design = np.hstack([x, np.ones((len(x), 1))]).astype(np.float64)
    s = np.ones(len(y)) if sample_weights is None else np.asarray(sample_weights, np.float64)
    w = np.zeros(design.shape[1])
    penalty = np.full(design.shape[1], l2)
    penalty[-1] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(design @ w)))
        gradient = design.T @ (s * (p - y)) / len(y) + penalty * w
        hessian = (design * (s * p * (1 - p))[:, None]).T @ design / len(y) + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-6:
            break
    return w


def coordinate_search(pools: Pools, start: np.ndarray, rounds: int = 4) -> np.ndarray:
    """Greedy per-weight line search on the ranking objective (the bias cannot change ranks)."""
    w = start.copy()
    x = pools.features.astype(np.float64)
    best = objective(pools, x @ w[:-1])
    for _ in range(rounds):
        improved = False
        for j in range(len(w) - 1):
            scale = max(abs(w[j]), 0.25)
            for factor in (-1.0, -0.5, -0.25, -0.1, 0.1, 0.25, 0.5, 1.0):
                trial = w.copy()
                trial[j] += factor * scale
                value = objective(pools, x @ trial[:-1])
                if value > best + 1e-9:
                    best, w, improved = value, trial, True
        if not improved:
            break
    return w


def describe(pools: Pools, scores: np.ndarray) -> str:
    ranks = first_ranks(pools, scores)
    hit = (ranks > 0) & (ranks <= K)
    mrr = np.where(hit, 1.0 / np.maximum(ranks, 1), 0.0).mean()
    parts = [f"R@{k}={((ranks > 0) & (ranks <= k)).mean():.3f}" for k in (1, 3, 5, 10)]
    return " ".join([*parts, f"MRR@10={mrr:.3f}"])


def fit(pools: Pools) -> RankingModel:
    start = logistic(pools.features, pools.labels.astype(np.float64))
    log.info("logistic regression:   %s", describe(pools, pools.features @ start[:-1]))
    tuned = coordinate_search(pools, start)
    log.info("after coordinate search: %s", describe(pools, pools.features @ tuned[:-1]))
    # Re-fit the bias so that scores stay probabilities after the search moved the weights.
    logits = pools.features @ tuned[:-1]
    bias = logistic(logits[:, None], pools.labels.astype(np.float64), l2=0.0)
    weights = {name: round(float(tuned[i] * bias[0]), 4) for i, name in enumerate(FEATURES)}
    return RankingModel(weights=weights, bias=round(float(bias[1]), 4))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Tune ranking on the RealTime QA dev weeks.")
    parser.add_argument("--grace-days", default="0,1,2,3")
    parser.add_argument(
        "--reuse", action="store_true", help="Reuse the candidates of the last run (same code)."
    )
    parser.add_argument(
        "--natural",
        action="store_true",
        help="Also score the natural dev questions' candidates: the ablation table only.",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("sentence_transformers", "transformers", "faiss", "bm25s"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    graces = sorted(float(g) for g in args.grace_days.split(","))
    saved = CACHE / "tune-answerable.npz"
    if args.natural:
        natural_saved = CACHE / "tune-natural.npz"
        if args.reuse and natural_saved.is_file():
            natural = Pools.load(natural_saved)
        else:
            natural = collect_natural()
            natural.save(natural_saved)
        quiz = Pools.load(saved) if saved.is_file() else natural.keep(natural.group < 0)
        quiz = quiz.keep(quiz.future_days <= AS_OF_GRACE.days)
        print("\n".join(ablation(quiz, natural, DEFAULT_MODEL)))
        return 0
    if args.reuse and saved.is_file():
        pools = Pools.load(saved)
    else:
        with prepared("dev", None) as bench:
            single_threaded()
            pools = collect(bench, bench.answerable, graces[-1])
        pools.save(saved)
    best: tuple[float, float, RankingModel] | None = None
    for grace in graces:
        visible = pools.keep(pools.future_days <= grace)
        model = fit(visible)
        value = objective(visible, model.logits(visible.features))
        log.info("grace %.0f days: objective %.4f", grace, value)
        if best is None or value > best[0]:
            best = (value, grace, model)
    assert best is not None
    _, grace, model = best
    print(f"AS_OF_GRACE = timedelta(days={grace:g})")
    print(f"DEFAULT_MODEL = RankingModel(weights={dict(model.weights)!r}, bias={model.bias!r})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
