"""Answering questions for many users at once without blocking the bot's event loop."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from sqlalchemy import select

from bot import limits
from bot.resources import Resources
from bot.services.cooldowns import Cooldowns
from index.answer import (
    MAX_QUESTION_CHARS,
    Answer,
    EmptyQuestion,
    QuestionTooLong,
    Quote,
    validate_question,
)
from index.lexical import QUESTION_WORDS, tokenize
from index.query import parse_since
from index.search import SearchFilters
from ingest.db import session_scope
from ingest.errors import InputError
from ingest.models import Article, Passage
from ingest.sources import list_sources
from ingest.store import passages_by_id

# Pages of passages fetched with each answer, so "More passages" needs no second search.
PAGES = 3
# Answers computed at once: the model encodes one batch at a time anyway, and this leaves
# threads in the default pool for other work (source lists, database reads).
CONCURRENT_ANSWERS = 4

# How a follow-up shows that it leans on the question before it. It opens with one of
# LEAD_INS ("And the ferry?", "What about the airport?"), or it has one of POINTERS with no
# name before it in the follow-up itself ("How many votes did it get?"), while in "Did Okafor
# say she would run?" the name is what "she" means. A name is a capitalised word other than
# the first. Wording is only the first test: AskService._leans_on also asks where the
# follow-up's own words lead when it is searched alone.
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
# Words that ask for something without saying what about ("Tell me about the bridge").
REQUEST_WORDS = frozenset(tokenize("tell me explain anything news update updates know happened"))
NOT_TOPIC = (
    QUESTION_WORDS | LEAD_IN_TOKENS | REQUEST_WORDS | frozenset(tokenize(" ".join(POINTERS)))
)
# A follow-up with words of its own and no pointer is searched alone first (PROBE_DEPTH
# passages). It is about the earlier story when that story's best passage scores at least
# STORY_SHARE of the best one and holds one of its words: "When will construction start?"
# after the tram's cost finds the hospital's construction first, the tram's at 0.82 of it;
# a story the follow-up singles out leaves the earlier one far behind ("Tell me about the
# bridge" after the tram: 0.13). A lead-in ("And the cost?") leans more: it is read alone
# only when another story's title holds its words and the earlier story scores below
# LEAD_IN_SHARE ("What about the wildfire?" after the layoffs: 0.10). Read off
# tests/fixtures/follow_ups.jsonl on the sample corpus, where follow-ups score 0.67 or more
# and the others 0.24 or less (the ranking's scores are probability-like, so ratios hold).
STORY_SHARE = 0.5
LEAD_IN_SHARE = 0.3
# Cosine below which the earlier story, found first by chance, means something else than a
# short follow-up (MiniLM puts unrelated short texts at -0.1 to 0.15; "Has anyone died?"
# meets "No deaths have been reported" at 0.22, "Who won the election?" ferry fares at 0.0).
STORY_SIMILARITY = 0.18
PROBE_DEPTH = 30


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
class Conversation:
    """What a follow-up can lean on: the last question that stood on its own and its story.

    ``articles`` are the story it was answered from (none when it was not found), ``words``
    what that story says (stemmed, as search sees them), ``shown`` the passages the
    conversation has quoted since, which a follow-up read with it does not quote again when
    other passages answer it.
    """

    question: str
    articles: frozenset[int] = frozenset()
    words: frozenset[str] = frozenset()
    shown: frozenset[int] = frozenset()


def closest_articles(quotes: list[Quote]) -> list[Quote]:
    """The first quote of each article, in order: what a refusal lists as closest."""
    seen: set[tuple[str, str | None]] = set()
    unique = []
    for quote in quotes:
        if (quote.title, quote.url) not in seen:
            seen.add((quote.title, quote.url))
            unique.append(quote)
    return unique


def page_as_json(page: AnswerPage) -> dict[str, object]:
    """What one page of an answer shows, as JSON: its quotes in order, highlight included,
    or, when nothing answers, the closest articles."""
    answer = page.answer
    record: dict[str, object] = {"question": answer.question, "abstained": answer.abstained}
    if answer.abstained:
        record["passages"] = []
        record["closest"] = [
            {
                "title": quote.title,
                "source": quote.source,
                "url": quote.url,
                "published_at": quote.published_at.isoformat() if quote.published_at else None,
            }
            for quote in closest_articles(page.quotes)
        ]
    else:
        record["passages"] = [
            {**quote.as_json(), "highlight": quote.highlight} for quote in page.quotes
        ]
    return record


@dataclass(frozen=True)
class FollowUpAnswer:
    """The answer to a follow-up, the earlier question it was read with (None: alone), and
    the conversation the next follow-up leans on."""

    answer: Answer
    read_with: str | None = None
    conversation: Conversation = field(default_factory=lambda: Conversation(""))

    @property
    def earlier_for_next(self) -> str:
        """What the next follow-up is read with: the last question that stood on its own.

        Not a follow-up read with it: after "What did the council approve?", "How many
        votes did it get?" and then "What about the airport?" both lean on the council.
        """
        return self.conversation.question or self.read_with or self.answer.question


@dataclass(frozen=True)
class StoryStanding:
    """The earlier story among a follow-up's own search results."""

    share: float  # its best passage's score over the best passage's (0: not among them)
    story_first: bool  # the best passage is the story's
    similarity: float  # cosine of its best passage to the follow-up
    best_title: str  # the title of the article the best passage is from


