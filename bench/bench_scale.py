"""How newsbot holds up as the corpus grows: a synthetic corpus of N passages, one table.

    .venv/bin/python -m bench.bench_scale --passages 100000 --data-dir /tmp/scale-100k

The first run fills DIR through the product's own store (``ingest.store.store_articles``, in
big transactions) with synthetic articles of five passages each, and pre-fills the embedding
cache with a vector per passage drawn from a mixture fitted to real passage embeddings
(``bench/scale_vectors.py``: they cluster as real news does, which is what approximate search
depends on), so nothing of the corpus is embedded.
A later run reuses DIR. DIR stays an ordinary data directory: check any figure with

    NEWSBOT_DATA_DIR=DIR /usr/bin/time -v .venv/bin/newsbot ask "..."   (or stats, ingest)

Measured, each in its own process as a user runs it (wall time, peak RSS, bytes written):
``newsbot reindex``; ``newsbot ask`` (start-up to first answer); ``newsbot ingest`` of 20 new
articles (the real model embeds their passages); and in one process as the bot answers: load,
first answer, then question latency p50/p95/p99 after warm-up, and recall@10 of the live index
against exact search.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, func, select

from bench.scale_vectors import RealMixture, real_vectors
from ingest.db import default_database_url, open_engine, session_scope
from ingest.extract import RawArticle
from ingest.models import Passage

log = logging.getLogger("bench.bench_scale")

PASSAGES_PER_ARTICLE = 5
STORE_BATCH = 2000  # articles per transaction while building
SOURCES = 4
OUTLETS = [f"Outlet {chr(65 + i)}" for i in range(12)]
VOCABULARY = 40_000
DIMENSION = 384
SYLLABLES = "ka lo mi ren tas vu bel dor fin gal hum jor kel lun mar nop pra qui sol tur".split()
FIRST_DAY = datetime(2025, 1, 1, tzinfo=UTC)
QUESTIONS = 200
WARM_UP = 20

# Runs a ``newsbot`` command and leaves its /proc/self/io in a file as it exits.
CLI_CHILD = """
import atexit, sys
report = sys.argv.pop(1)
def leave_io() -> None:
    with open("/proc/self/io") as io, open(report, "w") as out:
        out.write(io.read())
atexit.register(leave_io)
sys.argv[0] = "newsbot"
from bot.cli import main
main()
"""


@dataclass
class Run:
    seconds: float
    peak_rss_mb: float
    written_mb: float
    output: str
    cpu_s: float = 0.0  # user + system: on a shared machine, less noisy than wall time


def words_of(rng: np.random.Generator) -> list[str]:
    found: dict[str, None] = {}
    while len(found) < VOCABULARY:
        size = int(rng.integers(2, 5))
        found["".join(rng.choice(SYLLABLES, size))] = None
    return list(found)


class Writer:
    """Synthetic news text: Zipf-distributed words in sentences of 10-20 words."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.words = words_of(np.random.default_rng(0))  # the same vocabulary in every run
        ranks = np.arange(1, len(self.words) + 1, dtype=np.float64)
        weights = 1 / (ranks + 20)
        self.cumulative = np.cumsum(weights / weights.sum())

    def pick(self, count: int) -> np.ndarray:
        drawn = np.searchsorted(self.cumulative, self.rng.random(count))
        return np.minimum(drawn, len(self.words) - 1)

    def sentence(self) -> str:
        text = " ".join(self.words[i] for i in self.pick(int(self.rng.integers(10, 21))))
        return text[0].upper() + text[1:] + "."

    def paragraph(self) -> str:
        # Over TARGET_PASSAGE_CHARS (500): one paragraph makes one passage.
        sentences: list[str] = []
        while sum(len(s) + 1 for s in sentences) < 540:
            sentences.append(self.sentence())
        return " ".join(sentences)

    def article(self, key: str) -> RawArticle:
        day = FIRST_DAY + timedelta(minutes=int(self.rng.integers(0, 365 * 24 * 60)))
        title = self.sentence().rstrip(".")[:120]
        body = "\n\n".join(self.paragraph() for _ in range(PASSAGES_PER_ARTICLE))
        outlet = OUTLETS[int(self.rng.integers(0, len(OUTLETS)))]
        return RawArticle(title, body, key, f"https://{key}", outlet, day)

    def question(self) -> str:
        return f"What happened with {' '.join(self.words[i] for i in self.pick(4))}?"


