"""A bot replica hears the workers' notices and updates its index once per burst."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import Engine

from bot.jobs.follow import IndexFollower, follow_index
from bot.jobs.queue import (
    PAYLOAD_CHARS,
    REBUILD,
    SYNC,
    libpq_url,
    notify_index,
    stored_ids,
    stored_payloads,
)
from index.embedder import Embedder
from index.search import Retriever, SyncReport
from index.updates import FROM_LOG
from ingest.db import open_engine, session_scope
from ingest.pipeline import store_raw_articles
from ingest.store import passages_by_id
from tests.conftest import REPO, postgres_schema_url
from tests.index.test_segments import GaussianWordEmbedder, stories

pytestmark = pytest.mark.postgres


def notify_three_times(engine: Engine) -> None:
    for _ in range(3):
        notify_index(engine, SYNC)


@dataclass
class Heard:
    """What a running follower asked for, and a way to wait for its next update."""

    updates: list[str] = field(default_factory=list)
    event: asyncio.Event = field(default_factory=asyncio.Event)

    async def update(self, what: str) -> None:
        self.updates.append(what)
        self.event.set()

    async def next(self, timeout: float = 10) -> None:
        await asyncio.wait_for(self.event.wait(), timeout)
        self.event.clear()


@contextlib.asynccontextmanager
async def following(engine: Engine, **options: Any) -> AsyncIterator[Heard]:
    """A follower of ``engine``'s schema, listening and past its first catch-up."""
    heard = Heard()
    listening = asyncio.Event()
    url = libpq_url(engine.url.render_as_string(hide_password=False))
    follower = asyncio.create_task(follow_index(url, heard.update, listening=listening, **options))
    try:
        await asyncio.wait_for(listening.wait(), 10)
        await heard.next()
        yield heard
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower


async def test_notices_from_workers_update_the_index(postgres_engine: Engine) -> None:
    """A catch-up first, then one update per burst of notices, a rebuild when one asks."""
    async with following(postgres_engine) as heard:
        await asyncio.to_thread(notify_three_times, postgres_engine)
        await heard.next()
        await asyncio.to_thread(notify_index, postgres_engine, REBUILD)
        await heard.next()
    assert heard.updates == [SYNC, SYNC, REBUILD]


async def test_notices_in_another_schema_of_the_database_wake_no_replica(
    postgres_engine: Engine,
) -> None:
    """Two deployments in one PostgreSQL database: only the follower's own schema wakes it."""
    async with following(postgres_engine, fallback_every=3600) as heard:
        with postgres_schema_url() as other_url:
            other = open_engine(other_url)
            try:
                await asyncio.to_thread(notify_index, other, REBUILD)
            finally:
                other.dispose()
        with pytest.raises(TimeoutError):
            await heard.next(timeout=2)
        await asyncio.to_thread(notify_index, postgres_engine, REBUILD)
        await heard.next()
    assert heard.updates == [SYNC, REBUILD]


def test_stored_articles_are_named_in_notices_short_enough_for_notify() -> None:
    """Many ids take several notices, each under the payload limit; together they name all."""
    ids = list(range(1_000_000, 1_003_000))
    payloads = stored_payloads(ids)
    assert len(payloads) > 1
    assert all(len(payload) < PAYLOAD_CHARS for payload in payloads)
    assert [i for payload in payloads for i in stored_ids(payload)] == ids
    assert stored_ids(SYNC) == []


async def test_stored_articles_are_handed_over_after_the_update(postgres_engine: Engine) -> None:
    """A refresh's notice updates the index first, then hands its article ids over, once."""
    calls: list[object] = []
    heard = asyncio.Event()
    listening = asyncio.Event()

    async def update(what: str) -> None:
        calls.append(what)

    async def stored(article_ids: list[int]) -> None:
        calls.append(article_ids)
        heard.set()

    url = libpq_url(postgres_engine.url.render_as_string(hide_password=False))
    follower = asyncio.create_task(follow_index(url, update, listening=listening, stored=stored))
    try:
        await asyncio.wait_for(listening.wait(), 10)
        await asyncio.to_thread(notify_index, postgres_engine, SYNC, [7, 3])
        await asyncio.wait_for(heard.wait(), 10)
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
    assert calls[-2:] == [SYNC, [3, 7]]
    assert calls.count([3, 7]) == 1


# Another machine's worker: stores articles and caches their vectors, and tells no one.
SILENT_WORKER = """
import sys
from index.cache import remember_vectors
from ingest.db import open_engine, session_scope
from ingest.models import Passage
from ingest.pipeline import store_raw_articles
from sqlalchemy import select
from tests.index.test_segments import GaussianWordEmbedder, stories

url, seed, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3]
engine = open_engine(url)
ids = store_raw_articles(engine, stories(2, seed, prefix), "wire").result.passage_ids
embedder = GaussianWordEmbedder()
with session_scope(engine) as session:
    rows = session.execute(select(Passage.text_hash, Passage.text).where(Passage.id.in_(ids)))
    remember_vectors(engine, embedder.name, {h: embedder.embed([t])[0] for h, t in rows})
"""


def silent_worker(url: str, seed: int, prefix: str) -> None:
    subprocess.run(
        [sys.executable, "-c", SILENT_WORKER, url, str(seed), prefix],
        cwd=REPO,
        check=True,
        timeout=120,
    )


async def test_a_replica_catches_up_from_the_log_after_being_down_and_without_notices(
    postgres_engine: Engine, tmp_path: Path
) -> None:
    """Changes written while the replica was down, then changes nobody announced: the replica
    takes each in from the change log (six passages each time, not the corpus) and finds them."""
    store_raw_articles(postgres_engine, stories(30, 1), "ledger")
    embedder = cast(Embedder, GaussianWordEmbedder())
    Retriever(postgres_engine, embedder, tmp_path / "index").sync()  # cached and indexed
    replica = Retriever(postgres_engine, embedder, tmp_path / "index", embed_passages=False)
    database = postgres_engine.url.render_as_string(hide_password=False)
    await asyncio.to_thread(silent_worker, database, 2, "down")  # the replica is not listening
    index = IndexFollower(lambda: replica)
    reports: list[SyncReport] = []

    async def update(what: str) -> None:
        reports.append(await index.update(what))

    listening = asyncio.Event()
    follower = asyncio.create_task(
        follow_index(libpq_url(database), update, fallback_every=0.5, listening=listening)
    )
    try:
        await asyncio.wait_for(listening.wait(), 10)
        while not reports or reports[-1].total < 96:
            await asyncio.sleep(0.05)
        await asyncio.to_thread(silent_worker, database, 3, "quiet")  # and no NOTIFY
        while reports[-1].total < 102:
            await asyncio.sleep(0.05)
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
    applied = [(r.found_by, r.log_entries, r.added) for r in reports if r.log_entries]
    assert applied == [(FROM_LOG, 6, 6), (FROM_LOG, 6, 6)]
    for marker in ("down0p0", "quiet1p2"):  # a word only that new passage holds
        best = replica.search(marker, k=1)[0].passage_id
        with session_scope(postgres_engine) as session:
            assert marker in passages_by_id(session, [best])[best].text
