"""The quote-bar tuner scores bars on both benches the way an answer applies them."""

from __future__ import annotations

import numpy as np

from bench.tune_bars import Asked, experiment, natural_outcome, product_rule, quiz_mrr
from index.answer import NO_BARS, Quote, QuoteBars

SHIPPED = QuoteBars(0.0, 0.7, 0.03)


def asked(
    scores: list[float],
    articles: list[int],
    hit: list[bool],
    relevant: list[bool],
    vectors: list[list[float]] | None = None,
) -> Asked:
    quotes = [
        Quote(i, f"passage {i}", f"title {a}", "outlet", None, None, s, "")
        for i, (s, a) in enumerate(zip(scores, articles, strict=True))
    ]
    unit = np.array(vectors or [[1.0, 0.0]] * len(scores), dtype=np.float32)
    return Asked("natural dev", "question", quotes, articles, hit, relevant, unit)


def test_a_quiz_answer_the_bars_drop_counts_as_missed() -> None:
    """Another article's answer at half the first quote's score is cut by the new-article bar."""
    quiz = [asked([0.4, 0.2], [1, 2], [False, True], [True, True])]
    assert quiz_mrr(quiz, product_rule(NO_BARS)) == 0.5
    assert quiz_mrr(quiz, product_rule(SHIPPED)) == 0.0


def test_unrelated_quotes_are_counted_among_those_shown() -> None:
    """Filler the bars let through counts against them; what they cut does not."""
    natural = [asked([0.4, 0.35, 0.1], [1, 2, 3], [True, False, False], [True, False, False])]
    assert natural_outcome(natural, product_rule(NO_BARS))[:3] == (1, 3, 2)
    assert natural_outcome(natural, product_rule(SHIPPED))[:3] == (1, 2, 1)


def test_the_story_rule_needs_another_article_close_to_the_first_quote() -> None:
    """An experiment beside the product's bars: a second story far from the first is cut."""
    natural = [asked([0.4, 0.35], [1, 2], [True, False], [True, False], [[1.0, 0.0], [0.0, 1.0]])]
    assert natural_outcome(natural, experiment(SHIPPED, story=0.5))[:3] == (1, 1, 0)
    assert natural_outcome(natural, experiment(SHIPPED))[:3] == (1, 2, 1)
