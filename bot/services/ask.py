"""Answering questions for many users at once without blocking the bot's event loop."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from bot import limits
from bot.context import AppContext
from index.answer import MAX_QUESTION_CHARS, Answer, Quote
from index.lexical import QUESTION_WORDS, tokenize
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

# How a follow-up shows that it leans on the question before it. It opens with one of
# LEAD_INS ("And the ferry?", "What about the airport?"), or it has one of POINTERS with no
# name before it in the follow-up itself ("How many votes did it get?"), while in "Did Okafor
# say she would run?" the name is what "she" means. A name is a capitalised word other than
# the first; it is a rough test, and it can afford to be: a follow-up read with the earlier
# question needlessly still contains its own words, and one that wrongly looks self-contained
# is read with the earlier question anyway when it finds nothing alone.
LEAD_INS = (("and",), ("what", "about"), ("how", "about"), ("what", "else"))
LEAD_IN_TOKENS = frozenset(tokenize(" ".join(word for lead in LEAD_INS for word in lead)))
POINTERS = frozenset(
    "it its they them their he him his she her this that these those there".split()
)
# "Is there", "there are": the "there" that points nowhere.
BE = frozenset({"is", "are", "was", "were", "be", "been", "s"})
# "This week" means now, not the story asked about before.
NOW = frozenset(
    "week weekend month year morning afternoon evening spring summer autumn fall winter".split()
)
WORD = re.compile(r"\w+")


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
    read_with: str | None = None  # the earlier question a follow-up was searched together with

    @property
    def is_last(self) -> bool:
        return self.number == self.count - 1


def paginate(
    answer: Answer, per_page: int, scope: Scope = Scope(), read_with: str | None = None
) -> list[AnswerPage]:
    """The answer's passages (or, when it abstains, its closest ones) in pages of ``per_page``."""
    quotes = answer.closest if answer.abstained else answer.passages + answer.more
    if answer.abstained or not quotes:
        return [AnswerPage(answer, quotes, 0, 1, 1, scope, read_with)]
    chunks = [quotes[i : i + per_page] for i in range(0, len(quotes), per_page)]
    return [
        AnswerPage(answer, chunk, number, len(chunks), number * per_page + 1, scope, read_with)
        for number, chunk in enumerate(chunks)
    ]


@dataclass(frozen=True)
class FollowUpAnswer:
    """The answer to a follow-up, and the earlier question it was read with (None: alone)."""

    answer: Answer
    read_with: str | None = None

    @property
    def earlier_for_next(self) -> str:
        """What the next follow-up is read with: the last question that stood on its own.

        Not a follow-up read with it: after "What did the council approve?", "How many
        votes did it get?" and then "What about the airport?" both lean on the council.
        """
        return self.read_with or self.answer.question


def leans_on_earlier(follow_up: str) -> bool:
    """Whether a follow-up's own words point back at the question before it (see LEAD_INS)."""
    words = WORD.findall(follow_up)
    lower = [word.casefold() for word in words]
    if any(tuple(lower[: len(lead)]) == lead for lead in LEAD_INS):
        return True
    for at, word in enumerate(lower):
        before = lower[at - 1] if at > 0 else ""
        after = lower[at + 1] if at + 1 < len(lower) else ""
        if (
            word not in POINTERS
            or (word == "there" and (before in BE or after in BE))
            or (word == "this" and after in NOW)
        ):
            continue
        if not any(name[:1].isupper() and name != "I" for name in words[1:at]):
            return True
    return False


def names_its_own_subject(follow_up: str) -> bool:
    """Whether a follow-up leads in with a new thing to ask about, not a pointer back.

    "What about the airport?" and "And the ferry?" do; "And when did it open?" does not.
    """
    lower = [word.casefold() for word in WORD.findall(follow_up)]
    leads_in = any(tuple(lower[: len(lead)]) == lead for lead in LEAD_INS)
    return leads_in and not POINTERS.intersection(lower)


def holds_its_words(follow_up: str, answer: Answer) -> bool:
    """Whether a passage ``answer`` quotes holds a word the follow-up is about.

    True when it has none ("When?", "And what else?"): then there is nothing to hold.
    """
    wanted = set(tokenize(follow_up)) - QUESTION_WORDS - LEAD_IN_TOKENS
    return not wanted or any(
        wanted & set(tokenize(f"{quote.title} {quote.text}")) for quote in answer.passages
    )


def paired_question(earlier: str, follow_up: str) -> str:
    """The earlier question and the follow-up as one search, within the question limit.

    The follow-up is kept whole; the earlier question loses its end if the two are too long.
    """
    room = MAX_QUESTION_CHARS - len(follow_up) - 1
    return f"{limits.truncate(earlier, room)} {follow_up}".strip()


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

    async def answer_follow_up(
        self, question: str, earlier: str | None, guild_id: int | None
    ) -> FollowUpAnswer:
        """The answer to ``question``, asked after ``earlier`` in one conversation (or first).

        The follow-up is searched alone when it stands on its own; together with the earlier
        question when its wording leans on it (``leans_on_earlier``) or when alone it finds
        nothing, if the pair's passages then hold its words (``holds_its_words``). One that
        names a new subject no indexed article mentions ("What about the airport?") is
        answered alone: not found, rather than the earlier story again. Highlights favour the
        follow-up's words.
        """
        async with self._slots:
            return await asyncio.to_thread(self._answer_follow_up, question, earlier, guild_id)

    def _answer_follow_up(
        self, question: str, earlier: str | None, guild_id: int | None
    ) -> FollowUpAnswer:
        if earlier is None:
            return FollowUpAnswer(self._answer(question, guild_id, None, None))
        alone = None
        if not leans_on_earlier(question):
            alone = self._answer(question, guild_id, None, None)
            if not alone.abstained:
                return FollowUpAnswer(alone)
        elif names_its_own_subject(question) and (
            self.context.retriever.unindexed_words(question) - LEAD_IN_TOKENS
        ):
            # Only a word no article holds tells a new subject ("the airport") from a detail
            # of the earlier story ("And the cost?", which it may give in other words).
            return FollowUpAnswer(self._answer(question, guild_id, None, None))
        paired = self._answer(
            paired_question(earlier, question), guild_id, None, None, focus=question
        )
        # A self-contained follow-up that found nothing keeps its "not found" unless the
        # pair's passages hold its words: else "Who won the election?" after a question on
        # ferry fares would be answered with the fares again.
        if alone is not None and (paired.abstained or not holds_its_words(question, paired)):
            return FollowUpAnswer(alone)
        # Titled with what the member asked; the reply says what it was read with.
        return FollowUpAnswer(replace(paired, question=question), read_with=earlier)

    def _answer(
        self,
        question: str,
        guild_id: int | None,
        source: str | None,
        since: datetime | None,
        focus: str | None = None,
    ) -> Answer:
        # Inside the thread: the first call loads the model, and a source name is looked up
        # in the database.
        filters = self.context.retriever.narrowed(SearchFilters(guild_id=guild_id), source, since)
        return self.context.answerer.answer(
            question,
            k=self.per_page,
            filters=filters,
            extra=self.per_page * (PAGES - 1),
            focus=focus,
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
