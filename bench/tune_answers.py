"""Fit the answerability model on both benches' dev questions (the quote bars: bench/tune_bars.py).

    .venv/bin/python -m bench.tune_answers [--features a,b,c] [--boost aligned_focus]
        [--natural-only] [--reuse]

Every natural question (sample corpus and RealTime QA articles, answerable and not) and every
RealTime QA quiz question (answerable, and the unanswerable ones asked 91 days early) is
answered once with abstention and bars off; then

* a logistic regression on "the question is answerable" over the chosen features of
  ``index.answerability.features`` (natural dev and RealTime QA dev questions together), then
  the weight of ``--boost`` chosen for the most unanswerable dev questions refused at 3%
  answerable refused and the logit rescaled to stay calibrated, gives ``DEFAULT_MODEL``; the
  threshold ``DEFAULT_MIN_SCORE`` is the highest that refuses at most 3% of the answerable dev
  questions of either bench (``--natural-only``: the natural questions alone);
* the coverage floor ``DEFAULT_MIN_COVERAGE`` is read off the table printed: the highest that
  refuses no answerable dev question;

Prints the constants for index/answerability.py, an ablation (each
feature left out in turn) and the trade-off table (natural dev and test, RealTime QA dev and
held-out; nothing is fitted on test or held-out). See bench/README.md.
"""

from __future__ import annotations

import argparse
import logging
import math
import pickle
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from bench import setup
from bench.eval_natural import PAGES, SHOWN, prepared
from bench.natural import load_split
from bench.realtimeqa import contains_answer
from bench.setup import CACHE, single_threaded
from bench.tune_ranking import logistic
from index.answer import NO_BARS, Answerer, Quote
from index.answerability import DEFAULT_MODEL, below_floors
from index.embedder import Embedder
from index.search import SearchFilters

log = logging.getLogger(__name__)

MAX_REFUSED = 0.03
# The feature whose weight is chosen for the decision at 3% (``fit_answerability``).
BOOSTED = "aligned_focus"
# The answers of the last run, for refitting other feature sets without asking again.
JUDGED = CACHE / "answerability-judged.pickle"
MAX_QUOTE_CHARS = 1024
RTQA_K = 10
SETS = ("natural dev", "natural test", "RealTime QA dev", "RealTime QA held-out")
FITTED_ON = ("natural dev", "RealTime QA dev")
RTQA_KINDS = ("answerable", "shifted")
TRADE_OFF = (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8)


@dataclass
class Judged:
    """One question answered with abstention and bars off, and what a judge needs of it."""

    set: str
    answerable: bool
    kind: str  # "answerable", "near-topic", "off-topic" or "shifted" (RealTime QA)
    signals: dict[str, float]
    quotes: list[Quote] = field(default_factory=list)
    article_ids: list[int] = field(default_factory=list)
    hit: list[bool] = field(default_factory=list)
    relevant: list[bool] = field(default_factory=list)


def collect_natural(answerer: Answerer, split: str) -> list[Judged]:
    judged: list[Judged] = []
    for q in load_split(split):
        answer = answerer.answer(q.text, k=SHOWN, extra=SHOWN * (PAGES - 1))
        quotes = answer.passages + answer.more
        if not quotes:
            continue
        judged.append(
            Judged(
                f"natural {split}",
                q.answerable,
                "answerable" if q.answerable else str(q.kind),
                answer.signals,
                quotes,
                [hash((x.title, x.url)) for x in quotes],
                [len(x.text) <= MAX_QUOTE_CHARS and q.holds_answer(x.text) for x in quotes],
                [q.relevant(x.title) for x in quotes],
            )
        )
    return judged


def collect_realtimeqa() -> list[Judged]:
    """RealTime QA's answerable questions and its unanswerable ones (asked 91 days early)."""
    judged: list[Judged] = []
    with setup.prepared("all", None) as bench:
        single_threaded()
        answerer = Answerer(
            bench.corpus.engine,
            bench.corpus.retriever,
            0.0,
            min_coverage=0.0,
            min_cosine=0.0,
            bars=NO_BARS,
            all_signals=True,
        )
        asked = [(q, True) for q in bench.answerable] + [
            (u.shifted, False) for u in bench.unanswerable
        ]
        for question, answerable in asked:
            filters = SearchFilters(as_of=question.as_of)
            answer = answerer.answer(question.text, k=RTQA_K, filters=filters)
            if not answer.signals:
                continue
            name = "RealTime QA dev" if question.dev else "RealTime QA held-out"
            quotes = answer.passages
            hit = [
                len(x.text) <= MAX_QUOTE_CHARS and contains_answer(x.text, question.answer)
                for x in quotes
            ]
            kind = "answerable" if answerable else "shifted"
            articles = [hash((x.title, x.url)) for x in quotes]
            judged.append(Judged(name, answerable, kind, answer.signals, quotes, articles, hit))
    return judged


