"""What matching followed stories costs per refresh as the corpus grows: one table.

    nice .venv/bin/python -m bench.bench_follow --sizes 20000 100000 --data-dir /tmp/follow-bench

The corpus is bench_scale's synthetic one (its vectors pre-filled in the embedding cache, so
nothing of it is embedded). At each size, five new synthetic articles are stored and indexed
(the real model embeds them), and 25 follows are matched against them as after a refresh
(``FollowService.stories``: the topic answered over the new articles alone); each topic is
also asked over the whole corpus (``Answerer.answer``, what /ask costs) for comparison. Medians
of one run; the ratio between sizes says whether matching grows with the corpus.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import time
from pathlib import Path

from bench.bench_scale import Writer, build
from bot.resources import Resources, resources_on
from bot.services.follow import FollowService
from bot.settings import get_settings
from ingest.pipeline import store_raw_articles

log = logging.getLogger("bench.bench_follow")

FOLLOWS = 25
NEW_ARTICLES = 5
REPEATS = 3


def measure(data_dir: Path, size: int) -> dict[str, float]:
    from index.embedder import Embedder

    model = Embedder().name
    build(data_dir, size, model)
    settings = get_settings(_env_file=None, data_dir=data_dir)
    with asyncio.Runner() as runner, resources_on(runner, settings) as resources:
        return _measure(resources)


def _measure(resources: Resources) -> dict[str, float]:
    engine = resources.engine
    resources.retriever.sync()
    run = time.time_ns()  # new articles in every run, even on a reused data directory
    writer = Writer(seed=run % 2**32)
    new = [writer.article(f"new-{run}-{i}.example/") for i in range(NEW_ARTICLES)]
    report = store_raw_articles(engine, new, f"new-{run}")
    resources.retriever.sync()
    ids = sorted(report.result.article_ids)
    assert len(ids) == NEW_ARTICLES, report
    # Half the topics use the new articles' own words (they match), half other words.
    topics = [" ".join(a.title.split()[:4]) for a in new] * (FOLLOWS // (2 * NEW_ARTICLES))
    topics += [writer.question() for _ in range(FOLLOWS - len(topics))]
    follows = FollowService(resources)
    answerer = resources.answerer
    match: list[float] = []
    ask: list[float] = []
    matched = 0
    for _ in range(REPEATS):
        for topic in topics:
            started = time.perf_counter()
            matched += bool(follows.stories(topic, None, ids))
            match.append(time.perf_counter() - started)
            started = time.perf_counter()
            answerer.answer(topic)
            ask.append(time.perf_counter() - started)
    return {
        "passages": float(resources.retriever.searchable_count()),
        "match_ms": statistics.median(match) * 1000,
        "ask_ms": statistics.median(ask) * 1000,
        "matched": matched / REPEATS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--data-dir", type=Path, required=True)
    options = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    rows = [measure(options.data_dir.resolve(), size) for size in sorted(options.sizes)]
    print("| passages | match one follow (median ms) | /ask over all (median ms) | matched |")
    print("|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['passages']:,.0f} | {row['match_ms']:.1f} | {row['ask_ms']:.1f} "
            f"| {row['matched']:.0f} of {FOLLOWS} |"
        )
    first, last = rows[0], rows[-1]
    print(
        f"\ncorpus x{last['passages'] / first['passages']:.1f}: match x"
        f"{last['match_ms'] / first['match_ms']:.2f}, /ask x{last['ask_ms'] / first['ask_ms']:.2f}"
    )


if __name__ == "__main__":
    main()