def build(data_dir: Path, passages: int, model: str) -> float:
    """Store synthetic articles until ``data_dir`` holds ``passages``; cache their vectors."""
    from ingest.store import get_or_create_source, store_articles

    data_dir.mkdir(parents=True, exist_ok=True)
    engine = open_engine(default_database_url(data_dir))
    have = stored_passages(engine)
    started = time.perf_counter()
    writer = Writer(seed=have + 1)
    batch = 0
    while have < passages:
        count = min(STORE_BATCH, -(-(passages - have) // PASSAGES_PER_ARTICLE))
        name = f"synthetic-{batch % SOURCES}"
        articles = [writer.article(f"s{have}-{i}.example/{batch}") for i in range(count)]
        with session_scope(engine) as session:
            source = get_or_create_source(session, name, "local", f"local:{name}")
            result = store_articles(session, source, articles)
        have += result.passages_added
        batch += 1
        rate = have / (time.perf_counter() - started)
        log.info("stored %d/%d passages (%.0f/s)", have, passages, rate)
    fill_cache(engine, model)
    engine.dispose()
    return time.perf_counter() - started


def stored_passages(engine: Engine) -> int:
    with session_scope(engine) as session:
        return int(session.scalar(select(func.count(Passage.id))) or 0)


def fill_cache(engine: Engine, model: str) -> None:
    """Cached vectors for every stored passage the cache lacks, so no reindex embeds any."""
    from index.cache import cached_vectors, remember_vectors

    mixture: RealMixture | None = None
    last = 0
    while True:
        with session_scope(engine) as session:
            rows = session.execute(
                select(Passage.id, Passage.article_id, Passage.text_hash)
                .where(Passage.id > last)
                .order_by(Passage.id)
                .limit(50_000)
            ).all()
        if not rows:
            return
        last = rows[-1][0]
        known = cached_vectors(engine, model, [h for _, _, h in rows])
        todo = {h: article for _, article, h in rows if h not in known}
        if todo:
            mixture = mixture or RealMixture(real_vectors(model))
            rng = np.random.default_rng(last)
            made = mixture.for_articles(np.fromiter(todo.values(), np.int64), rng)
            remember_vectors(engine, model, dict(zip(todo, made, strict=True)))
        log.info("cached vectors up to passage %d", last)


def newsbot(data_dir: Path, *args: str) -> Run:
    """``newsbot ARGS`` in a fresh process against ``data_dir``."""
    env = {**os.environ, "NEWSBOT_DATA_DIR": str(data_dir)}
    env.pop("NEWSBOT_DATABASE_URL", None)
    with tempfile.NamedTemporaryFile("r", suffix=".io") as io:
        run = child(env, [sys.executable, "-c", CLI_CHILD, io.name, *args])
        fields = dict(line.split(": ") for line in io.read().splitlines() if ": " in line)
    run.written_mb = int(fields.get("write_bytes", 0)) / 2**20
    return run


def child(env: dict[str, str], command: list[str]) -> Run:
    """Run ``command``; its wall time, peak RSS and output."""
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        output = out.read().decode(errors="replace")
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command[3:])} failed:\n{output}")
    cpu = usage.ru_utime + usage.ru_stime
    return Run(seconds, usage.ru_maxrss / 1024, 0.0, output, cpu)


