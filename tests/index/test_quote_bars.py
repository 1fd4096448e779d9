"""Which quotes after the first an answer shows: only those relevant in their own right."""

from __future__ import annotations

from index.answer import Quote, QuoteBars, related, related_indices
from ingest.store import PassageRecord

BARS = QuoteBars(same_article=0.0, new_article=0.7, min_score=0.03)


def quote(passage_id: int, score: float) -> Quote:
    return Quote(passage_id, f"passage {passage_id}", "title", "outlet", None, None, score, "")


def record(passage_id: int, article_id: int) -> PassageRecord:
    return PassageRecord(
        passage_id, f"passage {passage_id}", article_id, 0, "title", "outlet", None, None, 1, 0
    )


def shown(quotes: list[tuple[float, int]]) -> list[int]:
    ranked = [quote(i, score) for i, (score, _) in enumerate(quotes)]
    records = [record(i, article) for i, (_, article) in enumerate(quotes)]
    return [q.passage_id for q in related(ranked, records, BARS)]


def test_another_article_needs_most_of_the_first_quotes_score() -> None:
    """A second story scoring half the first's is filler; one scoring 80% is shown."""
    assert shown([(0.2, 1), (0.1, 2), (0.16, 3)]) == [0, 2]


def test_more_of_the_quoted_article_needs_only_the_absolute_bar() -> None:
    """The same story's other passages are shown unless their score is negligible."""
    assert shown([(0.2, 1), (0.05, 1), (0.02, 1)]) == [0, 1]


def test_an_article_let_in_counts_as_quoted_for_its_next_passages() -> None:
    """Once a second article clears the bar, its further passages are judged as the same story."""
    assert shown([(0.2, 1), (0.15, 2), (0.04, 2), (0.04, 3)]) == [0, 1, 2]


def test_the_first_quote_is_always_kept() -> None:
    """The bars judge later quotes; whether to answer at all is the answerability model's call."""
    assert shown([(0.01, 1)]) == [0]


def test_the_tuners_rule_keeps_what_an_answer_shows() -> None:
    """bench/tune_bars applies ``related_indices`` to scores and articles: the same quotes."""
    quotes = [(0.2, 1), (0.1, 2), (0.16, 3), (0.04, 3), (0.01, 1)]
    indices = related_indices([s for s, _ in quotes], [a for _, a in quotes], BARS)
    assert indices == shown(quotes) == [0, 2, 3]
