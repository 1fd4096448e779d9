"""Does the best of what search found answer the question? A calibrated probability.

A logistic model over what the first ranked passages show, fitted by
``bench/tune_answers.py`` on "is this question answerable" over the dev questions of both
benches (our natural questions and RealTime QA's), gives the probability that the question is
answerable; the bot abstains below ``DEFAULT_MIN_SCORE``. See bench/README.md for the
trade-off table and what each feature buys.

Most questions the bot should refuse are *near-topic*: the story is indexed, the fact asked
for is not ("How much will a single ride on the tram cost?" of a story giving the line's
budget). Cosine and key-word coverage cannot tell them apart, since the passages are about the
asked story; what can is whether the words that set the question apart from the story's
headline (its *focus*: "single ride") occur in the story at all, and whether a sentence of the
story holds the kind of fact asked for (a money amount) together with those words.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from index.answer_types import holds_fact, wanted_fact
from index.lexical import QUESTION_WORDS, tokenize
from ingest.split import split_sentences

ANSWERABILITY_DEPTH = 3
# Words that say little of what is asked and that answers put in other words ("who won" is
# answered by "beat", "when did it begin" by "started on"): never part of a question's focus.
GENERIC_WORDS = frozenset(
    tokenize(
        "won win wins winning begin began begun start started starts happen happening happened "
        "run runs running go going goes went gone take takes took taken make makes made get "
        "getting supposed we us you i me my our your people person man woman guy thing things "
        "long time times use used again now still ever far big world name called call old"
    )
)


@dataclass(frozen=True)
class Evidence:
    """What the model reads: the ranked passages' scores and the best article's text."""

    question: str
    scores: Sequence[float]  # ranking score of each ranked passage, best first
    similarities: Sequence[float]  # cosine to the question
    coverages: Sequence[float]  # idf-weighted share of the question's key words
    texts: Sequence[str]  # the ranked passages, as stored
    top_title: str
    top_article: Sequence[str]  # every passage of the best passage's article, in order
    word_weights: Mapping[str, float]  # idf of each stemmed question word


def _weighted_share(words: set[str], weights: Mapping[str, float], text: str) -> float:
    """The weighted share of ``words`` that ``text`` holds (1 when there are none)."""
    total = sum(weights.get(w, 1.0) for w in words)
    if total <= 0:
        return 1.0
    present = set(tokenize(text))
    return sum(weights.get(w, 1.0) for w in words if w in present) / total


def _sentences(texts: Sequence[str]) -> list[str]:
    return [s for text in texts for part in text.split("\n\n") for s in split_sentences(part)]


def features(evidence: Evidence) -> dict[str, float]:
    """Every signal the answerability model may weigh (see the module docstring)."""
    shown = ANSWERABILITY_DEPTH
    best = min(max(evidence.scores[0], 1e-6), 1 - 1e-6)
    key_words = set(tokenize(evidence.question)) - QUESTION_WORDS - GENERIC_WORDS
    focus = key_words - set(tokenize(evidence.top_title))
    weights = evidence.word_weights
    kind = wanted_fact(evidence.question)
    typed_share = 1.0
    if kind is not None:
        typed = [s for s in _sentences(evidence.top_article) if holds_fact(kind, s)]
        typed_share = max((_weighted_share(focus, weights, s) for s in typed), default=0.0)
    second = evidence.scores[1] if len(evidence.scores) > 1 else 0.0
    return {
        "top_logit": math.log(best / (1 - best)),
        "top_cosine": max(evidence.similarities[:shown]),
        "top_coverage": max(evidence.coverages[:shown]),
        "margin": evidence.scores[0] - second,
        "focus_passages": max(
            _weighted_share(focus, weights, text) for text in evidence.texts[:shown]
        ),
        "focus_article": _weighted_share(focus, weights, "\n".join(evidence.top_article)),
        "typed_focus": typed_share,
    }


@dataclass(frozen=True)
class AnswerabilityModel:
    """Logistic weights over ``features``; ``probability`` is the chance of an answer."""

    weights: Mapping[str, float]
    bias: float

    def probability(self, signals: Mapping[str, float]) -> float:
        """The chance that an answer is there, from ``features``' signals."""
        logit = self.bias + sum(w * signals[name] for name, w in self.weights.items())
        return 1.0 / (1.0 + math.exp(-logit))


# Fitted by bench/tune_answers.py (see bench/README.md); the threshold is the highest that
# refuses at most 3% of the answerable dev questions of both benches.
DEFAULT_MODEL = AnswerabilityModel(
    weights={"top_logit": -0.2505, "top_cosine": 3.5171, "top_coverage": 1.9103},
    bias=-2.522,
)
DEFAULT_MIN_SCORE = 0.539
# A floor on the best key-word coverage of the first passages: a question whose names the
# index has never seen ("the airport", in a city whose airport no article mentions) is
# refused however close the topic; the highest floor that refuses no answerable dev question.
DEFAULT_MIN_COVERAGE = 0.2