def answering(data_dir: Path) -> dict[str, float]:
    """In this process, as the bot: load, first answer, latency after warm-up, recall@10,
    then latency while a reindex runs (started as /reindex starts it)."""
    import resource

    from bot.resources import resources_on
    from bot.settings import get_settings

    os.environ["NEWSBOT_DATA_DIR"] = str(data_dir)
    os.environ.pop("NEWSBOT_DATABASE_URL", None)
    writer = Writer(seed=12345)
    questions = [writer.question() for _ in range(QUESTIONS + WARM_UP + 1)]
    with asyncio.Runner() as runner, resources_on(runner, get_settings()) as context:
        started = time.perf_counter()
        retriever = context.retriever  # loads the model
        model_loaded = time.perf_counter()
        index = retriever.live()
        loaded = time.perf_counter() - model_loaded
        answerer = context.answerer
        answerer.answer(questions[0])
        first = time.perf_counter() - started
        for question in questions[1 : WARM_UP + 1]:
            answerer.answer(question)
        times = []
        cpu_started = time.process_time()
        for question in questions[WARM_UP + 1 :]:
            began = time.perf_counter()
            answerer.answer(question)
            times.append((time.perf_counter() - began) * 1000)
        cpu_ms = (time.process_time() - cpu_started) / len(times) * 1000
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before recall's copies
        log.info(
            "answering: p50 %.0f ms, %.0f ms CPU each, peak RSS %.0f MB",
            statistics.median(times),
            cpu_ms,
            peak,
        )
        recall = recall_at_10(index, retriever.embedder.name)
        during, reindex_s = runner.run(while_reindexing(context, questions[WARM_UP + 1 :]))
    cuts = statistics.quantiles(times, n=100)
    busy = statistics.quantiles(during, n=20) if len(during) > 1 else [float("nan")] * 19
    return {
        "load_s": loaded,
        "first_answer_s": first,
        "p50_ms": statistics.median(times),
        "p95_ms": cuts[94],
        "p99_ms": cuts[98],
        "cpu_ms": cpu_ms,
        "peak_rss_mb": peak,
        "recall_at_10": recall,
        "reindex_p50_ms": statistics.median(during) if during else float("nan"),
        "reindex_p95_ms": busy[18],
        "reindex_questions": len(during),
        "reindex_s": reindex_s,
    }


async def while_reindexing(context: object, questions: list[str]) -> tuple[list[float], float]:
    """Question latencies (ms) while a reindex runs, as the bot asks (in a worker thread)."""
    from bot.services.reindex import ReindexService

    answerer = context.answerer  # type: ignore[attr-defined]
    started = time.perf_counter()
    run = ReindexService(context).start()  # type: ignore[arg-type]
    times: list[float] = []
    while not run.done:
        question = questions[len(times) % len(questions)]
        began = time.perf_counter()
        await asyncio.to_thread(answerer.answer, question)
        times.append((time.perf_counter() - began) * 1000)
        await asyncio.sleep(0.05)  # a member asks now and then, not back to back
    await run.wait()
    return times, time.perf_counter() - started


def recall_at_10(index: object, model: str) -> float:
    """Share of exact search's top 10 that the live index finds, real passages as queries."""
    import faiss

    from index import vectors

    if len(index) == 0:  # type: ignore[arg-type]
        return float("nan")
    real = real_vectors(model)
    queries = real[np.random.default_rng(5).choice(len(real), min(len(real), 100), False)]
    exact = faiss.IndexFlatIP(index.dimension)  # type: ignore[attr-defined]
    exact.add(index.all_vectors())  # type: ignore[attr-defined]
    truth, _ = exact.search(queries, 10)
    found = np.stack([index.search(query, 10)[1] for query in queries])  # type: ignore[attr-defined]
    return vectors.recall_at_10(truth, found)


