"""Ingest throughput on real text against the raw embedding rate, measured in one run.

RealTime QA articles (read at run time) go into a fresh data directory with ``newsbot ingest``
in its own process, end to end (reading, cleaning, splitting, storing, embedding, the index
build); then the same passages, read back from that database, are embedded alone by the
same backend, twice (each in a fresh process, after a warm-up), so that a change in the
machine's load shows.

    .venv/bin/python -m bench.bench_ingest --articles 500 --data-dir /tmp/ingest-bench
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.realtimeqa import load_corpus

RAW = """
import json, sys, time
from sqlalchemy import create_engine, text
from index.embedder import Embedder
engine = create_engine(sys.argv[1])
with engine.connect() as connection:
    passages = connection.execute(text("SELECT text FROM passages ORDER BY id")).scalars().all()
embedder = Embedder()
embedder.embed(passages[:64])  # warm up
started, cpu = time.perf_counter(), time.process_time()
embedder.embed(passages)
print(json.dumps({"passages": len(passages), "seconds": time.perf_counter() - started,
                  "cpu_s": time.process_time() - cpu}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=500)
    parser.add_argument("--data-dir", type=Path, required=True)
    options = parser.parse_args()
    data_dir = options.data_dir.resolve()
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    feed = data_dir / "articles.jsonl"
    with feed.open("w") as out:
        for article in load_corpus()[: options.articles]:
            record = {"title": article.title, "body": article.text, "url": article.url}
            if article.published:
                record["published_at"] = article.published.isoformat()
            out.write(json.dumps(record) + "\n")
    env = {**os.environ, "NEWSBOT_DATA_DIR": str(data_dir / "data")}
    env.pop("NEWSBOT_DATABASE_URL", None)
    url = f"sqlite:///{data_dir / 'data' / 'newsbot.db'}"
    started = time.perf_counter()
    ingest = subprocess.run(
        [sys.executable, "-m", "bot.cli", "ingest", str(feed), "--source", "rtqa", "--quiet"],
        env=env,
        capture_output=True,
        text=True,
    )
    ingest_s = time.perf_counter() - started
    if ingest.returncode != 0:
        raise SystemExit(f"newsbot ingest failed:\n{ingest.stderr}")
    raws = [_raw(url, env) for _ in range(2)]
    passages = raws[0]["passages"]
    raw_rate = statistics.mean(r["passages"] / r["seconds"] for r in raws)
    print(ingest.stdout.strip())
    print(f"\n| {options.articles} RealTime QA articles, {passages} passages | value |")
    print("|---|---|")
    print(f"| newsbot ingest, end to end (start-up included) | {ingest_s:.1f} s |")
    print(f"| ingest rate | {passages / ingest_s:.1f} passages/s |")
    for number, raw in enumerate(raws, 1):
        rate = raw["passages"] / raw["seconds"]
        print(f"| raw embedding, run {number} | {rate:.1f} passages/s ({raw['cpu_s']:.0f} s CPU) |")
    print(f"| ingest rate / raw embedding rate | {passages / ingest_s / raw_rate:.2f} |")


def _raw(url: str, env: dict[str, str]) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", RAW, url], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
