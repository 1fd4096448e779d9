"""How candidate passages are scored: a linear model over a few news-aware signals.

The weights are not hand-picked: ``bench/tune_ranking.py`` fits them (logistic regression on
"does this passage contain the answer", then a search that maximises MRR) on the dev weeks
of RealTime QA only. The score is a probability-like number in (0, 1), so the abstention
threshold means the same thing whatever signals go in.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from index.vectors import NO_DATE

log = logging.getLogger(__name__)

DAY = 86_400.0
# Age buckets in days before "now" (the question's date); the last bucket is the baseline
# every other weight is relative to. Negative ages are articles dated inside the grace window.
AGE_EDGES = (0.0, 2.0, 7.0, 14.0, 30.0, 90.0, 365.0)
AGE_FEATURES = (
    "age_future",
    "age_0_2",
    "age_2_7",
    "age_7_14",
    "age_14_30",
    "age_30_90",
    "age_90_365",
)
FEATURES = (
    "cos",
    "cos_gap",
    "dense_rank",
    "bm25",
    "bm25_log",
    "bm25_rank",
    "coverage",
    "title_bm25",
    "title_coverage",
    "article_cos",
    "article_bm25",
    "article_mass",
    "neighbour_cos",
    "log_chars",
    "lead",
    *AGE_FEATURES,
    "undated",
    "recent_hint_week",
)


@dataclass(frozen=True)
class CandidateSignals:
    """Signals for the passages that dense or lexical search put forward for one question."""

    cos: np.ndarray  # cosine similarity to the question
    dense_rank: np.ndarray  # 0-based rank in the dense search, -1 when not in its top list
    bm25: np.ndarray  # raw BM25 score over title and passage (0 without a lexical index)
    bm25_best: float  # the best BM25 score among all passages the filters admit
    bm25_rank: np.ndarray  # 0-based rank in the BM25 search, -1 when not in its top list
    coverage: np.ndarray  # idf-weighted share of the question's words in title and passage
    title_bm25: np.ndarray  # raw BM25 score of the article's title alone
    title_coverage: np.ndarray  # idf-weighted share of the question's words in the title
    neighbour_cos: np.ndarray  # best cosine of the article's previous/next passage, or cos
    article_ids: np.ndarray
    published: np.ndarray  # unix seconds or NO_DATE
    positions: np.ndarray
    chars: np.ndarray
    now: float  # unix seconds: the question's "as of"
    recent_hint: bool  # the question says "this week", "recently", ...


def features(c: CandidateSignals) -> np.ndarray:
    """One row of ``FEATURES`` per candidate."""
    n = len(c.cos)
    out = np.zeros((n, len(FEATURES)), dtype=np.float32)
    if n == 0:
        return out
    column = {name: i for i, name in enumerate(FEATURES)}
    bm25_rel = c.bm25 / c.bm25_best if c.bm25_best > 0 else np.zeros(n, dtype=np.float32)
    out[:, column["cos"]] = c.cos
    out[:, column["cos_gap"]] = c.cos - c.cos.max()
    out[:, column["dense_rank"]] = _rank_signal(c.dense_rank)
    out[:, column["bm25"]] = bm25_rel
    out[:, column["bm25_log"]] = np.log1p(c.bm25)
    out[:, column["bm25_rank"]] = _rank_signal(c.bm25_rank)
    out[:, column["coverage"]] = c.coverage
    out[:, column["title_bm25"]] = np.log1p(c.title_bm25)
    out[:, column["title_coverage"]] = c.title_coverage
    out[:, column["article_cos"]] = _per_article_max(c.article_ids, c.cos)
    out[:, column["article_bm25"]] = _per_article_max(c.article_ids, bm25_rel)
    _, groups, counts = np.unique(c.article_ids, return_inverse=True, return_counts=True)
    out[:, column["article_mass"]] = np.log(counts[groups])
    out[:, column["neighbour_cos"]] = c.neighbour_cos
    out[:, column["log_chars"]] = np.log(np.maximum(c.chars, 50) / 600.0)
    out[:, column["lead"]] = c.positions == 0
    dated = c.published != NO_DATE
    age = np.where(dated, (c.now - c.published.astype(np.float64)) / DAY, np.inf)
    bucket = np.searchsorted(np.array(AGE_EDGES), age, side="right")  # 0 = future
    for index, name in enumerate(AGE_FEATURES):
        out[:, column[name]] = dated & (bucket == index)
    out[:, column["undated"]] = ~dated
    if c.recent_hint:
        out[:, column["recent_hint_week"]] = dated & (age <= 7.0)
    return out


def _rank_signal(ranks: np.ndarray) -> np.ndarray:
    """10 / (10 + rank): 1 for the top hit, 0.5 at rank 10, 0 when the list missed it."""
    return np.where(ranks >= 0, 10.0 / (10.0 + np.maximum(ranks, 0)), 0.0)


def _per_article_max(article_ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """For each candidate, the best value among candidates of the same article."""
    _, groups = np.unique(article_ids, return_inverse=True)
    best = np.full(groups.max() + 1, -np.inf, dtype=np.float64)
    np.maximum.at(best, groups, values)
    return best[groups].astype(np.float32)


@dataclass(frozen=True)
class RankingModel:
    """A weight per feature plus a bias; ``scores`` are probabilities."""

    weights: Mapping[str, float]
    bias: float

    def vector(self) -> np.ndarray:
        return np.array([self.weights.get(name, 0.0) for name in FEATURES], dtype=np.float32)

    def logits(self, rows: np.ndarray) -> np.ndarray:
        return rows @ self.vector() + self.bias

    def scores(self, rows: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logits(rows)))


# Fitted by bench/tune_ranking.py on the RealTime QA dev weeks (see bench/README.md).
DEFAULT_MODEL = RankingModel(
    weights={
        "cos": 1.5321,
        "cos_gap": 0.4398,
        "bm25": 0.1856,
        "bm25_log": 0.9519,
        "article_cos": 0.3025,
        "article_bm25": 0.4948,
        "neighbour_cos": 0.0807,
        "log_chars": 0.3254,
        "lead": 0.6032,
        "age_future": 0.0713,
        "age_0_2": 0.7145,
        "age_2_7": 0.7945,
        "age_7_14": 0.2043,
        "age_14_30": 0.0647,
        "age_30_90": 0.0,
        "age_90_365": -0.3334,
        "undated": 0.0,
        "recent_hint_week": 0.4838,
    },
    bias=-6.2592,
)
