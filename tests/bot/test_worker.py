"""Workers and bot replicas on one PostgreSQL database (``NEWSBOT_JOBS=queue``), as real
processes: two ``newsbot run`` shards against the fake Discord, two ``newsbot worker``s, and a
local news site on loopback that counts every request it serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text

from ingest.db import open_engine, session_scope
from ingest.models import GLOBAL_GUILD, Article, Source
from ingest.sources import add_source
from tests.bot.conftest import (
    CHANNEL_A,
    GUILD_A,
    TOKEN,
    command,
    replying_to,
    stop_process,
    two_servers,
)
from tests.bot.news_site import HARBOUR, UPLANDS, NewsSite, news_site, slow_feed
from tests.bot.test_sharding import GUILD_C, identified, process_of
from tests.bot.test_sharding import bot_process as shard_process
from tests.conftest import postgres_schema_url
from tests.fakes.discord_server import FakeChannel, FakeDiscord, FakeGuild, RecordedRequest

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
MANAGE_CHANNELS = 1 << 4
MANAGE_GUILD = 1 << 5
NEWS_CHANNEL = CHANNEL_A + 20  # server A's channel for a follow's news
# The longest a new article may take to be answered by every bot (issue 15).
ANSWERED_WITHIN = 30.0
STALLED_SECONDS = "3"


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    """Servers A and B (shard 1) and C (shard 0), as in the sharding tests."""
    server_c = FakeGuild(id=GUILD_C, name="Marlow", channels=[FakeChannel(CHANNEL_A + (1 << 22))])
    servers = two_servers()
    servers[0].channels.append(FakeChannel(NEWS_CHANNEL, "island-news"))
    async with FakeDiscord(guilds=[*servers, server_c], token=TOKEN) as fake:
        yield fake
        assert not fake.errors, fake.errors


@pytest.fixture
def database() -> Iterator[str]:
    """A schema of its own on the local PostgreSQL server."""
    with postgres_schema_url() as url:
        yield url


def queue_settings(database: str, site: NewsSite) -> dict[str, str]:
    return {
        "NEWSBOT_DATABASE_URL": database,
        "NEWSBOT_JOBS": "queue",
        "NEWSBOT_WORKER_STALLED_SECONDS": STALLED_SECONDS,
        "NEWSBOT_FETCH_ALLOW_HOSTS": site.host_port,
        # Fetched once in a test, never again on schedule.
        "NEWSBOT_REFRESH_MINUTES": "600",
        # These tests check delivery, not abstention: answer with the best passage found.
        "NEWSBOT_MIN_SCORE": "0",
    }


def newsbot_env(settings: dict[str, str], data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSBOT_", "DISCORD_"))}
    env.update(PYTHONPATH=str(ROOT), NEWSBOT_DATA_DIR=str(data_dir), **settings)
    return env


@contextlib.contextmanager
def worker_process(settings: dict[str, str], folder: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``newsbot worker`` in a process of its own, logging to ``folder/worker.log``."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "worker.log", "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "worker"],
            env=newsbot_env(settings, folder / "data"),
            cwd=folder,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        stop_process(process)


def newsbot(settings: dict[str, str], folder: Path, *arguments: str) -> str:
    """One ``newsbot`` command, as an operator would run it; its output."""
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", *arguments],
        env=newsbot_env(settings, folder / "data"),
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


async def until_logged(log: Path, line: str, seconds: float = 300) -> None:
    for _ in range(int(seconds * 2)):
        if log.is_file() and line in log.read_text(errors="replace"):
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"{log.name} never said {line!r}:\n{log.read_text()[-3000:]}")


@contextlib.asynccontextmanager
async def both_shards(
    fake: FakeDiscord, settings: dict[str, str], folder: Path
) -> AsyncIterator[tuple[Path, Path]]:
    """Shards 0 and 1 as processes, each following the database; their logs."""
    # Shard 0 first: the first start stores the sample articles, for the workers to embed.
    with shard_process(fake, folder / "data-0", 0, **settings) as log_0:
        await identified(fake, 0, log_0)
        with shard_process(fake, folder / "data-1", 1, **settings) as log_1:
            await identified(fake, 1, log_1)
            for log in (log_0, log_1):
                await until_logged(log, "following the database")
            yield log_0, log_1


async def answer(fake: FakeDiscord, question: str, guild_id: int, fact: str) -> RecordedRequest:
    """The bot's reply to a mention in ``guild_id``, asked again until it quotes ``fact``."""
    deadline = asyncio.get_running_loop().time() + ANSWERED_WITHIN
    while True:
        asked = await fake.send_message_create(f"{fake.bot_mention} {question}", guild_id=guild_id)
        reply = await fake.wait_for(replying_to(asked), timeout=60)
        if fact in _quoted(reply):
            return reply
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no answer quoting {fact!r} in time; last: {_quoted(reply)}")
        await asyncio.sleep(1)


