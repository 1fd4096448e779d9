"""What fetching one source hands the refresh, and the deadline that fetching runs under."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Literal

from ingest.errors import NewsbotError
from ingest.fetch import FetchResult, SafeFetcher
from ingest.store import SourceUpdate

__all__ = ["Deadline", "FetchedSource", "SourceDeadline", "Status", "fetch_before"]

Status = Literal["ok", "not_modified", "error", "skipped"]


@dataclass(kw_only=True)
class FetchedSource(SourceUpdate):
    """What fetching a source produced: what to write (``SourceUpdate``) and how it went."""

    status: Status = "ok"
    entries_failed: int = 0
    problems: list[str] = field(default_factory=list)
    retry_after: float | None = None


class SourceDeadline(NewsbotError):
    """The source ran out of time before anything could be stored."""


@dataclass(frozen=True)
class Deadline:
    """When (event loop time) fetching one source must stop, and how long it was given."""

    at: float
    seconds: float

    @classmethod
    def starting_now(cls, seconds: float) -> Deadline:
        return cls(asyncio.get_running_loop().time() + seconds, seconds)

    def stopped(self, what: str) -> str:
        return f"stopped after {self.seconds:g} s: {what}"


async def fetch_before(
    deadline: Deadline, fetcher: SafeFetcher, url: str, **conditions: str | None
) -> FetchResult:
    """``fetcher.fetch`` that also ends at the source's deadline."""
    try:
        async with asyncio.timeout_at(deadline.at):
            return await fetcher.fetch(url, **conditions)
    except TimeoutError:
        # The fetcher reports its own timeouts as FetchTimeout: this one is the deadline's.
        raise SourceDeadline(deadline.stopped(f"{url} was still being read")) from None
