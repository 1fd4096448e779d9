"""A bot replica hears the workers' notices and updates its index once per burst."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from sqlalchemy import Engine

from bot.jobs.follow import follow_index
from bot.jobs.queue import REBUILD, SYNC, libpq_url, notify_index

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
