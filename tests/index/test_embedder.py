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


def test_token_states_are_unit_vectors_of_the_word_pieces(embedder: Embedder) -> None:
    """Late interaction reads each word piece: unit vectors, spans into the text, no specials."""
    text = "The tram fare rises on Monday."
    (states,) = embedder.token_states([text])
    assert len(states.vectors) == len(states.spans) >= 6
    assert np.allclose(np.linalg.norm(states.vectors, axis=1), 1.0, atol=1e-5)
    pieces = [text[start:end] for start, end in states.spans]
    assert pieces[:3] == ["The", "tram", "fare"] and pieces[-1] == "."


def test_the_same_word_in_a_related_context_aligns_best(embedder: Embedder) -> None:
    """A word's contextual vector is closest to the same word in another text about it."""
    question, passage = embedder.token_states(
        ["How much is the fare?", "Ash Valley Railways raised the fare for a single trip."]
    )
    fare = next(i for i, (s, e) in enumerate(question.spans) if (s, e) == (16, 20))
    similarities = passage.vectors @ question.vectors[fare]
    start, end = passage.spans[int(similarities.argmax())]
    assert "Ash Valley Railways raised the fare for a single trip."[start:end] == "fare"
