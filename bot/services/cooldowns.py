"""How often one member (or server) may do something: asking, forcing a refresh."""

from __future__ import annotations

import time
from collections.abc import Callable

from ingest.errors import NewsbotError


class OnCooldown(NewsbotError):
    """Too soon after the last time; ``retry_after`` is in seconds."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(f"You can ask again in {max(1, round(retry_after))} s.")


class Cooldowns:
    """One timestamp per key (a member, a server): at most one hit every ``seconds``."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self._last: dict[int, float] = {}

    def hit(self, key: int) -> None:
        """Record a hit now, or raise :class:`OnCooldown` when it comes too soon."""
        if self.seconds <= 0:
            return
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.seconds:
            raise OnCooldown(self.seconds - (now - last))
        self._last[key] = now
        if len(self._last) > 10_000:  # forget keys whose cooldown is long over
            self._last = {k: t for k, t in self._last.items() if now - t < self.seconds}