def design(judged: Sequence[Judged], names: Sequence[str]) -> np.ndarray:
    return np.array([[j.signals[n] for n in names] for j in judged], dtype=np.float64)


def probabilities(weights: np.ndarray, x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(x @ weights[:-1] + weights[-1])))


def fit_answerability(
    judged: Sequence[Judged], names: Sequence[str], boost: str | None = None
) -> tuple[np.ndarray, float]:
    """Weights fitted on the dev sets; the threshold refusing ≤ 3% answerable of each.

    ``boost`` (a feature, last in the returned weights): after the logistic fit, its weight is
    the one of ``BOOSTS`` that refuses the most unanswerable dev questions at that threshold
    (the share of each bench, averaged; the smallest weight on a tie). The likelihood fit
    weighs every question alike, but the decision is made at the low end, where the few
    answerable questions the features misread set the 3% threshold.
    """
    train = [j for j in judged if j.set in FITTED_ON]
    y = np.array([1.0 if j.answerable else 0.0 for j in train])
    # Each bench counts as much as the other, though RealTime QA has three times the questions.
    sizes = {name: sum(j.set == name for j in train) for name in FITTED_ON}
    sizes = {name: size for name, size in sizes.items() if size}  # --natural-only
    balance = np.array([len(train) / (len(sizes) * sizes[j.set]) for j in train])
    weights = logistic(design(train, names), y, l2=1e-3, sample_weights=balance)
    if boost is None:
        return weights, _threshold(train, names, weights)
    full = [*names, boost]
    best: tuple[float, np.ndarray, float] | None = None
    for weight in BOOSTS:
        candidate = np.concatenate([weights[:-1], [weight], weights[-1:]])
        threshold = _threshold(train, full, candidate)
        table = refusals(train, full, candidate, threshold)
        shares = []
        for name in FITTED_ON:
            un = [v for (s, k), v in table.items() if s == name and k != "answerable"]
            if un:
                shares.append(sum(v[0] for v in un) / max(sum(v[1] for v in un), 1))
        score = sum(shares) / max(len(shares), 1)
        if best is None or score > best[0] + 1e-9:
            best = (score, candidate, threshold)
    assert best is not None
    # The boost's weight is chosen for the decision, not the likelihood: scale the whole
    # logit once more (Platt) so that the probability is calibrated again on the same dev
    # questions. A monotone map: the same questions are refused, at its own threshold.
    logit = design(train, full) @ best[1][:-1] + best[1][-1]
    scale, shift = logistic(logit[:, None], y, l2=1e-3, sample_weights=balance)
    calibrated = np.concatenate([best[1][:-1] * scale, [best[1][-1] * scale + shift]])
    return calibrated, _threshold(train, full, calibrated)


# The boost weights tried (see ``fit_answerability``).
BOOSTS = (0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 16.0, 20.0)


def _threshold(train: Sequence[Judged], names: Sequence[str], weights: np.ndarray) -> float:
    """The highest probability threshold refusing at most 3% answerable dev of each bench."""
    thresholds = []
    for name in FITTED_ON:
        part = [j for j in train if j.set == name and j.answerable]
        if not part:
            continue
        p = np.sort(probabilities(weights, design(part, names)))
        thresholds.append(float(p[math.floor(MAX_REFUSED * len(p))]))
    threshold = min(thresholds, default=0.5)
    return math.floor(threshold * 1000) / 1000


def refusals(
    judged: Sequence[Judged], names: Sequence[str], weights: np.ndarray, threshold: float
) -> dict[tuple[str, str], tuple[int, int]]:
    """(set, kind) → (refused, asked) at this threshold, with the product's floors."""
    out: dict[tuple[str, str], list[int]] = {}
    p = probabilities(weights, design(judged, names)) if judged else np.zeros(0)
    for j, prob in zip(judged, p, strict=True):
        cell = out.setdefault((j.set, j.kind), [0, 0])
        cell[0] += int(prob < threshold or below_floors(j.signals))
        cell[1] += 1
    return {k: (v[0], v[1]) for k, v in out.items()}


