"""The packaged model: questions are embedded at once, even while a batch job runs."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from index.embedder import Embedder

PASSAGES = [
    f"The harbour authority said on day {day} that the lock gates would be replaced this "
    "summer, closing the dock to boats for six weeks."
    for day in range(200)
]
QUESTIONS = ["When will the lock gates be replaced?", "How long will the dock close?"]


def test_a_question_does_not_wait_for_a_batch_job(embedder: Embedder) -> None:
    """While a refresh holds the model for its batches, a question is still answered."""
    with embedder._batches, ThreadPoolExecutor(1) as pool:
        vector = pool.submit(embedder.embed_query, QUESTIONS[0]).result(timeout=30)
    assert vector.shape == (embedder.dimension,)
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-4


def test_questions_during_a_batch_job_get_the_vectors_they_get_alone(embedder: Embedder) -> None:
    """Embedding questions and passages at the same time changes neither's vectors."""
    alone_passages = embedder.embed(PASSAGES)
    alone_questions = [embedder.embed_query(q) for q in QUESTIONS]
    batch: list[np.ndarray] = []
    job = threading.Thread(target=lambda: batch.append(embedder.embed(PASSAGES, batch_size=16)))
    job.start()
    during: list[list[np.ndarray]] = []
    while job.is_alive() or not during:
        during.append([embedder.embed_query(q) for q in QUESTIONS])
    job.join()
    assert np.allclose(batch[0], alone_passages, atol=1e-5)
    for vectors in during:
        assert np.allclose(vectors, alone_questions, atol=1e-5)
