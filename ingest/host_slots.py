"""The per-host politeness limit, shared by every worker through PostgreSQL advisory locks.

``SafeFetcher`` sends at most ``per_host_concurrency`` requests at once to one host, within one
process. Workers on several machines must share that limit: a request first takes one of the
host's slots, the session advisory lock ``(hash of the host, slot number)``, and holds it on
its own connection until the response is read. A worker that dies drops its connection, and
PostgreSQL releases its locks with it, so a slot is never lost.

Hand-written because no library offers a distributed semaphore on PostgreSQL that survives a
killed holder; advisory locks are the server's own tool for that.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Self

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

log = logging.getLogger(__name__)

# How long a request waits before trying the host's slots again when all are taken.
RETRY_SECONDS = 0.05
MAX_CONNECTIONS = 20


def host_key(host: str) -> int:
    """A stable signed 32-bit number for a host (the first key of its advisory locks)."""
    digest = hashlib.sha256(f"newsbot host:{host.lower()}".encode()).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


class AdvisoryHostSlots:
    """``async with AdvisoryHostSlots(conninfo, 2) as slots:`` then ``async with slots.slot(host)``.

    ``conninfo`` is a libpq URL (``postgresql://...``).
    """

    def __init__(self, conninfo: str, per_host: int, max_connections: int = MAX_CONNECTIONS):
        self.per_host = per_host
        self._pool = AsyncConnectionPool(
            conninfo,
            min_size=0,
            max_size=max_connections,
            open=False,
            kwargs={"autocommit": True},
        )

    async def __aenter__(self) -> Self:
        await self._pool.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._pool.close()

    @contextlib.asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        key = host_key(host)
        async with self._pool.connection() as connection:
            taken = await self._take(connection, key)
            try:
                yield
            finally:
                with contextlib.suppress(Exception):  # a lost connection released it already
                    await connection.execute("SELECT pg_advisory_unlock(%s, %s)", (key, taken))

    async def _take(self, connection: AsyncConnection[Any], key: int) -> int:
        waited = False
        while True:
            # Slots in a random order: waiters on several machines do not all queue on slot 0.
            for number in random.sample(range(self.per_host), self.per_host):
                cursor = await connection.execute(
                    "SELECT pg_try_advisory_lock(%s, %s)", (key, number)
                )
                row = await cursor.fetchone()
                if row and row[0]:
                    return number
            if not waited:
                log.debug("all %d slots of host key %d are taken; waiting", self.per_host, key)
                waited = True
            await asyncio.sleep(RETRY_SECONDS * random.uniform(0.5, 1.5))
