"""Fit the answerability model and the quote bars on the natural dev questions.

    .venv/bin/python -m bench.tune_answers

Every dev question (sample corpus and RealTime QA articles, answerable and not) is answered
once with abstention and bars off; then

* a logistic regression on "the question is answerable" over ``answerability_features`` gives
  ``ANSWERABILITY_WEIGHTS``, and the threshold ``DEFAULT_MIN_SCORE`` is the highest that
  refuses at most 3% of the answerable dev questions;
* the coverage floor ``DEFAULT_MIN_COVERAGE`` is read off the table printed: the highest that
  refuses no answerable dev question;
* the bars (``SAME_ARTICLE_BAR``, ``NEW_ARTICLE_BAR``, ``MIN_QUOTE_SCORE``) are the grid point
  with the fewest shown quotes from unrelated articles among those that keep "right quote
  among the shown" within one question of its best.

Prints the constants for index/answer.py and the trade-off tables (dev, and test for the
record: nothing is fitted on it). See bench/README.md.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bench.eval_natural import PAGES, SHOWN, prepared
from bench.natural import NaturalQuestion, load_split
from bench.setup import single_threaded
from bench.tune_ranking import logistic
from index.answer import (
    ANSWERABILITY_WEIGHTS,
    NO_BARS,
    Answerer,
    Quote,
    answerability_features,
)
from index.embedder import Embedder

log = logging.getLogger(__name__)

MAX_REFUSED = 0.03
FEATURES = tuple(ANSWERABILITY_WEIGHTS)
MAX_QUOTE_CHARS = 1024


@dataclass
class Judged:
    question: NaturalQuestion
    features: np.ndarray
    quotes: list[Quote]
    article_ids: list[int]
    hit: list[bool]
    relevant: list[bool]


def collect(answerer: Answerer, questions: Sequence[NaturalQuestion]) -> list[Judged]:
    judged: list[Judged] = []
    for q in questions:
        answer = answerer.answer(q.text, k=SHOWN, extra=SHOWN * (PAGES - 1))
        quotes = answer.passages + answer.more
        if not quotes:
            continue
        features = answerability_features(quotes)
        judged.append(
            Judged(
                q,
                np.array([features[name] for name in FEATURES]),
                quotes,
                [hash((x.title, x.url)) for x in quotes],
                [len(x.text) <= MAX_QUOTE_CHARS and q.holds_answer(x.text) for x in quotes],
                [q.relevant(x.title) for x in quotes],
            )
        )
    return judged


def fit_answerability(judged: list[Judged]) -> tuple[np.ndarray, float]:
    x = np.vstack([j.features for j in judged])
    y = np.array([1.0 if j.question.answerable else 0.0 for j in judged])
    weights = logistic(x, y, l2=1e-3)
    p = probabilities(weights, x)
    answerable = np.sort(p[y == 1])
    allowed = math.floor(MAX_REFUSED * len(answerable))
    threshold = float(answerable[allowed]) if len(answerable) else 0.5
    return weights, math.floor(threshold * 1000) / 1000


def probabilities(weights: np.ndarray, x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(x @ weights[:-1] + weights[-1])))


def refusals(judged: list[Judged], p: np.ndarray, threshold: float) -> dict[str, tuple[int, int]]:
    out: dict[str, list[int]] = {"answerable": [0, 0], "near-topic": [0, 0], "off-topic": [0, 0]}
    for j, prob in zip(judged, p, strict=True):
        key = "answerable" if j.question.answerable else str(j.question.kind)
        out[key][0] += int(prob < threshold)
        out[key][1] += 1
    return {k: (v[0], v[1]) for k, v in out.items()}


def shown_with_bars(j: Judged, same: float, new: float, floor: float) -> list[int]:
    top = j.quotes[0].score
    kept = [0]
    quoted = {j.article_ids[0]}
    for i in range(1, len(j.quotes)):
        bar = same if j.article_ids[i] in quoted else new
        if j.quotes[i].score >= max(floor, bar * top):
            kept.append(i)
            quoted.add(j.article_ids[i])
    return kept


def bar_outcome(judged: list[Judged], same: float, new: float, floor: float) -> tuple[int, ...]:
    """(right among shown, shown, unrelated shown, more, unrelated more) on answerable ones."""
    among = shown = unrelated = more = more_unrelated = 0
    for j in judged:
        if not j.question.answerable:
            continue
        kept = shown_with_bars(j, same, new, floor)
        first, rest = kept[:SHOWN], kept[SHOWN:]
        among += any(j.hit[i] for i in first)
        shown += len(first)
        unrelated += sum(not j.relevant[i] for i in first)
        more += len(rest)
        more_unrelated += sum(not j.relevant[i] for i in rest)
    return among, shown, unrelated, more, more_unrelated


def fit_bars(judged: list[Judged]) -> tuple[float, float, float]:
    grid = list(
        itertools.product(
            (0.0, 0.1, 0.2, 0.3, 0.4),
            (0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
            (0.0, 0.01, 0.02, 0.03),
        )
    )
    outcomes = {point: bar_outcome(judged, *point) for point in grid}
    best_among = max(o[0] for o in outcomes.values())
    fair = [p for p, o in outcomes.items() if o[0] >= best_among - 1]
    return min(fair, key=lambda p: (outcomes[p][2] / max(outcomes[p][1], 1), -outcomes[p][1]))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    embedder = Embedder()
    with prepared(embedder) as corpus:
        single_threaded()
        answerer = Answerer(
            corpus.engine, corpus.retriever, min_score=0.0, min_coverage=0.0, bars=NO_BARS
        )
        dev = collect(answerer, load_split("dev"))
        test = collect(answerer, load_split("test"))
    weights, threshold = fit_answerability(dev)
    same, new, floor = fit_bars(dev)
    named = {name: round(float(w), 4) for name, w in zip(FEATURES, weights, strict=False)}
    print(f"ANSWERABILITY_WEIGHTS = {named!r}")
    print(f"ANSWERABILITY_BIAS = {round(float(weights[-1]), 4)!r}")
    print(f"DEFAULT_MIN_SCORE = {threshold!r}")
    print(f"SAME_ARTICLE_BAR = {same!r}\nNEW_ARTICLE_BAR = {new!r}\nMIN_QUOTE_SCORE = {floor!r}")
    print("\nAnswerability threshold against refusals (refused / asked):")
    print(
        "| min_score | dev answerable | dev near-topic | dev off-topic "
        "| test answerable | test near-topic | test off-topic |"
    )
    print("|---|---|---|---|---|---|---|")
    p_dev = probabilities(weights, np.vstack([j.features for j in dev]))
    p_test = probabilities(weights, np.vstack([j.features for j in test]))
    for t in sorted({0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, threshold}):
        cells = []
        for judged, p in ((dev, p_dev), (test, p_test)):
            for refused, asked in refusals(judged, p, t).values():
                cells.append(f"{refused}/{asked} ({100 * refused / max(asked, 1):.0f}%)")
        mark = f"**{t:.3f}**" if t == threshold else f"{t:.3f}"
        print(f"| {mark} | " + " | ".join(cells) + " |")
    print("\nCoverage floor (min_coverage) alone, refused on dev: answerable / unanswerable:")
    for floor_ in (0.1, 0.15, 0.2, 0.25, 0.3, 0.4):
        low = [j for j in dev if j.features[FEATURES.index("top_coverage")] < floor_]
        answerable = sum(j.question.answerable for j in low)
        print(f"  {floor_:.2f}: {answerable} / {len(low) - answerable}")
    print("\nQuote bars (answerable questions; among shown, shown, unrelated, more, unrelated):")
    for point in ((0.0, 0.0, 0.0), (same, new, floor), (0.2, 0.6, 0.0), (0.2, 0.8, 0.0)):
        print(f"  bars {point}: dev {bar_outcome(dev, *point)}, test {bar_outcome(test, *point)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
