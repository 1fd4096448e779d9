"""Everything a RealTime QA run needs: corpus, questions, a fresh product data dir, baselines."""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import logging
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from pathlib import Path

from bench import datadir
from bench.realtimeqa import (
    DATA_DIR,
    AnswerFinder,
    CorpusArticle,
    Question,
    load_corpus,
    load_questions,
)
from bench.vector_cache import VectorCache
from index.embedder import Embedder

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "bench" / ".cache"
RESULTS = REPO / "bench" / "results"
# The ingest code that decides what the passages are: a change to any of it re-ingests.
INGEST_CODE = (
    "clean.py",
    "dates.py",
    "extract.py",
    "models.py",
    "pipeline.py",
    "split.py",
    "store.py",
)
# Unanswerable questions: a question asked this long before its own date, against the news
# the bot would have had then, when no article visible then contains the answer.
SHIFT = timedelta(days=91)
MAX_GRACE_DAYS = 3


@dataclass(frozen=True)
class Unanswerable:
    question: Question
    shifted: Question  # the same question, "asked" SHIFT earlier


@dataclass
class Bench:
    articles: list[CorpusArticle]
    answerable: list[Question]
    unanswerable: list[Unanswerable]
    no_answer_in_corpus: list[Question]
    corpus: datadir.ProductCorpus
    embedder: Embedder
    chunk_cache: VectorCache

    @cached_property
    def article_keys(self) -> set[str]:
        return {a.key for a in self.articles}


def chosen_rows(
    parser: argparse.ArgumentParser, value: str, known: Sequence[str], without_langchain: str
) -> list[str]:
    """The ``--rows`` asked for, refused at once (before any embedding) when unknown or when
    the LangChain row lacks its package; ``without_langchain`` is the rows to suggest then."""
    rows = [r for r in value.split(",") if r]
    unknown = set(rows) - set(known)
    if unknown:
        parser.error(f"unknown rows: {', '.join(sorted(unknown))}")
    if "langchain" in rows and importlib.util.find_spec("langchain_text_splitters") is None:
        parser.error(
            "the LangChain row needs the bench extra: .venv/bin/pip install -e '.[bench]' "
            f"(or leave it out: --rows {without_langchain})"
        )
    return rows


def bench_logging() -> None:
    """INFO progress lines, without the libraries' own chatter."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("sentence_transformers", "transformers", "faiss", "bm25s"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def single_threaded() -> None:
    """One thread for each question's model call and search, as a shared two-core box wants.

    With two threads per call, a question waits for cores other jobs hold: 150 ms instead of
    15 ms for one query embedding, measured while another process embedded text.
    """
    import faiss
    import torch

    faiss.omp_set_num_threads(1)
    torch.set_num_threads(1)


def select_weeks(questions: list[Question], weeks: str) -> list[Question]:
    if weeks == "dev":
        return [q for q in questions if q.dev]
    if weeks == "heldout":
        return [q for q in questions if not q.dev]
    return questions


def _fingerprint(articles: list[CorpusArticle], with_code: bool) -> str:
    """A hash of the corpus, and of the ingest code too when ``with_code``."""
    digest = hashlib.sha256()
    for article in sorted(articles, key=lambda a: a.key):
        digest.update(f"{article.key}\x1f{article.title}\x1f{article.published}\x1f".encode())
        digest.update(article.text.encode())
    for name in INGEST_CODE if with_code else ():
        path = REPO / "ingest" / name
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _split(
    questions: list[Question], articles: list[CorpusArticle], finder: AnswerFinder
) -> tuple[list[Question], list[Unanswerable], list[Question]]:
    answerable: list[Question] = []
    unanswerable: list[Unanswerable] = []
    missing: list[Question] = []
    for question in questions:
        holders = finder.holders(question.answer)
        if not holders:
            missing.append(question)
            continue
        answerable.append(question)
        shifted_day = question.day - SHIFT
        # Articles dated a little after the shifted date can be visible through the grace.
        latest = shifted_day + timedelta(days=MAX_GRACE_DAYS)
        dates = [articles[i].published for i in holders]
        if not any(day is None or day <= latest for day in dates):
            shifted = Question(
                question_id=f"{question.question_id}@-{SHIFT.days}d",
                week=question.week,
                day=shifted_day,
                text=question.text,
                answer=question.answer,
                evidence_urls=(),
            )
            unanswerable.append(Unanswerable(question, shifted))
    return answerable, unanswerable, missing


@contextmanager
def prepared(
    weeks: str, limit: int | None, reingest: bool = False, passage_target: int | None = None
) -> Iterator[Bench]:
    """Load the data and build the product's data directory in a temporary folder.

    ``passage_target`` is an experiment: ingest with another target passage size than the
    product's (``ingest.split.TARGET_PASSAGE_CHARS``).
    """
    CACHE.mkdir(parents=True, exist_ok=True)
    articles = load_corpus(DATA_DIR)
    questions = select_weeks(load_questions(DATA_DIR), weeks)
    finder = AnswerFinder(articles, CACHE / f"answers-{_fingerprint(articles, False)}.json")
    answerable, unanswerable, missing = _split(questions, articles, finder)
    finder.save()
    if limit is not None:
        answerable, unanswerable, missing = (
            answerable[:limit],
            unanswerable[:limit],
            missing[:limit],
        )
    log.info(
        "%s weeks: %d answerable questions, %d unanswerable (shifted), %d without answer text",
        weeks,
        len(answerable),
        len(unanswerable),
        len(missing),
    )
    embedder = Embedder()
    passages = VectorCache(CACHE / "passages.db")
    chunks = VectorCache(CACHE / "chunks.db")
    variant = f"-target{passage_target}" if passage_target else ""
    snapshot = CACHE / f"ingested-{_fingerprint(articles, True)}{variant}.db"
    if passage_target:
        import functools

        from ingest import split, store

        store.split_passages = functools.partial(split.split_passages, target_chars=passage_target)
    with tempfile.TemporaryDirectory(prefix="newsbot-realtimeqa-") as folder:
        data_dir = Path(folder)
        reuse = snapshot.is_file() and not reingest
        if reuse:
            log.info("reusing the ingest of identical data and code: %s", snapshot.name)
            shutil.copyfile(snapshot, data_dir / "newsbot.db")
        corpus = datadir.build(data_dir, articles, embedder, passages, ingest=not reuse)
        if not reuse:
            _snapshot(data_dir / "newsbot.db", snapshot)
        try:
            yield Bench(articles, answerable, unanswerable, missing, corpus, embedder, chunks)
        finally:
            corpus.engine.dispose()


def _snapshot(database: Path, target: Path) -> None:
    """A self-contained copy of a live SQLite database (its WAL folded in)."""
    partial = target.with_suffix(".partial")
    with sqlite3.connect(database) as source, sqlite3.connect(partial) as copy:
        source.backup(copy)
    partial.replace(target)