def trade_off_table(
    judged: Sequence[Judged], names: Sequence[str], weights: np.ndarray, threshold: float
) -> str:
    kinds = [("answerable", "answerable"), ("near-topic", "near-topic"), ("off-topic", "off")]
    columns = [(s, k, f"{s.split()[-1]} {label}") for s in SETS[:2] for k, label in kinds]
    columns += [
        (s, k, f"RTQA {s.split()[-1]} {k}") for s in SETS[2:] for k in ("answerable", "shifted")
    ]
    lines = [
        "| min_score | " + " | ".join(c[2] for c in columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    for t in sorted({*TRADE_OFF, threshold}):
        table = refusals(judged, names, weights, t)
        cells = []
        for set_name, kind, _ in columns:
            refused, asked = table.get((set_name, kind), (0, 0))
            cells.append(f"{refused}/{asked} ({100 * refused / max(asked, 1):.0f}%)")
        mark = f"**{t:.3f}**" if t == threshold else f"{t:.3f}"
        lines.append(f"| {mark} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def at_three_percent(
    judged: Sequence[Judged], names: Sequence[str], boost: str | None = None
) -> str:
    """Unanswerable refused where ≤ 3% of answerable dev questions are: the ablation's score."""
    fitted = [n for n in names if n != boost]
    boosted = boost if boost in names else None
    weights, threshold = fit_answerability(judged, fitted, boosted)
    table = refusals(judged, [*fitted, *([boosted] if boosted else [])], weights, threshold)
    parts = []
    for set_name in SETS:
        ans = table.get((set_name, "answerable"), (0, 0))
        un = [v for (s, k), v in table.items() if s == set_name and k != "answerable"]
        refused, asked = sum(v[0] for v in un), sum(v[1] for v in un)
        parts.append(f"{set_name} {ans[0]}/{ans[1]} ans, {refused}/{asked} unans")
    return f"t={threshold:.3f}: " + "; ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--features",
        default=",".join(n for n in DEFAULT_MODEL.weights if n != BOOSTED),
        help="Comma-separated features of index.answerability.features to fit on.",
    )
    parser.add_argument(
        "--boost",
        default=BOOSTED,
        help="A feature whose weight is chosen for the refusals at 3%% (empty: none).",
    )
    parser.add_argument(
        "--reuse", action="store_true", help=f"Refit on the last run's answers ({JUDGED.name})."
    )
    parser.add_argument(
        "--natural-only",
        action="store_true",
        help="Fit on the natural questions alone (the RealTime QA cache is not built yet).",
    )
    args = parser.parse_args(argv)
    boost = args.boost or None
    names = [n for n in args.features.split(",") if n and n != boost]
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.reuse:
        judged: list[Judged] = pickle.loads(JUDGED.read_bytes())
    else:
        embedder = Embedder()
        with prepared(embedder) as corpus:
            single_threaded()
            answerer = Answerer(
                corpus.engine,
                corpus.retriever,
                min_score=0.0,
                min_coverage=0.0,
                min_cosine=0.0,
                bars=NO_BARS,
                all_signals=True,
            )
            judged = collect_natural(answerer, "dev") + collect_natural(answerer, "test")
        if not args.natural_only:
            judged += collect_realtimeqa()
        JUDGED.write_bytes(pickle.dumps(judged))
    weights, threshold = fit_answerability(judged, names, boost)
    names = [*names, *([boost] if boost else [])]
    named = {name: round(float(w), 4) for name, w in zip(names, weights, strict=False)}
    print(f"DEFAULT_MODEL = AnswerabilityModel(weights={named!r}, bias={weights[-1]:.4f})")
    print(f"DEFAULT_MIN_SCORE = {threshold!r}")
    print("\nAnswerability threshold against refusals (refused / asked):")
    print(trade_off_table(judged, names, weights, threshold))
    print("\nAblation (refitted without each feature; threshold at 3% answerable dev):")
    print(f"  all: {at_three_percent(judged, names, boost)}")
    for left_out in names:
        rest = [n for n in names if n != left_out]
        print(f"  without {left_out}: {at_three_percent(judged, rest, boost)}")
    dev = [j for j in judged if j.set in FITTED_ON]
    for signal in ("top_coverage", "top_cosine"):
        print(f"\nA floor on {signal} alone, refused on both dev sets: answerable / not:")
        for floor_ in (0.1, 0.15, 0.2, 0.22, 0.25, 0.3, 0.4):
            low = [j for j in dev if j.signals[signal] < floor_]
            answerable = sum(j.answerable for j in low)
            print(f"  {floor_:.2f}: {answerable} / {len(low) - answerable}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