def disk_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passages", type=int, default=100_000)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument(
        "--index-type",
        choices=["auto", "exact", "ivf"],
        help="NEWSBOT_INDEX_TYPE for every step (default: the product's own choice)",
    )
    parser.add_argument("--answering", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.index_type:
        os.environ["NEWSBOT_INDEX_TYPE"] = options.index_type  # children inherit it
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    data_dir = options.data_dir.resolve()
    if options.answering:
        print(json.dumps(answering(data_dir)))
        return
    from index.embedder import Embedder

    model = Embedder().name
    built = build(data_dir, options.passages, model)
    rows: list[tuple[str, str]] = [("passages stored", f"{options.passages:,}")]
    rows.append(("build corpus (store + cache vectors)", f"{built:.0f} s"))
    reindex = newsbot(data_dir, "reindex", "--quiet")
    rows.append(("reindex from cache", _run(reindex)))
    index_dir = data_dir / "index"
    rows.append(("index on disk", f"{disk_mb(index_dir):.0f} MB"))
    from index.segments import read_manifest

    manifest = read_manifest(index_dir)
    rows.append(("vector search", manifest.describe() if manifest else "none"))
    ask = newsbot(data_dir, "ask", Writer(seed=7).question())
    rows.append(("CLI ask: start-up to first answer", _run(ask)))
    new = Writer(seed=int(time.time()))
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as batch:
        for i in range(20):
            raw = new.article(f"new-{time.time_ns()}-{i}.example/")
            record = {"title": raw.title, "body": raw.body, "url": raw.url, "source": raw.outlet}
            batch.write(json.dumps(record) + "\n")
    ingest = newsbot(data_dir, "ingest", batch.name, "--source", "bench-new", "--quiet")
    os.unlink(batch.name)
    rows.append(("ingest 20 new articles (embedding included)", _run(ingest)))
    rows.append(("  of which the index update", index_update(ingest.output)))
    rows.append(
        ("start-up sync with nothing new (`newsbot stats`)", _run(newsbot(data_dir, "stats")))
    )
    answer = child(
        {**os.environ},
        [sys.executable, "-m", "bench.bench_scale", "--answering", "--data-dir", str(data_dir)],
    )
    figures = json.loads(answer.output.strip().splitlines()[-1])
    rows.append(("in-process: load the index (model loaded)", f"{figures['load_s']:.1f} s"))
    rows.append(("in-process: start-up to first answer", f"{figures['first_answer_s']:.1f} s"))
    rows.append(
        (
            f"question latency p50/p95/p99 ({QUESTIONS} after {WARM_UP} warm-up)",
            f"{figures['p50_ms']:.0f} / {figures['p95_ms']:.0f} / {figures['p99_ms']:.0f} ms",
        )
    )
    rows.append(("question CPU time (user + system, mean)", f"{figures['cpu_ms']:.0f} ms"))
    rows.append(("peak RSS while answering", f"{figures['peak_rss_mb']:.0f} MB"))
    rows.append(
        (
            f"question latency p50/p95 during a reindex ({figures['reindex_questions']} asked)",
            f"{figures['reindex_p50_ms']:.0f} / {figures['reindex_p95_ms']:.0f} ms"
            f" (reindex {figures['reindex_s']:.0f} s)",
        )
    )
    rows.append(("recall@10 of the live index vs exact", f"{figures['recall_at_10']:.3f}"))
    db = data_dir / "newsbot.db"
    rows.append(("database size", f"{db.stat().st_size / 2**20:.0f} MB"))
    width = max(len(name) for name, _ in rows)
    print(f"\n| {'measure'.ljust(width)} | value |\n|{'-' * (width + 2)}|-------|")
    for name, value in rows:
        print(f"| {name.ljust(width)} | {value} |")


def index_update(output: str) -> str:
    """The CLI's index line: how long the update took and how it found what changed."""
    found = re.search(r"^index: .* in ([\d.]+)s, (.+)$", output, re.MULTILINE)
    return f"{found[1]} s, {found[2]}" if found else "not reported"


def _run(run: Run) -> str:
    return (
        f"{run.seconds:.1f} s ({run.cpu_s:.1f} s CPU), {run.peak_rss_mb:.0f} MB peak RSS, "
        f"{run.written_mb:.0f} MB written"
    )


if __name__ == "__main__":
    main()
