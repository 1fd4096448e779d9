"""Retrieval on the five real seed articles (read at run time from ../shared/seeds)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import Engine

from index.answer import Answerer
from index.embedder import Embedder
from index.search import Retriever
from ingest.pipeline import ingest_paths
from tests.conftest import SEEDS

pytestmark = pytest.mark.slow

if not SEEDS.is_dir():
    # CI always has ../shared beside the clone: a silent skip there would hide a broken layout.
    if os.environ.get("CI"):
        pytest.fail(f"{SEEDS} is missing: CI runs the seed-article tests", pytrace=False)
    pytest.skip(
        f"{SEEDS} is missing: the seed-article tests read ../shared/seeds beside the repo",
        allow_module_level=True,
    )

# Our own questions about the seeds, each with words of the sentence that answers it.
QUESTIONS = [
    ("What did Yuri Ushakov say the ceasefire would give Ukraine?", "regroup and rearm"),
    ("How much of Luhansk Oblast did Russian forces control in late 2024?", "98.5%"),
    (
        "When did the new round of U.S.-Russian talks begin in Riyadh?",
        "began in Riyadh on March 24",
    ),
    ("Who leads Russia's delegation at the Istanbul talks?", "led by Vladimir Medinsky"),
    ("How many troops is Russia massing near the Sumy border?", "50,000 troops"),
    ("What did Malcolm Chalmers of RUSI say Russia would seek?", "Malcolm Chalmers"),
    ("How large was the prisoner exchange agreed in Istanbul?", "1,000-for-1,000"),
    (
        "What guarantees did Putin demand before accepting the ceasefire?",
        "will not mobilize troops",
    ),
    # The seeds never say "say": a question worded so is still answered (it once abstained).
    ("What did Ushakov say about the ceasefire?", "regroup and rearm"),
]


@pytest.fixture(scope="module")
def seeds_answerer(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Answerer:
    from ingest.db import open_engine

    folder = tmp_path_factory.mktemp("seeds")
    engine: Engine = open_engine(f"sqlite:///{folder / 'db.sqlite'}")
    ingest_paths(engine, [SEEDS], "seeds")
    retriever = Retriever(engine, embedder, folder / "index")
    retriever.sync()
    return Answerer(engine, retriever)


def test_answering_passage_is_first(seeds_answerer: Answerer) -> None:
    """The passage holding the answer is quoted first for 8 of 9 questions, top 3 for all."""
    ranks = []
    for question, words in QUESTIONS:
        answer = seeds_answerer.answer(question, k=3)
        assert not answer.abstained, question
        found = [i for i, quote in enumerate(answer.passages) if words in quote.text]
        assert found, question
        ranks.append(found[0])
    assert ranks.count(0) >= 8, ranks


def test_seed_noise_is_not_quoted(seeds_answerer: Answerer) -> None:
    """Author bios repeated across the outlet's articles never come back as answers."""
    answer = seeds_answerer.answer("Who is Olena Goncharova and where is she based?", k=5)
    assert all("Edmonton" not in q.text for q in answer.passages + answer.closest)


def test_seed_titles_skip_page_furniture(tmp_path: Path) -> None:
    """Seed files opening with "News Feed" get their real headline as title."""
    from ingest.extract import read_paths

    titles = [a.title for a in read_paths([SEEDS]).articles]
    assert "News Feed" not in titles and len(titles) == 5
