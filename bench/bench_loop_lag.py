"""Event-loop lag of the Discord bot while 20 members ask at once.

The real bot (real model, FAISS index of the sample corpus, SQLite) runs against the fake
Discord from the tests; 20 /ask interactions arrive together, and a probe task measures how
late the loop wakes it up (``asyncio.sleep(5 ms)``) until every answer has been sent. A
blocked loop shows up as lag, and as deferrals later than Discord's 3-second deadline.

    .venv/bin/python -m bench.bench_loop_lag [--questions 20] [--blocking]

``--blocking`` also runs the same questions on the loop itself (no worker threads), to show
what the lag would be if the bot answered inline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import re
import statistics
import tempfile
import time
from pathlib import Path

from bot.app import NewsBot
from bot.resources import Resources
from bot.services.ask import PAGES
from bot.settings import get_settings
from index.embedder import Embedder
from index.search import Retriever, SearchFilters
from ingest.db import open_engine
from ingest.fetch import SafeFetcher
from ingest.models import GLOBAL_GUILD
from ingest.pipeline import ingest_paths
from ingest.sample import SAMPLE_CORPUS
from tests.fakes.discord_server import FakeDiscord, FakeUser, run_client

QUESTIONS_FILE = Path(__file__).resolve().parent.parent / "tests/fixtures/sample_questions.md"
PROBE_INTERVAL = 0.005


def sample_questions(count: int) -> list[str]:
    found = re.findall(r"^Question: (.+)$", QUESTIONS_FILE.read_text(), flags=re.M)
    return [found[i % len(found)] for i in range(count)]


class LagProbe:
    """Sleeps ``interval`` over and over and records how much later than asked it woke."""

    def __init__(self, interval: float = PROBE_INTERVAL) -> None:
        self.interval = interval
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(self.interval)
            self.lags.append(loop.time() - start - self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def summary(name: str, lags: list[float]) -> str:
    ms = sorted(lag * 1000 for lag in lags)
    p95 = ms[int(0.95 * (len(ms) - 1))]
    return (
        f"{name}: median {statistics.median(ms):.1f} ms, p95 {p95:.1f} ms, "
        f"max {ms[-1]:.1f} ms over {len(ms)} samples"
    )


async def through_discord(context: Resources, questions: list[str]) -> None:
    users = [FakeUser(2_000_000_000_000_000_000 + i, f"member{i}") for i in range(len(questions))]
    async with FakeDiscord(users=users) as fake:
        bot = NewsBot(context, background=False)
        async with run_client(bot, fake):
            await asyncio.to_thread(context.retriever.live)  # what warm-up does at startup
            probe = LagProbe()
            probe.start()
            started = time.perf_counter()
            interactions = await asyncio.gather(
                *(
                    fake.send_interaction("ask", {"question": q}, user_id=u.id)
                    for q, u in zip(questions, users, strict=True)
                )
            )
            callbacks = await asyncio.gather(*(fake.wait_for_callback(i) for i in interactions))
            answers = await asyncio.gather(
                *(fake.wait_for_followup(i, timeout=120) for i in interactions)
            )
            elapsed = time.perf_counter() - started
            await probe.stop()
    deferrals = [
        c.received_at - i.dispatched_at for c, i in zip(callbacks, interactions, strict=True)
    ]
    print(summary(f"loop lag, {len(questions)} concurrent /ask via the fake Discord", probe.lags))
    print(
        f"deferral after dispatch: median {statistics.median(deferrals) * 1000:.1f} ms, "
        f"max {max(deferrals) * 1000:.1f} ms (Discord's deadline: 3000 ms)"
    )
    ok = sum(a.status == 200 for a in answers)
    print(f"all {ok}/{len(answers)} answers sent in {elapsed:.2f} s")


async def inline(context: Resources, questions: list[str]) -> None:
    """The same questions answered on the event loop, as a bot without threads would."""
    probe = LagProbe()
    probe.start()
    answerer = context.answerer
    per_page = context.settings.answer_passages
    started = time.perf_counter()
    for question in questions:
        await asyncio.sleep(PROBE_INTERVAL)  # let the probe run between two answers
        answerer.answer(
            question,
            k=per_page,
            filters=SearchFilters(guild_id=GLOBAL_GUILD),
            extra=per_page * (PAGES - 1),
        )
    elapsed = time.perf_counter() - started
    await probe.stop()
    print(summary("for comparison, answered inline on the loop", probe.lags))
    print(f"  ({len(questions)} answers in {elapsed:.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--blocking", action="store_true", help="also measure answering inline")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("discord").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as folder:
        settings = get_settings(_env_file=None, data_dir=Path(folder), ask_cooldown_seconds=0)
        engine = open_engine(settings.resolved_database_url)
        ingest_paths(engine, [SAMPLE_CORPUS], "sample", GLOBAL_GUILD)
        retriever = Retriever(
            engine,
            Embedder(settings.model, backend=settings.embedding_backend),
            settings.index_dir,
        )
        retriever.sync()
        questions = sample_questions(args.questions)

        async def measure() -> None:
            async with SafeFetcher(settings.fetch_policy()) as fetcher:
                context = Resources(settings, engine, fetcher, _retriever=retriever)
                await through_discord(context, questions)
                if args.blocking:
                    await inline(context, questions)

        asyncio.run(measure())
        engine.dispose()


if __name__ == "__main__":
    main()