def _quoted(reply: RecordedRequest) -> str:
    embeds: list[dict[str, Any]] = reply.json.get("embeds") or []
    return " ".join(str(embed.get("description", "")) for embed in embeds)


def stored_twice(engine: Engine) -> list[tuple[str | None, int]]:
    """Links stored as more than one article (the sample corpus's articles have none)."""
    with session_scope(engine) as session:
        rows = session.execute(
            select(Article.url, func.count())
            .where(Article.url.is_not(None))
            .group_by(Article.url)
            .having(func.count() > 1)
        )
        return [(url, count) for url, count in rows]


def articles_of(engine: Engine, location: str) -> list[str]:
    with session_scope(engine) as session:
        query = select(Article.title).join(Source).where(Source.location == location)
        return sorted(session.scalars(query))


async def harbour_on_server_a(fake: FakeDiscord, site: NewsSite) -> tuple[str, dict[str, Any]]:
    """/source add of the site's harbour feed on server A (shard 1); its URL, what was shown."""
    harbour = site.url(site.feed_path("harbour"))
    shown = await command(
        fake,
        "source add",
        {"url": harbour, "name": "Harbour Gazette"},
        guild_id=GUILD_A,
        permissions=MANAGE_GUILD,
    )
    return harbour, shown


async def test_a_source_added_on_one_shard_is_fetched_once_and_answered_by_both(
    fake: FakeDiscord, database: str, tmp_path: Path
) -> None:
    """Two shards, two workers: /source add is fetched once, both bots quote the new news."""
    with news_site(harbour=HARBOUR, uplands=UPLANDS) as site:
        settings = queue_settings(database, site)
        with (
            worker_process(settings, tmp_path / "worker-1"),
            worker_process(settings, tmp_path / "worker-2"),
        ):
            async with both_shards(fake, settings, tmp_path) as (log_0, log_1):
                harbour, shown = await harbour_on_server_a(fake, site)
                # A global source, added from the command line: the workers' schedule finds it.
                uplands = site.url(site.feed_path("uplands"))
                newsbot(settings, tmp_path / "cli", "sources", "add", uplands)

                in_a = await answer(
                    fake, "How many berths will the Quillon ferry terminal have?", GUILD_A, "37"
                )
                on_shard_0 = await answer(
                    fake, "How big is the Fenwick observatory mirror?", GUILD_C, "2.4 metres"
                )
                on_shard_1 = await answer(
                    fake, "How big is the Fenwick observatory mirror?", GUILD_A, "2.4 metres"
                )
                # /reindex on shard 1: a worker runs it, and both bots swap in the rebuild.
                reindex = await fake.send_interaction(
                    "reindex", guild_id=GUILD_A, permissions=MANAGE_GUILD
                )
                reindexed = await fake.wait_for(
                    lambda r: (
                        r.interaction is reindex
                        and r.method == "PATCH"
                        and r.json["content"].startswith("Reindex")
                        and "done" in r.json["content"]
                    ),
                    timeout=120,
                )
                await until_logged(log_0, "index rebuilt from the database", 60)
                requests_before = dict(site.requests)
                # /source refresh: queued for the workers, answered in the command's message.
                refresh = await fake.send_interaction(
                    "source refresh", guild_id=GUILD_A, permissions=MANAGE_GUILD
                )
                await fake.wait_for_callback(refresh)
                refreshed = (await fake.wait_for_followup(refresh, timeout=120)).json

    assert "Harbour Gazette" in str(shown)
    # The sample corpus (34) and the three new stories; the cache had every vector.
    assert reindexed.json["content"].startswith(
        "Reindex done: 37 passages in the index (0 embedded"
    ), reindexed.json
    assert [process_of(r) for r in (in_a, on_shard_0, on_shard_1)] == [1, 0, 1]
    for name in ("harbour", "uplands"):
        assert requests_before[site.feed_path(name)] == 1, requests_before
        pages = [site.page_path(name, story) for story in site.feeds[name]]
        assert {requests_before[page] for page in pages} == {1}, requests_before
    # The refresh fetched this server's feed again (only it), and said what it found.
    assert site.requests[site.feed_path("harbour")] == 2
    assert site.requests[site.feed_path("uplands")] == 1
    assert "Harbour Gazette (#2, feed): 0 new, 0 updated" in refreshed["content"], refreshed
    engine = open_engine(database)
    try:
        assert articles_of(engine, harbour) == sorted(s.title for s in HARBOUR)
        assert articles_of(engine, uplands) == [UPLANDS[0].title]
        assert stored_twice(engine) == []
    finally:
        engine.dispose()
    for log in (log_0, log_1):  # the bots took the workers' vectors, embedding none
        assert "index updated from the database" in log.read_text()
        assert not re.search(r", [1-9]\d* embedded here", log.read_text())


