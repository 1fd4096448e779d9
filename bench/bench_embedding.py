"""Embedding throughput and question latency: torch against the int8 ONNX backend, one run.

Passages are the product's own (``ingest.split``) from the RealTime QA articles, read at run
time; questions are that data's quiz questions. Each measurement alternates the two backends,
repeats, and reports medians and their ratio, plus how close the vectors are (cosine).

    .venv/bin/python -m bench.bench_embedding [--passages 512] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from bench.realtimeqa import load_corpus, load_questions
from index.embedder import Embedder
from ingest.split import split_passages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=512)
    parser.add_argument("--questions", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    passages: list[str] = []
    for article in load_corpus():
        passages.extend(split_passages([p for p in article.text.splitlines() if p.strip()]))
        if len(passages) >= args.passages:
            break
    passages = passages[: args.passages]
    questions = [q.text for q in load_questions()[: args.questions]]
    backends = {name: Embedder(backend=name) for name in ("torch", "onnx")}
    for embedder in backends.values():  # warm up
        embedder.embed(passages[:64])

    rates: dict[str, list[float]] = {name: [] for name in backends}
    vectors: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):
        for name, embedder in backends.items():
            started = time.perf_counter()
            vectors[name] = embedder.embed(passages)
            rates[name].append(len(passages) / (time.perf_counter() - started))
    query_ms: dict[str, list[float]] = {name: [] for name in backends}
    for question in questions:
        for name, embedder in backends.items():
            started = time.perf_counter()
            embedder.embed_query(question)
            query_ms[name].append((time.perf_counter() - started) * 1000)

    cosines = (vectors["torch"] * vectors["onnx"]).sum(axis=1)
    chars = statistics.median(len(p) for p in passages)
    print(f"{len(passages)} passages (median {chars:.0f} chars), {len(questions)} questions")
    print(f"{'':8} {'passages/s':>11} {'question ms':>12}")
    for name in backends:
        rate, ms = statistics.median(rates[name]), statistics.median(query_ms[name])
        print(f"{name:8} {rate:11.1f} {ms:12.1f}")
    speedup = statistics.median(rates["onnx"]) / statistics.median(rates["torch"])
    faster = statistics.median(query_ms["torch"]) / statistics.median(query_ms["onnx"])
    print(f"onnx / torch: {speedup:.2f}x passages/s, questions {faster:.2f}x faster")
    print(f"cosine onnx vs torch: min {cosines.min():.4f}, median {np.median(cosines):.4f}")


if __name__ == "__main__":
    main()
