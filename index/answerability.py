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
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from index.answer_types import holds_fact, wanted_fact
from index.embedder import TokenStates
from index.lexical import QUESTION_WORDS, TOKEN, tokenize
from ingest.split import split_sentences

ANSWERABILITY_DEPTH = 3
# Words that say little of what is asked and that answers put in other words ("who won" is
# answered by "beat", "when did it begin" by "started on"): never part of a question's focus.
GENERIC_WORDS = frozenset(
    tokenize(
        "won win wins winning begin began begun start started starts happen happening happened "
        "run runs running go going goes went gone take takes took taken make makes made get "
        "getting supposed we us you i me my our your people person man woman guy thing things "
        "long time times use used again now still ever far big world name called call old "
        "tell news update updates know anything"
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
    # The model's contextual word-piece vectors of texts (Embedder.token_states), for the
    # late-interaction feature; None: that feature falls back to exact words.
    token_states: Callable[[Sequence[str]], list[TokenStates]] | None = None


def _weighted_share(words: set[str], weights: Mapping[str, float], text: str) -> float:
    """The weighted share of ``words`` that ``text`` holds (1 when there are none)."""
    total = sum(weights.get(w, 1.0) for w in words)
    if total <= 0:
        return 1.0
    present = set(tokenize(text))
    return sum(weights.get(w, 1.0) for w in words if w in present) / total


def _sentences(texts: Sequence[str]) -> list[str]:
    return [s for text in texts for part in text.split("\n\n") for s in split_sentences(part)]


# Features read off the best passage's whole article, which costs a database read; features
# that weigh the question's focus words by idf; the signals the floors below read.
ARTICLE_FEATURES = frozenset({"focus_article", "typed_focus", "aligned_focus"})
FOCUS_FEATURES = frozenset({"focus_passages", "focus_article", "typed_focus", "aligned_focus"})
# The aligned focus reads at most this many sentences holding the asked kind of fact, those
# sharing most focus words first (each encoded alone, a few milliseconds of CPU apiece): a
# long story names dozens of people. 6 and 12 refuse the same natural dev and test questions.
MAX_TYPED_SENTENCES = 6
FLOOR_FEATURES = frozenset({"top_coverage", "top_cosine"})


def features(evidence: Evidence, names: Collection[str] | None = None) -> dict[str, float]:
    """The signals ``names`` (default: every one the model may weigh; see the docstring)."""
    shown = ANSWERABILITY_DEPTH
    best = min(max(evidence.scores[0], 1e-6), 1 - 1e-6)
    second = evidence.scores[1] if len(evidence.scores) > 1 else 0.0
    key_words = set(tokenize(evidence.question)) - QUESTION_WORDS - GENERIC_WORDS
    focus = key_words - set(tokenize(evidence.top_title))
    weights = evidence.word_weights
    signals: dict[str, Callable[[], float]] = {
        "top_logit": lambda: math.log(best / (1 - best)),
        "top_cosine": lambda: max(evidence.similarities[:shown]),
        "top_coverage": lambda: max(evidence.coverages[:shown]),
        "margin": lambda: evidence.scores[0] - second,
        "focus_passages": lambda: max(
            _weighted_share(focus, weights, text) for text in evidence.texts[:shown]
        ),
        "focus_article": lambda: _weighted_share(focus, weights, "\n".join(evidence.top_article)),
        "typed_focus": lambda: _typed_focus(evidence, focus),
        "aligned_focus": lambda: _aligned_focus(evidence, focus),
    }
    return {name: signal() for name, signal in signals.items() if names is None or name in names}


def _typed_focus(evidence: Evidence, focus: set[str]) -> float:
    """How much of the focus the best sentence holding the kind of fact asked for names."""
    kind = wanted_fact(evidence.question)
    if kind is None:
        return 1.0
    typed = [s for s in _sentences(evidence.top_article) if holds_fact(kind, s)]
    return max((_weighted_share(focus, evidence.word_weights, s) for s in typed), default=0.0)


def _aligned_focus(evidence: Evidence, focus: set[str]) -> float:
    """Whether what the question asks about is there, read late-interaction style (ColBERT's
    MaxSim): each focus word of the question meets its most similar word of a text, by the
    model's contextual vectors, which match a word in other words where exact words do not.

    A question asking for a kind of fact (an amount, a date, a name) is judged on the
    sentences of the top article that hold one, each encoded alone: the idf-weighted mean of
    its focus words' best cosines in the best such sentence ("a single ride ... cost" finds
    "ride" nowhere near an amount in a story that gives only the line's budget; 0 when no
    sentence holds such a fact). Any other question is judged on the first passage, encoded
    whole: its least aligned focus word ("the guitar" in a story on a concert hall; the first
    passage alone decides as well as the first three on natural dev, at a third of the cost).
    """
    kind = wanted_fact(evidence.question)
    typed: list[str] = []
    if kind is not None:
        typed = [s for s in _sentences(evidence.top_article) if holds_fact(kind, s)]
        if not typed:
            return 0.0
    if not focus:
        return 1.0
    if evidence.token_states is None:
        return _typed_focus(evidence, focus) if kind else 1.0
    words = [
        (word.start(), word.end(), stems[0])
        for word in TOKEN.finditer(evidence.question)
        if (stems := tokenize(word.group())) and stems[0] in focus
    ]
    if kind:
        # The sentences sharing most focus words first: a cap then drops the least likely.
        share = {s: _weighted_share(focus, evidence.word_weights, s) for s in typed}
        texts = sorted(typed, key=lambda s: -share[s])[:MAX_TYPED_SENTENCES]
    else:
        texts = list(evidence.texts[:1])
    question, *others = evidence.token_states([evidence.question, *texts])
    pieces = [
        np.flatnonzero((question.spans[:, 0] >= start) & (question.spans[:, 1] <= end))
        for start, end, _ in words
    ]
    kept = [(p, stem) for p, (_, _, stem) in zip(pieces, words, strict=True) if len(p)]
    if not kept:
        return 1.0
    per_text = np.array(
        [
            [aligned[p].mean() for p, _ in kept]
            for aligned in (
                (question.vectors @ other.vectors.T).max(axis=1)
                for other in others
                if len(other.vectors)
            )
        ]
    ).reshape(-1, len(kept))
    if not len(per_text):
        return 0.0
    if kind is None:
        return float(per_text.max(axis=0).min())
    weights = np.array([evidence.word_weights.get(stem, 1.0) for _, stem in kept])
    return float((per_text @ weights / weights.sum()).max())


@dataclass(frozen=True)
class AnswerabilityModel:
    """Logistic weights over ``features``; ``probability`` is the chance of an answer."""

    weights: Mapping[str, float]
    bias: float

    def probability(self, signals: Mapping[str, float]) -> float:
        """The chance that an answer is there, from ``features``' signals."""
        logit = self.bias + sum(w * signals[name] for name, w in self.weights.items())
        return 1.0 / (1.0 + math.exp(-logit))


# Fitted by bench/tune_answers.py: a logistic regression over the cosine and the key-word
# coverage, then the weight of the aligned focus chosen for the most unanswerable dev
# questions refused where at most 3% of the answerable ones are (the likelihood fit weighs
# every question alike, the decision sits at the low end), then the whole logit rescaled
# (Platt) so that the probability is calibrated again. The threshold is the highest that
# refuses at most 3% of the answerable dev questions of either bench. Fitted on the natural
# and RealTime QA dev questions together on 2026-12-01 (`python -m bench.tune_answers`);
# bench/README.md has the trade-off table and what each feature buys. The ranking's score is
# left out: RealTime QA questions carry a date and natural ones do not, so its recency part
# means different things in the two sets.
DEFAULT_MODEL = AnswerabilityModel(
    weights={"top_cosine": 0.8168, "top_coverage": 0.5768, "aligned_focus": 5.5092},
    bias=-1.5862,
)
DEFAULT_MIN_SCORE = 0.484
# Floors under which the bot refuses whatever the model says. Coverage: a question whose
# names the index has never seen ("the airport", in a city whose airport no article mentions)
# is refused however close the topic; 0.2 refuses no answerable natural dev question (2 of
# 362 RealTime QA dev ones). Cosine: a question about nothing indexed whose words happen to
# occur in a story ("what is the weather forecast for sunday", against the hosepipe ban);
# 0.22 is the highest that refuses no answerable dev question of either bench.
DEFAULT_MIN_COVERAGE = 0.2
DEFAULT_MIN_COSINE = 0.22


def below_floors(
    signals: Mapping[str, float],
    min_coverage: float = DEFAULT_MIN_COVERAGE,
    min_cosine: float = DEFAULT_MIN_COSINE,
) -> bool:
    """Whether the best passages are too far from the question to answer it at all."""
    return signals["top_coverage"] < min_coverage or signals["top_cosine"] < min_cosine
