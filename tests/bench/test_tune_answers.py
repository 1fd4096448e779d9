"""The answerability fit: the boosted feature's weight is chosen at the 3% operating point."""

from __future__ import annotations

import numpy as np

from bench.tune_answers import Judged, fit_answerability, probabilities, refusals


def judged(answerable: bool, cosine: float, aligned: float) -> Judged:
    kind = "answerable" if answerable else "near-topic"
    signals = {"top_cosine": cosine, "top_coverage": 1.2 * cosine, "aligned_focus": aligned}
    return Judged("natural dev", answerable, kind, signals)


def questions() -> list[Judged]:
    """Near-topic questions as close by cosine as the answerable ones, but not aligned."""
    rng = np.random.default_rng(7)
    cosines, aligned = rng.uniform(0.3, 0.8, 130), rng.uniform(0.3, 1, 130)
    aligned[100:] -= 0.3  # the 30 near-topic questions: as close, less aligned
    out = [judged(i < 100, c, a) for i, (c, a) in enumerate(zip(cosines, aligned, strict=True))]
    return out


def test_the_boost_refuses_what_the_cosine_cannot_tell_apart() -> None:
    """With the aligned focus boosted, most near-topic questions are refused at 3%."""
    data = questions()
    names = ["top_cosine", "top_coverage"]
    plain, plain_threshold = fit_answerability(data, names)
    boosted, threshold = fit_answerability(data, names, "aligned_focus")
    before = refusals(data, names, plain, plain_threshold)
    after = refusals(data, [*names, "aligned_focus"], boosted, threshold)
    assert after[("natural dev", "answerable")][0] <= 3
    assert after[("natural dev", "near-topic")][0] > 2 * before[("natural dev", "near-topic")][0]


def test_the_boosted_model_stays_calibrated() -> None:
    """Rescaled after the boost: the mean probability is near the share of answerable ones."""
    data = questions()
    names = ["top_cosine", "top_coverage", "aligned_focus"]
    weights, threshold = fit_answerability(data, names[:2], "aligned_focus")
    x = np.array([[j.signals[n] for n in names] for j in data])
    assert abs(probabilities(weights, x).mean() - 100 / 130) < 0.05
    assert 0.05 < threshold < 0.95
