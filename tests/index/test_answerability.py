"""The answerability model's signals, read off hand-made evidence."""

from __future__ import annotations

from dataclasses import replace

from index.answerability import AnswerabilityModel, Evidence, below_floors, features
from index.embedder import Embedder

TRAM = "Council approves $1.18 billion Eastshore tram line"
ARTICLE = [
    "The council approved the Eastshore tram line on Tuesday. The line will cost $1.18 billion.",
    "Construction is scheduled to begin in September 2026, with 14 stops.",
]


def evidence(question: str, cosine: float = 0.5, coverage: float = 0.6) -> Evidence:
    return Evidence(
        question=question,
        scores=[0.3, 0.1],
        similarities=[cosine, cosine - 0.1],
        coverages=[coverage, coverage - 0.1],
        texts=ARTICLE,
        top_title=TRAM,
        top_article=ARTICLE,
        word_weights={},
    )


def test_a_fact_of_the_asked_kind_beside_the_asked_words_counts() -> None:
    """ "How much will the line cost?" meets "will cost $1.18 billion": the fact is there."""
    assert features(evidence("How much will the tram line cost?"))["typed_focus"] == 1.0


def test_an_amount_about_something_else_does_not() -> None:
    """The line's budget does not answer what a single ride costs."""
    signals = features(evidence("How much will a single ride on the tram cost?"))
    assert signals["typed_focus"] < 0.5


def test_no_sentence_of_the_asked_kind_scores_nothing() -> None:
    """Nobody is named in the story: "Who will run the trams?" finds no name to offer."""
    assert features(evidence("Who will operate the trams?"))["typed_focus"] == 0.0


def test_questions_that_ask_for_no_kind_of_fact_are_not_judged_by_it() -> None:
    """ "Tell me about the tram" wants no amount, date or name."""
    assert features(evidence("Tell me about the tram"))["typed_focus"] == 1.0


def test_only_the_signals_asked_for_are_computed() -> None:
    """The product computes what its model weighs, not the article-reading ones."""
    assert set(features(evidence("Tell me about the tram"), {"top_cosine"})) == {"top_cosine"}


def test_floors_refuse_whatever_the_model_says() -> None:
    """A cosine or key-word coverage under its floor refuses; above both, the model decides."""
    assert below_floors(features(evidence("What is the weather forecast?", cosine=0.2)))
    assert below_floors(features(evidence("When does the airport open?", coverage=0.1)))
    assert not below_floors(features(evidence("When does construction start?")))


def test_the_probability_rises_with_its_positive_weights() -> None:
    """A logistic model: more cosine, more chance of an answer."""
    model = AnswerabilityModel({"top_cosine": 3.0}, -1.5)
    low, high = (model.probability(features(evidence("Tram?", cosine=c))) for c in (0.2, 0.7))
    assert 0 < low < 0.5 < high < 1


def aligned(question: str, embedder: Embedder, article: list[str] = ARTICLE) -> float:
    """The late-interaction focus feature of ``question`` against ``article``."""
    given = replace(evidence(question), top_article=article, token_states=embedder.token_states)
    return features(given, {"aligned_focus"})["aligned_focus"]


def test_aligned_focus_tells_a_ride_from_the_line(embedder: Embedder) -> None:
    """The line's budget is beside "line" and "cost", not beside "single ride"."""
    line = aligned("How much will the tram line cost?", embedder)
    ride = aligned("How much will a single ride on the tram cost?", embedder)
    assert line > 0.8 > 0.5 > ride


def test_aligned_focus_meets_the_focus_in_other_words(embedder: Embedder) -> None:
    """ "Putting in" meets "paid for by", where exact words find only the bank's name."""
    article = ["The line will cost $1.18 billion, paid for by the state and Harbor Bank."]
    question = "How much is Harbor Bank putting in?"
    exact = features(replace(evidence(question), top_article=article), {"typed_focus"})
    assert aligned(question, embedder, article) > exact["typed_focus"]


def test_aligned_focus_without_a_fact_of_the_asked_kind_is_zero(embedder: Embedder) -> None:
    """No sentence names a person: "Who will operate the trams?" aligns with nothing."""
    assert aligned("Who will operate the trams?", embedder) == 0.0


def test_other_questions_need_every_focus_word_in_the_passages(embedder: Embedder) -> None:
    """ "Tell me about the tram" asks for the story itself; the tram's guitar lessons are not
    in it: the least aligned word decides."""
    assert aligned("Tell me about the tram", embedder) == 1.0
    assert aligned("Tell me about guitar lessons on the tram", embedder) < 0.5
