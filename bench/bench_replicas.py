"""Bot replicas on PostgreSQL (``NEWSBOT_JOBS=queue``): what a replica costs to start, and how
soon both replicas answer from a new article.

Real processes throughout: a synthetic corpus of ``--passages`` passages (bench_scale's text
and bag-of-words vectors, so nothing of it is embedded) is stored in SQLite and moved with
``newsbot migrate-to`` into a fresh PostgreSQL schema; one ``newsbot worker``; two ``newsbot
run`` shards against the fake Discord gateway; a local news site on loopback.

1. Start-up: shard 0 with an empty data directory, then shard 1 with another empty one (a
   second machine), then shard 1 again with shard 0's data directory (a second replica on the
   same machine, which finds a published index). Each: seconds from the process's start to its
   first answer to a mention, CPU seconds and peak RSS (VmHWM) at that moment.
2. Freshness: ``--articles`` times, a new story joins the feed, a refresh is queued, and both
   shards are asked about it (a mention each, again every 0.2 s) until they quote it. Latency:
   from the site serving the story's page to each shard's quoting answer; p50/p95 of each and
   of "both" (the later of the two).

    NEWSBOT_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        nice -n 10 .venv/bin/python -m bench.bench_replicas [--passages 20000] [--articles 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.bench_scale import build
from bot.jobs.queue import defer_refresh, open_queue
from bot.settings import Settings
from index.embedder import Embedder
from ingest.db import open_engine, session_scope
from ingest.models import GLOBAL_GUILD
from ingest.sources import add_source
from tests.bot.conftest import CHANNEL_A, GUILD_A, TOKEN, replying_to, two_servers
from tests.bot.news_site import NewsSite, Story, news_site
from tests.bot.test_sharding import GUILD_C, shard_popen
from tests.bot.test_worker import newsbot_env, queue_settings, worker_process
from tests.conftest import postgres_schema_url
from tests.fakes.discord_server import FakeChannel, FakeDiscord, FakeGuild

CHANNEL_C = CHANNEL_A + (1 << 22)
log = logging.getLogger(__name__)
ASK_EVERY = 0.2


def story(number: int) -> Story:
    return Story(
        f"bridge-{number}",
        f"The Velmar{number} bridge opens with {200 + number} lanes",
        (
            f"The Velmar{number} bridge opened on Monday with {200 + number} lanes, the"
            " regional transport office said, after four years of building work.",
            "Traffic on the old crossing is expected to fall by half within a month, the"
            " office's engineers told reporters at the opening.",
        ),
    )


def question(number: int) -> str:
    return f"How many lanes does the Velmar{number} bridge have?"


def fact(number: int) -> str:
    return f"{200 + number} lanes"


@dataclass
class Started:
    seconds: float
    cpu: float
    peak_rss_mb: float


def proc_stats(pid: int) -> tuple[float, float]:
    """(CPU seconds, peak RSS in MB) of a running process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return cpu, int(line.split()[1]) / 1024


def quoted(reply: Any) -> str:
    return " ".join(str(e.get("description", "")) for e in reply.json.get("embeds") or [])


async def ask(fake: FakeDiscord, text: str, guild_id: int) -> str:
    asked = await fake.send_message_create(f"{fake.bot_mention} {text}", guild_id=guild_id)
    return quoted(await fake.wait_for(replying_to(asked), timeout=120))


async def first_answer(
    fake: FakeDiscord, process: subprocess.Popen[bytes], guild_id: int, started: float
) -> Started:
    """Ask until the process answers (it connects once its index is ready)."""
    while True:
        if process.poll() is not None:
            raise SystemExit(f"the bot process exited with {process.returncode}")
        # Asked before it connects, or of the stopped process that held the shard: asked again.
        try:
            asked = await fake.send_message_create(
                f"{fake.bot_mention} {question(0)}", guild_id=guild_id
            )
            await fake.wait_for(replying_to(asked), timeout=2)
        except Exception as error:  # not connected yet (the fake says how): asked again
            log.debug("not answered yet: %s", error)
            await asyncio.sleep(0.5)
            continue
        seconds = time.monotonic() - started
        cpu, rss = proc_stats(process.pid)
        return Started(seconds, cpu, rss)