def fetched_by(engine: Engine) -> list[str]:
    """The worker (host:pid) of each refresh done (not of those that found it done already)."""
    query = "SELECT worker FROM job_reports WHERE task = 'refresh' AND outcome IS NOT NULL"
    with engine.connect() as connection:
        return [str(name) for name in connection.execute(text(query)).scalars()]


def running_job_worker(engine: Engine) -> int | None:
    """The pid of the worker process running a refresh job, once one is running."""
    with engine.connect() as connection:
        name = connection.execute(
            text(
                "SELECT r.worker FROM procrastinate_jobs j JOIN job_reports r ON r.job_id = j.id"
                " WHERE j.status = 'doing' AND j.task_name = 'newsbot:refresh_source'"
            )
        ).scalar()
    return None if name is None else int(str(name).rsplit(":", 1)[1])


async def test_a_refresh_whose_worker_is_killed_is_finished_by_the_other(
    database: str, tmp_path: Path
) -> None:
    """kill -9 of the worker mid-refresh: the other one fetches the rest; all stored, once."""
    stories = slow_feed(8)
    with news_site(orchards=stories) as site:
        site.delay = 0.5  # two pages at a time: the refresh takes two seconds or more
        settings = queue_settings(database, site)
        engine = open_engine(database)
        try:
            with (
                worker_process(settings, tmp_path / "worker-1") as first,
                worker_process(settings, tmp_path / "worker-2") as second,
            ):
                for folder in ("worker-1", "worker-2"):
                    await until_logged(tmp_path / folder / "worker.log", "worker ready")
                orchards = site.url(site.feed_path("orchards"))
                newsbot(settings, tmp_path / "cli", "sources", "add", orchards)
                pid = None
                for _ in range(120):
                    pid = running_job_worker(engine)
                    if pid is not None and any(site.page_requests("orchards").values()):
                        break
                    await asyncio.sleep(0.25)
                assert pid in (first.pid, second.pid)
                os.kill(pid, signal.SIGKILL)
                killed_at = sum(site.page_requests("orchards").values())
                survivor = second if pid == first.pid else first
                for _ in range(240):
                    if len(articles_of(engine, orchards)) == len(stories):
                        break
                    await asyncio.sleep(0.25)
                assert survivor.poll() is None
            titles = articles_of(engine, orchards)
            twice = stored_twice(engine)
            with session_scope(engine) as session:
                source = session.scalars(select(Source).where(Source.location == orchards)).one()
        finally:
            engine.dispose()
    assert titles == sorted(s.title for s in stories)
    assert twice == []
    assert killed_at < len(stories)  # killed before it had read every page
    assert source.last_success_at is not None and source.last_error is None


