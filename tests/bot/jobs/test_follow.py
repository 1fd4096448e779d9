"""A bot replica hears the workers' notices and updates its index once per burst."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from sqlalchemy import Engine

from bot.jobs.follow import follow_index
from bot.jobs.queue import (
    PAYLOAD_CHARS,
    REBUILD,
    SYNC,
    libpq_url,
    notify_index,
    stored_ids,
    stored_payloads,
)

pytestmark = pytest.mark.postgres


def notify_three_times(engine: Engine) -> None:
    for _ in range(3):
        notify_index(engine, SYNC)


async def test_notices_from_workers_update_the_index(postgres_engine: Engine) -> None:
    """A catch-up first, then one update per burst of notices, a rebuild when one asks."""
    updates: list[str] = []
    heard = asyncio.Event()
    listening = asyncio.Event()

    async def update(what: str) -> None:
        updates.append(what)
        heard.set()

    url = libpq_url(postgres_engine.url.render_as_string(hide_password=False))
    follower = asyncio.create_task(follow_index(url, update, listening=listening))
    try:
        await asyncio.wait_for(listening.wait(), 10)
        await asyncio.wait_for(heard.wait(), 10)
        heard.clear()
        await asyncio.to_thread(notify_three_times, postgres_engine)
        await asyncio.wait_for(heard.wait(), 10)
        heard.clear()
        await asyncio.to_thread(notify_index, postgres_engine, REBUILD)
        await asyncio.wait_for(heard.wait(), 10)
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
    assert updates == [SYNC, SYNC, REBUILD]


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