async def until_quoted(fake: FakeDiscord, number: int, guild_id: int) -> float:
    """time.monotonic() of the first answer in ``guild_id`` quoting story ``number``."""
    while True:
        if fact(number) in await ask(fake, question(number), guild_id):
            return time.monotonic()
        await asyncio.sleep(ASK_EVERY)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def measure(site: NewsSite, url: str, folder: Path, articles: int) -> None:
    settings = queue_settings(url, site) | {"NEWSBOT_LOG_LEVEL": "WARNING"}
    engine = open_engine(url)
    with session_scope(engine) as session:
        source = add_source(session, site.url(site.feed_path("live")), "Live", GLOBAL_GUILD)
        source.next_fetch_at = datetime.now(UTC) + timedelta(days=1)  # refreshed on demand
        source_id = source.id
    engine.dispose()
    server_c = FakeGuild(id=GUILD_C, name="Marlow", channels=[FakeChannel(CHANNEL_C)])
    async with FakeDiscord(guilds=[*two_servers(), server_c], token=TOKEN) as fake:
        with contextlib.ExitStack() as stack:
            stack.enter_context(
                worker_process(settings | {"NEWSBOT_LOG_LEVEL": "INFO"}, folder / "worker")
            )
            started = time.monotonic()
            first = stack.enter_context(
                shard_popen(fake, folder / "data-0", 0, folder / "shard-0.log", **settings)
            )
            one = await first_answer(fake, first, GUILD_C, started)
            print(f"replica 1 (empty data dir): {one}", flush=True)
            with contextlib.ExitStack() as second_stack:
                started = time.monotonic()
                second = second_stack.enter_context(
                    shard_popen(fake, folder / "data-1", 1, folder / "shard-1a.log", **settings)
                )
                two = await first_answer(fake, second, GUILD_A, started)
            print(f"replica 2 (empty data dir): {two}", flush=True)
            started = time.monotonic()
            second = stack.enter_context(
                shard_popen(fake, folder / "data-0", 1, folder / "shard-1b.log", **settings)
            )
            three = await first_answer(fake, second, GUILD_A, started)
            print(f"replica 2 (replica 1's data dir): {three}", flush=True)

            app_settings = Settings(database_url=url, jobs="queue", data_dir=folder / "bench")
            latencies: dict[str, list[float]] = {"shard 0": [], "shard 1": [], "both": []}
            bench_engine = open_engine(url)
            async with open_queue(app_settings, bench_engine) as queue:
                for number in range(1, articles + 1):
                    site.feeds["live"].append(story(number))
                    await defer_refresh(queue, source_id, force=True)
                    on_0, on_1 = await asyncio.gather(
                        until_quoted(fake, number, GUILD_C), until_quoted(fake, number, GUILD_A)
                    )
                    fetched = site.first_requested[site.page_path("live", story(number))]
                    latencies["shard 0"].append(on_0 - fetched)
                    latencies["shard 1"].append(on_1 - fetched)
                    latencies["both"].append(max(on_0, on_1) - fetched)
                    print(
                        f"article {number}: shard 0 {on_0 - fetched:.2f} s,"
                        f" shard 1 {on_1 - fetched:.2f} s",
                        flush=True,
                    )
            bench_engine.dispose()
    print("\n| start-up | to first answer | CPU | peak RSS |\n|---|---|---|---|")
    for name, run in (
        ("replica 1, empty data directory", one),
        ("replica 2, empty data directory (another machine)", two),
        ("replica 2, replica 1's data directory (same machine)", three),
    ):
        print(f"| {name} | {run.seconds:.1f} s | {run.cpu:.1f} s | {run.peak_rss_mb:.0f} MB |")
    print("\n| fetch → quoted | p50 | p95 | max |\n|---|---|---|---|")
    for name, values in latencies.items():
        print(
            f"| {name} | {statistics.median(values):.2f} s | {percentile(values, 0.95):.2f} s"
            f" | {max(values):.2f} s |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=20_000)
    parser.add_argument("--articles", type=int, default=20)
    args = parser.parse_args()
    if not os.environ.get("NEWSBOT_TEST_POSTGRES_URL"):
        raise SystemExit("set NEWSBOT_TEST_POSTGRES_URL to a PostgreSQL database to bench in")
    with tempfile.TemporaryDirectory(prefix="queue_") as name:
        folder = Path(name)
        began = time.perf_counter()
        build(folder / "corpus", args.passages, Embedder().name)
        print(f"corpus of {args.passages} passages built in {time.perf_counter() - began:.0f} s")
        with postgres_schema_url() as url, news_site(live=[story(0)]) as site:
            env = newsbot_env({}, folder / "corpus")
            began = time.perf_counter()
            moved = subprocess.run(
                [sys.executable, "-m", "bot.cli", "migrate-to", url, "--quiet"],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if moved.returncode != 0:
                raise SystemExit(moved.stderr)
            print(f"migrate-to: {time.perf_counter() - began:.1f} s: {moved.stdout.strip()}")
            asyncio.run(measure(site, url, folder, args.articles))


if __name__ == "__main__":
    main()
