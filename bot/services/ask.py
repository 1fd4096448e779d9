"""Answering questions for many users at once without blocking the bot's event loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from bot import limits
from bot.context import AppContext
from index.answer import Answer, Quote
from index.query import parse_since
from index.search import SearchFilters
from ingest.db import session_scope
from ingest.errors import InputError, NewsbotError
from ingest.sources import list_sources

# Pages of passages fetched with each answer, so "More passages" needs no second search.
PAGES = 3
# Answers computed at once: the model encodes one batch at a time anyway, and this leaves
# threads in the default pool for other work (source lists, database reads).
CONCURRENT_ANSWERS = 4


class OnCooldown(NewsbotError):
    """The member asked too recently; ``retry_after`` is in seconds."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(f"You can ask again in {max(1, round(retry_after))} s.")


class Cooldowns:
    """One timestamp per member: at most one question every ``seconds``."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self._last: dict[int, float] = {}

    def hit(self, user_id: int) -> None:
        """Record a question now, or raise :class:`OnCooldown` when it comes too soon."""
        if self.seconds <= 0:
            return
        now = self.clock()
        last = self._last.get(user_id)
        if last is not None and now - last < self.seconds:
            raise OnCooldown(self.seconds - (now - last))
        self._last[user_id] = now
        if len(self._last) > 10_000:  # forget members whose cooldown is long over
            self._last = {u: t for u, t in self._last.items() if now - t < self.seconds}


@dataclass(frozen=True)
class Scope:
    """What the member limited a question to: a source or outlet (as they named it), a start."""

    source: str | None = None
    since: datetime | None = None


@dataclass(frozen=True)
class AnswerPage:
    """One screenful of an answer: ``quotes`` are numbered from ``first_number``."""

    answer: Answer
    quotes: list[Quote]
    number: int
    count: int
    first_number: int
    scope: Scope = Scope()

    @property
    def is_last(self) -> bool:
        return self.number == self.count - 1


def paginate(answer: Answer, per_page: int, scope: Scope = Scope()) -> list[AnswerPage]:
    """The answer's passages (or, when it abstains, its closest ones) in pages of ``per_page``."""
    quotes = answer.closest if answer.abstained else answer.passages + answer.more
    if answer.abstained or not quotes:
        return [AnswerPage(answer, quotes, 0, 1, 1, scope)]
    chunks = [quotes[i : i + per_page] for i in range(0, len(quotes), per_page)]
    return [
        AnswerPage(answer, chunk, number, len(chunks), number * per_page + 1, scope)
        for number, chunk in enumerate(chunks)
    ]


class AskService:
    """``admit`` a question (length, cooldown), then ``answer`` it in a worker thread."""

    def __init__(self, context: AppContext, cooldown_seconds: float | None = None) -> None:
        settings = context.settings
        self.context = context
        self.per_page = settings.answer_passages
        self.max_chars = settings.max_question_chars
        seconds = settings.ask_cooldown_seconds if cooldown_seconds is None else cooldown_seconds
        self.cooldowns = Cooldowns(seconds)
        self._slots = asyncio.Semaphore(CONCURRENT_ANSWERS)

    def admit(self, question: str, user_id: int) -> str:
        """The question tidied, once it is short enough and the member is off cooldown.

        Instant, so a command can refuse (ephemerally) before acknowledging the interaction.
        """
        cleaned = " ".join(question.split())
        if not cleaned:
            raise InputError("Ask a question, for example: what happened to the Old Mill bridge?")
        if len(cleaned) > self.max_chars:
            raise InputError(
                f"Questions can be at most {self.max_chars} characters (yours has {len(cleaned)})."
            )
        self.cooldowns.hit(user_id)
        return cleaned

    def scope(self, source: str | None = None, since: str | None = None) -> Scope:
        """The source and start date the member typed, read at once (before acknowledging).

        An unreadable ``since`` raises ``InputError``. Whether ``source`` names anything is
        only known when answering, which reads the database.
        """
        start = None if since is None else parse_since(since, datetime.now(UTC))
        return Scope((source or "").strip() or None, start)

    async def answer(
        self,
        question: str,
        guild_id: int | None,
        source: str | None = None,
        since: datetime | None = None,
    ) -> Answer:
        """Quotes from what ``guild_id`` may see (its sources and global ones; None: all).

        ``source`` (a source's name or an outlet) and ``since`` narrow that further; a source
        that matches nothing raises ``InputError``.
        """
        async with self._slots:
            return await asyncio.to_thread(self._answer, question, guild_id, source, since)

    def _answer(
        self, question: str, guild_id: int | None, source: str | None, since: datetime | None
    ) -> Answer:
        # Inside the thread: the first call loads the model, and a source name is looked up
        # in the database.
        filters = self.context.retriever.narrowed(SearchFilters(guild_id=guild_id), source, since)
        return self.context.answerer.answer(
            question, k=self.per_page, filters=filters, extra=self.per_page * (PAGES - 1)
        )

    async def source_names(
        self, guild_id: int | None, typed: str = "", limit: int = limits.CHOICES
    ) -> list[str]:
        """Names ``source`` accepts here that contain ``typed``, for autocomplete.

        The server's sources and global ones, then the outlets of their indexed articles.
        """
        needle = typed.casefold().strip()
        names = await asyncio.to_thread(self._source_names, guild_id)
        # Longer names could not be offered as a choice, nor typed into the option.
        fitting = [n for n in names if needle in n.casefold() and len(n) <= limits.CHOICE_NAME]
        return fitting[:limit]

    def _source_names(self, guild_id: int | None) -> list[str]:
        with session_scope(self.context.engine) as session:
            sources = [s.name for s in list_sources(session, guild_id)]
        # Outlets as the index knows them (what a search can filter by), this server's only.
        return list(dict.fromkeys(sources + self.context.retriever.outlets(guild_id)))