async def test_two_workers_share_the_limit_of_two_requests_at_once_per_host(
    database: str, tmp_path: Path
) -> None:
    """Two feeds of one site, refreshed by two workers at once: never over 2 requests at once."""
    with news_site(east=slow_feed(6), west=slow_feed(6)) as site:
        site.delay = 0.5
        # One job at a time each: the two refreshes run in the two processes.
        settings = queue_settings(database, site) | {"NEWSBOT_WORKER_CONCURRENCY": "1"}
        with (
            worker_process(settings, tmp_path / "worker-1"),
            worker_process(settings, tmp_path / "worker-2"),
        ):
            for folder in ("worker-1", "worker-2"):
                await until_logged(tmp_path / folder / "worker.log", "worker ready")
            # Both at once, so that the workers' schedule finds them due together.
            engine = open_engine(database)
            try:
                with session_scope(engine) as session:
                    for name in ("east", "west"):
                        add_source(session, site.url(site.feed_path(name)), name, GLOBAL_GUILD)
                for _ in range(240):
                    if len(refreshes := fetched_by(engine)) == 2:
                        break
                    await asyncio.sleep(0.25)
            finally:
                engine.dispose()
    assert len(set(refreshes)) == 2, refreshes  # one source each: both processes fetched
    assert 0 < site.max_in_flight <= 2


def posted_news(request: RecordedRequest) -> bool:
    """A message the bot sent in the follow's channel."""
    return request.method == "POST" and request.path == f"/channels/{NEWS_CHANNEL}/messages"


async def test_a_refresh_on_the_workers_schedule_is_posted_once_to_a_follow(
    fake: FakeDiscord, database: str, tmp_path: Path
) -> None:
    """Two shards, one worker: a scheduled refresh's matching article is posted once, by shard 0."""
    with news_site(harbour=HARBOUR) as site:
        settings = queue_settings(database, site)
        with worker_process(settings, tmp_path / "worker"):
            async with both_shards(fake, settings, tmp_path):
                # Server A is on shard 1: shard 1 answers the command, shard 0 posts the news.
                shown = await command(
                    fake,
                    "follow add",
                    {"topic": "the Quillon ferry terminal", "channel": NEWS_CHANNEL},
                    guild_id=GUILD_A,
                    permissions=MANAGE_CHANNELS,
                )
                # A global source from the command line: the workers' schedule fetches it.
                newsbot(
                    settings,
                    tmp_path / "cli",
                    "sources",
                    "add",
                    site.url(site.feed_path("harbour")),
                )
                posted = await fake.wait_for(posted_news, timeout=180)
                # Both bots have taken the refresh in (the notice that named the articles).
                await answer(
                    fake, "How many berths will the Quillon ferry terminal have?", GUILD_A, "37"
                )
                await answer(
                    fake, "How many berths will the Quillon ferry terminal have?", GUILD_C, "37"
                )
                sent = [r for r in fake.requests if posted_news(r)]

    assert str(shown["content"]).startswith("Following"), shown
    assert sent == [posted]
    assert process_of(posted) == 0
    assert "Quillon ferry terminal" in str(posted.json)


def refreshes_of(engine: Engine) -> list[tuple[str, str | None]]:
    """(worker, outcome) of each refresh job's report."""
    query = "SELECT worker, outcome FROM job_reports WHERE task = 'refresh'"
    with engine.connect() as connection:
        return [(str(w), o) for w, o in connection.execute(text(query))]