def topic_words(follow_up: str) -> set[str]:
    """The follow-up's own words about its subject: not question words, lead-ins, pointers.

    "How much will it cost?" has {"cost"}; "Why?" and "Tell me about it" have none.
    """
    return set(tokenize(follow_up)) - NOT_TOPIC


def names_in(follow_up: str) -> list[str]:
    """Capitalised words other than the first ("Who is Tomás Ferrer?"): names, roughly."""
    words = WORD.findall(follow_up)
    return [word for word in words[1:] if word[:1].isupper() and word != "I"]


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


def paired_question(earlier: str, follow_up: str) -> str:
    """The earlier question and the follow-up as one search, within the question limit.

    The follow-up is kept whole; the earlier question loses its end if the two are too long.
    """
    room = MAX_QUESTION_CHARS - len(follow_up) - 1
    return f"{limits.truncate(earlier, room)} {follow_up}".strip()


class AskService:
    """``admit`` a question (length, cooldown), then ``answer`` it in a worker thread."""

    def __init__(self, resources: Resources, cooldown_seconds: float | None = None) -> None:
        settings = resources.settings
        self.resources = resources
        self.per_page = settings.answer_passages
        self.max_chars = settings.max_question_chars
        seconds = settings.ask_cooldown_seconds if cooldown_seconds is None else cooldown_seconds
        self.cooldowns = Cooldowns(seconds)
        self._slots = asyncio.Semaphore(CONCURRENT_ANSWERS)

    def admit(self, question: str, user_id: int) -> str:
        """The question tidied, once it is short enough and the member is off cooldown.

        Instant, so a command can refuse (ephemerally) before acknowledging the interaction.
        """
        try:
            cleaned = validate_question(question, self.max_chars)
        except EmptyQuestion:
            raise InputError(
                "Ask a question, for example: what happened to the Old Mill bridge?"
            ) from None
        except QuestionTooLong as long:
            raise InputError(
                f"Questions can be at most {long.limit} characters (yours has {long.length})."
            ) from None
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
        k: int | None = None,
        as_of: datetime | None = None,
        exclude: frozenset[int] = frozenset(),
    ) -> Answer:
        """Quotes from what ``guild_id`` may see (its sources and global ones; None: all).

        ``source`` (a source's name or an outlet) and ``since`` narrow that further; a source
        that matches nothing raises ``InputError``. ``k`` quotes a page (default: the
        configured ``answer_passages``); ``as_of`` answers as on that day. Passages in
        ``exclude`` are never quoted (shown already).
        """
        async with self._slots:
            return await asyncio.to_thread(
                self.answer_blocking, question, guild_id, source, since, k, as_of, exclude
            )

    def answer_blocking(
        self,
        question: str,
        guild_id: int | None,
        source: str | None = None,
        since: datetime | None = None,
        k: int | None = None,
        as_of: datetime | None = None,
        exclude: frozenset[int] = frozenset(),
    ) -> Answer:
        """``answer`` in the calling thread: for the command line, which has no event loop."""
        filters = SearchFilters(guild_id=guild_id, as_of=as_of)
        return self._answer(question, filters, source, since, exclude=exclude, per_page=k)

    async def answer_follow_up(
        self, question: str, earlier: Conversation | None, guild_id: int | None
    ) -> FollowUpAnswer:
        """The answer to ``question``, asked in ``earlier``'s conversation (or first).

        A follow-up is read with the earlier question when it leans on it: a pointer with no
        name to mean ("How old is he?"), nothing of its own ("Why?"), a lead-in about a
        detail of the earlier story ("And the cost?"), or an implicit subject the earlier
        story answers about as well as any other ("When will construction start?"). One that
        names its own subject stands alone ("Tell me about the bridge" after the football,
        "What about the airport?"). Read with it, the answer quotes passages the
        conversation has not shown yet when they answer the follow-up's own words.
        """
        async with self._slots:
            return await asyncio.to_thread(self._answer_follow_up, question, earlier, guild_id)

    async def conversation_after(self, answer: Answer) -> Conversation:
        """The conversation a question answered on its own (``answer``) starts."""
        return await asyncio.to_thread(self._conversation_after, answer)

    def _conversation_after(self, answer: Answer) -> Conversation:
        shown = [quote.passage_id for quote in answer.passages]
        # A question not found still has a story: the closest article, which the reply lists.
        led_with = [quote.passage_id for quote in (answer.passages or answer.closest)[:1]]
        story = self.resources.retriever.article_ids(led_with)
        articles = frozenset(a for a in story if a is not None)
        return Conversation(
            answer.question, articles, self._story_words(articles), frozenset(shown)
        )

    def _story_words(self, articles: frozenset[int]) -> frozenset[str]:
        if not articles:
            return frozenset()
        query = (
            select(Article.title, Passage.text)
            .join(Passage, Passage.article_id == Article.id)
            .where(Article.id.in_(sorted(articles)))
        )
        with session_scope(self.resources.engine) as session:
            rows = session.execute(query).all()
        return frozenset(tokenize(" ".join(f"{title} {text}" for title, text in rows)))

    def _answer_follow_up(
        self, question: str, earlier: Conversation | None, guild_id: int | None
    ) -> FollowUpAnswer:
        filters = SearchFilters(guild_id=guild_id)
        if earlier is None or not self._leans_on(question, earlier, filters):
            alone = self._answer(question, filters)
            return FollowUpAnswer(alone, conversation=self._conversation_after(alone))
        paired = self._paired(question, earlier, filters)
        if paired.abstained:
            alone = self._answer(question, filters)
            if not alone.abstained:
                # Found alone: still the same conversation if it is the same story.
                started = self._conversation_after(alone)
                if started.articles and started.articles <= earlier.articles:
                    started = replace(earlier, shown=earlier.shown | started.shown)
                return FollowUpAnswer(alone, conversation=started)
        shown = earlier.shown | {quote.passage_id for quote in paired.passages}
        # Titled with what the member asked; the reply says what it was read with.
        return FollowUpAnswer(
            replace(paired, question=question),
            read_with=earlier.question,
            conversation=replace(earlier, shown=shown),
        )

    def _leans_on(self, question: str, earlier: Conversation, filters: SearchFilters) -> bool:
        """Whether ``question`` is about ``earlier``'s story rather than one it names itself."""
        topic = topic_words(question)
        if not topic:
            return True  # "Why?", "And when?", "by how much": nothing to stand on
        lead_in = names_its_own_subject(question)
        if leans_on_earlier(question) and not lead_in:
            return True  # a pointer with no name to mean: "How old is he?"
        if any(not set(tokenize(name)) <= earlier.words for name in names_in(question)):
            return False  # someone or something the earlier story never mentions
        if lead_in and self.resources.retriever.unindexed_words(question) - LEAD_IN_TOKENS:
            # "What about the airport?", which no article mentions: not found, rather than
            # the earlier story again.
            return False
        standing = self._standing(question, earlier, filters)
        held = bool(topic & earlier.words)
        if lead_in:
            # "And the cost?" may ask about a detail of the earlier story in other words; it
            # is another subject when another story is about it, down to its title ("What
            # about the wildfire?" after the layoffs).
            elsewhere = topic & set(tokenize(standing.best_title))
            return held or standing.share >= LEAD_IN_SHARE or not elsewhere
        if standing.story_first:
            # Alone it finds the earlier story anyway: an implicit subject ("What was the
            # score?", "Has anyone died?") is read with it, a question naming its own ("When
            # will the Old Mill Bridge reopen?") stands alone. Found first by chance, a story
            # that neither holds its words nor means the same does not count.
            on_topic = held or standing.similarity >= STORY_SIMILARITY
            return on_topic and not names_in(question)
        return held and standing.share >= STORY_SHARE

    def _standing(
        self, question: str, earlier: Conversation, filters: SearchFilters
    ) -> StoryStanding:
        """How the earlier story ranks for the follow-up searched alone."""
        retriever = self.resources.retriever
        hits = retriever.search(question, PROBE_DEPTH, filters)
        if not hits:
            return StoryStanding(0.0, False, 0.0, "")
        with session_scope(self.resources.engine) as session:
            best = passages_by_id(session, [hits[0].passage_id]).get(hits[0].passage_id)
        best_title = best.title if best is not None else ""
        articles = retriever.article_ids([hit.passage_id for hit in hits])
        story = [hit for hit, a in zip(hits, articles, strict=True) if a in earlier.articles]
        if not story:
            return StoryStanding(0.0, False, 0.0, best_title)
        share = story[0].score / max(hits[0].score, 1e-9)
        first = articles[0] in earlier.articles
        return StoryStanding(share, first, story[0].similarity, best_title)

    def _paired(self, question: str, earlier: Conversation, filters: SearchFilters) -> Answer:
        """The follow-up searched with the earlier question, favouring passages not shown.

        A passage the conversation showed comes back only when no other passage of the story
        holds the follow-up's words and it does (the detail was in the earlier answer).
        """
        pair = paired_question(earlier.question, question)
        if not earlier.shown:
            return self._answer(pair, filters, focus=question)
        fresh = self._answer(pair, filters, focus=question, exclude=earlier.shown)
        if self._answers_in_story(fresh, question, earlier):
            return fresh
        again = self._answer(pair, filters, focus=question)
        if self._answers_in_story(again, question, earlier) or fresh.abstained:
            return again
        # The earlier answer may have shown the whole story (only relevant quotes are shown,
        # so a short article is shown in full): another story's leftovers are no answer.
        if self._leads_with_story(again, earlier) and not self._leads_with_story(fresh, earlier):
            return again
        return fresh

    def _leads_with_story(self, answer: Answer, earlier: Conversation) -> bool:
        """Whether ``answer`` quotes a passage of the earlier story first."""
        if answer.abstained or not answer.passages:
            return False
        first = answer.passages[0].passage_id
        return self.resources.retriever.article_ids([first])[0] in earlier.articles

    def _answers_in_story(self, answer: Answer, question: str, earlier: Conversation) -> bool:
        """Whether ``answer`` leads with a passage of the earlier story holding the follow-up's
        own words (any passage of it, for a follow-up with none: "Why?")."""
        if not self._leads_with_story(answer, earlier):
            return False
        first = answer.passages[0]
        topic = topic_words(question)
        return not topic or bool(topic & set(tokenize(f"{first.title} {first.text}")))

    def _answer(
        self,
        question: str,
        filters: SearchFilters,
        source: str | None = None,
        since: datetime | None = None,
        focus: str | None = None,
        exclude: frozenset[int] = frozenset(),
        per_page: int | None = None,
    ) -> Answer:
        # Inside the thread: the first call loads the model, and a source name is looked up
        # in the database.
        filters = self.resources.retriever.narrowed(filters, source, since)
        k = per_page or self.per_page
        return self.resources.answerer.answer(
            question, k=k, filters=filters, extra=k * (PAGES - 1), focus=focus, exclude=exclude
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
        with session_scope(self.resources.engine) as session:
            sources = [s.name for s in list_sources(session, guild_id)]
        # Outlets as the index knows them (what a search can filter by), this server's only.
        return list(dict.fromkeys(sources + self.resources.retriever.outlets(guild_id)))
