"""The ranking model's features: recency buckets, per-article signals, probabilities."""

from __future__ import annotations

import numpy as np

from index.ranking import (
    DAY,
    DEFAULT_MODEL,
    FEATURES,
    CandidateSignals,
    RankingModel,
    features,
)
from index.vectors import NO_DATE

NOW = 1_700_000_000.0


def candidates(**overrides: object) -> CandidateSignals:
    n = 3
    values: dict[str, object] = {
        "cos": np.array([0.5, 0.4, 0.3], dtype=np.float32),
        "dense_rank": np.array([0, 1, -1]),
        "bm25": np.array([4.0, 2.0, 0.0], dtype=np.float32),
        "bm25_best": 8.0,
        "bm25_rank": np.array([0, 1, -1]),
        "coverage": np.array([1.0, 0.5, 0.0], dtype=np.float32),
        "title_bm25": np.array([2.0, 2.0, 0.0], dtype=np.float32),
        "title_coverage": np.array([0.5, 0.5, 0.0], dtype=np.float32),
        "neighbour_cos": np.array([0.5, 0.4, 0.3], dtype=np.float32),
        "article_ids": np.array([1, 1, 2]),
        "published": np.array([NOW - DAY, NOW - 40 * DAY, NO_DATE], dtype=np.int64),
        "positions": np.zeros(n, dtype=np.int32),
        "chars": np.full(n, 600, dtype=np.int32),
        "now": NOW,
        "recent_hint": False,
    }
    values.update(overrides)
    return CandidateSignals(**values)  # type: ignore[arg-type]


def column(rows: np.ndarray, name: str) -> np.ndarray:
    return rows[:, FEATURES.index(name)]


def test_age_buckets_are_one_hot_and_undated_is_its_own() -> None:
    """Each dated passage falls in exactly one age bucket; undated ones in none."""
    rows = features(candidates())
    assert column(rows, "age_0_2").tolist() == [1, 0, 0]
    assert column(rows, "age_30_90").tolist() == [0, 1, 0]
    assert column(rows, "undated").tolist() == [0, 0, 1]


def test_dated_after_now_is_marked_future() -> None:
    """A passage dated inside the grace window after "now" gets the future flag."""
    published = np.array([NOW + 3600, NOW - DAY, NOW - DAY], dtype=np.int64)
    rows = features(candidates(published=published))
    assert column(rows, "age_future").tolist() == [1, 0, 0]


def test_bm25_is_relative_to_the_best_admitted_passage() -> None:
    """BM25 enters as a share of the best score, so questions of any length compare."""
    rows = features(candidates())
    assert column(rows, "bm25").tolist() == [0.5, 0.25, 0.0]


def test_article_signals_take_the_best_passage_of_the_article() -> None:
    """Passages of one article share its best cosine, and count its candidates."""
    rows = features(candidates())
    assert np.allclose(column(rows, "article_cos"), [0.5, 0.5, 0.3])
    assert np.allclose(column(rows, "article_mass"), np.log([2, 2, 1]))


def test_ranks_fade_with_position_and_vanish_when_missed() -> None:
    """The top hit of a list gets 1, the tenth 0.5, a passage the list missed 0."""
    rows = features(candidates(dense_rank=np.array([0, 10, -1])))
    assert np.allclose(column(rows, "dense_rank"), [1.0, 0.5, 0.0])


def test_recent_hint_marks_the_last_week_only() -> None:
    """ "This week" in the question flags passages of the last seven days."""
    rows = features(candidates(recent_hint=True))
    assert column(rows, "recent_hint_week").tolist() == [1, 0, 0]


def test_scores_are_probabilities_ordered_by_the_logit() -> None:
    """The model's scores lie in (0, 1) and rise with a positively weighted feature."""
    model = RankingModel(weights={"cos": 4.0}, bias=-2.0)
    scores = model.scores(features(candidates()))
    assert ((scores > 0) & (scores < 1)).all()
    assert scores[0] > scores[1] > scores[2]


def test_default_model_prefers_relevant_recent_passages() -> None:
    """With the shipped weights, the on-topic recent passage beats an older weaker one."""
    scores = DEFAULT_MODEL.scores(features(candidates()))
    assert scores[0] == scores.max()


def test_no_candidates_no_rows() -> None:
    """An empty candidate list gives an empty feature matrix."""
    empty = np.zeros(0, dtype=np.float32)
    none = np.zeros(0, dtype=np.int64)
    rows = features(
        candidates(
            cos=empty,
            dense_rank=none,
            bm25=empty,
            bm25_rank=none,
            coverage=empty,
            title_bm25=empty,
            title_coverage=empty,
            neighbour_cos=empty,
            article_ids=np.zeros(0, dtype=np.int64),
            published=np.zeros(0, dtype=np.int64),
            positions=np.zeros(0, dtype=np.int32),
            chars=np.zeros(0, dtype=np.int32),
        )
    )
    assert rows.shape == (0, len(FEATURES))
