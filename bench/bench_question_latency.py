"""A question's model and FAISS time in a worker thread, as the bot answers, idle and busy.

First the whole answer, as ``/ask`` computes it (``Answerer.answer``, a page of 3 and two
more for "More passages"), for each natural question about the sample corpus, after the
model is loaded and the index built: the median is the question latency the bot promises
(under 100 ms). Then two measurements, each A against B in the same run (medians, and their
ratio):

- FAISS exact search of one question over ``--vectors`` random unit vectors, with FAISS's
  default threads against one thread (what ``VectorIndex.search`` uses);
- embedding one question while the same process embeds a batch job (a feed refresh, a
  ``/reindex``), waiting for the job's current batch (``--wait-for-batches``, as before
  2026-11-25) against not waiting (what ``Embedder.embed_query`` does now).

    .venv/bin/python -m bench.bench_question_latency [--vectors 70000] [--passages 1500]
        [--answers-only]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import faiss
import numpy as np

from bench.natural import load_split
from index.answer import Answerer
from index.embedder import Embedder
from index.search import Retriever
from index.vectors import Catalog, VectorIndex
from ingest.db import open_engine
from ingest.pipeline import ingest_paths
from ingest.sample import SAMPLE_CORPUS

QUESTIONS = [
    f"What did the council decide about the {topic} on Tuesday?"
    for topic in "bridge ferry budget library harbour school tram airport market museum".split()
]
PASSAGE = (
    "The harbour authority said on day {} that the lock gates would be replaced this summer, "
    "closing the dock to boats for six weeks from the middle of July, and that fishermen "
    "would be paid for the lost weeks."
)


def in_worker(job: Callable[[], float]) -> float:
    """Run ``job`` on a fresh thread, as ``asyncio.to_thread`` does for the bot."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(job).result()


def search_ms(index: VectorIndex, vectors: list[np.ndarray], one_thread: bool) -> float:
    def job() -> float:
        if not one_thread:
            faiss.omp_set_num_threads(os.cpu_count() or 1)
        times = []
        for _ in range(5):
            for vector in vectors:
                started = time.perf_counter()
                if one_thread:
                    index.search(vector, 100)
                else:
                    index.faiss.search(vector.reshape(1, -1), 100)
                times.append((time.perf_counter() - started) * 1000)
        return statistics.median(times)

    return in_worker(job)


def answer_ms(embedder: Embedder) -> tuple[float, int]:
    """Median time of a whole answer over the sample corpus, and how many were timed."""
    questions = [
        q.text for split in ("dev", "test") for q in load_split(split) if q.corpus == "sample"
    ]
    with tempfile.TemporaryDirectory(prefix="newsbot-latency-") as folder:
        engine = open_engine(f"sqlite:///{folder}/newsbot.db")
        ingest_paths(engine, [SAMPLE_CORPUS], "sample")
        retriever = Retriever(engine, embedder, Path(folder) / "index")
        retriever.sync()
        answerer = Answerer(engine, retriever)

        def job() -> float:
            answerer.answer(questions[0], k=3, extra=6)  # warm-up: lazy loads
            times: list[float] = []
            for question in questions:
                started = time.perf_counter()
                answerer.answer(question, k=3, extra=6)
                times.append((time.perf_counter() - started) * 1000)
            return statistics.median(times)

        try:
            return in_worker(job), len(questions)
        finally:
            engine.dispose()


def question_ms_during_batch(embedder: Embedder, passages: int, wait: bool) -> tuple[float, float]:
    """Median question time while a batch job runs, and the job's passages per second."""
    texts = [PASSAGE.format(day) for day in range(passages)]
    rate: list[float] = []

    def batch_job() -> None:
        started = time.perf_counter()
        embedder.embed(texts)
        rate.append(len(texts) / (time.perf_counter() - started))

    job = threading.Thread(target=batch_job)
    job.start()
    time.sleep(1.0)
    times: list[float] = []
    while job.is_alive():
        started = time.perf_counter()
        if wait:
            with embedder._batches:
                embedder.embed_query(QUESTIONS[len(times) % len(QUESTIONS)])
        else:
            embedder.embed_query(QUESTIONS[len(times) % len(QUESTIONS)])
        times.append((time.perf_counter() - started) * 1000)
        time.sleep(0.2)  # questions arrive now and then, not back to back
    job.join()
    return statistics.median(times), rate[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=70_000)
    parser.add_argument("--passages", type=int, default=1500)
    parser.add_argument("--answers-only", action="store_true", help="Time whole answers only.")
    args = parser.parse_args()

    embedder = Embedder()
    median, count = answer_ms(embedder)
    print(f"A whole answer (/ask: 3 quotes and two more pages), {count} sample questions:")
    print(f"  p50 {median:.0f} ms")
    if args.answers_only:
        return
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((args.vectors, embedder.dimension)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = VectorIndex(embedder.name, embedder.dimension)
    ids = np.arange(1, args.vectors + 1, dtype=np.int64)
    zeros = np.zeros(args.vectors, dtype=np.int64)
    index.add(vectors, Catalog(ids, zeros, zeros, zeros, zeros, zeros))
    queries = [embedder.embed_query(q) for q in QUESTIONS]

    default_threads = search_ms(index, queries, one_thread=False)
    one_thread = search_ms(index, queries, one_thread=True)
    print(f"FAISS search of one question over {args.vectors:,} vectors, worker thread:")
    print(f"  {os.cpu_count()} threads (FAISS's default): p50 {default_threads:.1f} ms")
    print(f"  one thread:                    p50 {one_thread:.1f} ms")
    print(f"  ratio: {default_threads / one_thread:.2f}x")

    waiting, rate_waiting = question_ms_during_batch(embedder, args.passages, wait=True)
    not_waiting, rate_not = question_ms_during_batch(embedder, args.passages, wait=False)
    print(f"Embedding a question while {args.passages} passages are embedded:")
    print(f"  waiting for the batch:  p50 {waiting:.0f} ms (batch job {rate_waiting:.0f}/s)")
    print(f"  not waiting:            p50 {not_waiting:.0f} ms (batch job {rate_not:.0f}/s)")
    print(f"  ratio: {waiting / not_waiting:.1f}x")


if __name__ == "__main__":
    main()
