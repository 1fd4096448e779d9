"""The answerability model's signals, read off hand-made evidence."""

from __future__ import annotations

from index.answerability import AnswerabilityModel, Evidence, below_floors, features

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