async def test_sigterm_stops_a_worker_cleanly_and_its_cut_off_refresh_is_finished_by_another(
    database: str, tmp_path: Path
) -> None:
    """SIGTERM mid-refresh: the worker exits 0 after its grace; the job runs again elsewhere."""
    stories = slow_feed(8)
    with news_site(orchards=stories) as site:
        site.delay = 2.0  # two pages at a time: eight seconds, far past the grace of 0.5 s
        settings = queue_settings(database, site) | {"NEWSBOT_WORKER_SHUTDOWN_SECONDS": "0.5"}
        engine = open_engine(database)
        try:
            with worker_process(settings, tmp_path / "worker-1") as first:
                await until_logged(tmp_path / "worker-1" / "worker.log", "worker ready")
                orchards = site.url(site.feed_path("orchards"))
                newsbot(settings, tmp_path / "cli", "sources", "add", orchards)
                for _ in range(120):
                    if running_job_worker(engine) == first.pid and any(
                        site.page_requests("orchards").values()
                    ):
                        break
                    await asyncio.sleep(0.25)
                first.send_signal(signal.SIGTERM)
                code = await asyncio.to_thread(first.wait, 60)
                cut_off_at = len(articles_of(engine, orchards))
                with worker_process(settings, tmp_path / "worker-2") as second:
                    await until_logged(tmp_path / "worker-2" / "worker.log", "worker ready")
                    for _ in range(480):  # until the job's outcome is written
                        if any(outcome for _, outcome in refreshes_of(engine)):
                            break
                        await asyncio.sleep(0.25)
                    titles = articles_of(engine, orchards)
                    twice = stored_twice(engine)
                    reports = refreshes_of(engine)
                    second_pid = second.pid
        finally:
            engine.dispose()
    log = (tmp_path / "worker-1" / "worker.log").read_text()
    assert code == 0, log[-3000:]
    assert "worker stopped" in log
    assert cut_off_at < len(stories)  # stopped before it had read every page
    assert titles == sorted(s.title for s in stories)
    assert twice == []
    # One job: cut off on the first worker, queued again and finished by the second.
    assert len(reports) == 1 and reports[0][0].endswith(f":{second_pid}"), reports
    assert reports[0][1] is not None


async def unquoted(fake: FakeDiscord, question: str, guild_id: int, fact: str) -> str:
    """The bot's answer in ``guild_id``, asked again until it no longer quotes ``fact``."""
    deadline = asyncio.get_running_loop().time() + ANSWERED_WITHIN
    while True:
        asked = await fake.send_message_create(f"{fake.bot_mention} {question}", guild_id=guild_id)
        quoted = _quoted(await fake.wait_for(replying_to(asked), timeout=60))
        if fact not in quoted:
            return quoted
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"still quoting {fact!r} after its source was removed: {quoted}")
        await asyncio.sleep(1)


def source_id_of(engine: Engine, location: str) -> int:
    with session_scope(engine) as session:
        return session.scalars(select(Source.id).where(Source.location == location)).one()


async def test_a_removed_source_is_quoted_by_neither_shard(
    fake: FakeDiscord, database: str, tmp_path: Path
) -> None:
    """/source remove on one shard, `sources remove` at a terminal: no bot quotes them after."""
    ferry = "How many berths will the Quillon ferry terminal have?"
    mirror = "How big is the Fenwick observatory mirror?"
    with news_site(harbour=HARBOUR, uplands=UPLANDS) as site:
        settings = queue_settings(database, site)
        engine = open_engine(database)
        try:
            with worker_process(settings, tmp_path / "worker"):
                async with both_shards(fake, settings, tmp_path):
                    harbour, _ = await harbour_on_server_a(fake, site)
                    uplands = site.url(site.feed_path("uplands"))
                    newsbot(settings, tmp_path / "cli", "sources", "add", uplands)
                    await answer(fake, ferry, GUILD_A, "37")
                    await answer(fake, mirror, GUILD_C, "2.4 metres")
                    await answer(fake, mirror, GUILD_A, "2.4 metres")

                    removed = await command(
                        fake,
                        "source remove",
                        {"source": source_id_of(engine, harbour)},
                        guild_id=GUILD_A,
                        permissions=MANAGE_GUILD,
                    )
                    after_ferry = await unquoted(fake, ferry, GUILD_A, "37")
                    # A global source, removed at a terminal: both shards stop quoting it.
                    said = newsbot(
                        settings,
                        tmp_path / "cli",
                        "sources",
                        "remove",
                        str(source_id_of(engine, uplands)),
                    )
                    on_shard_0 = await unquoted(fake, mirror, GUILD_C, "2.4 metres")
                    on_shard_1 = await unquoted(fake, mirror, GUILD_A, "2.4 metres")
        finally:
            engine.dispose()
    assert "Harbour Gazette" in str(removed), removed
    assert "every bot drops its passages" in said
    for quoted in (after_ferry, on_shard_0, on_shard_1):
        assert "Quillon" not in quoted and "Fenwick" not in quoted
