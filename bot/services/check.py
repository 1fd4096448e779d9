"""Checking a message against the news: what the indexed articles say about its text.

The message's text (links, mentions and emoji removed, its first 500 characters) is answered
like a question, through the ask service. When the message links to an article this server
can quote, that article comes first, with its passage closest to what the message says.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import or_, select

from bot.resources import Resources
from bot.services.ask import AskService
from index.answer import MAX_QUESTION_CHARS, Answer, Quote, best_sentence
from ingest.db import session_scope
from ingest.errors import InputError
from ingest.models import GLOBAL_GUILD, Article, Passage, Source
from ingest.urls import canonical_url

URL = re.compile(r"<?(https?://[^\s<>]+)>?")
MASKED_LINK = re.compile(r"\[([^\]\n]*)\]\(<?(https?://[^\s()<>]+)>?\)")  # [words](url)
# Discord's markup for users, roles, channels, commands, custom emoji and timestamps.
MARKUP = re.compile(r"<(?:@[!&]?\d+|#\d+|/[^>\s]+:\d+|a?:\w+:\d+|t:-?\d+(?::\w)?)>")
EVERYONE = re.compile(r"@(?:everyone|here)\b")
# Passages of a linked article compared with the message: more would be a book, not news.
LINKED_PASSAGES = 200
NO_TEXT = "This message has no text to check against the news."
NO_TEXT_NOR_ARTICLE = (
    "This message has no text to check, and its links are to no article indexed here."
)


@dataclass(frozen=True)
class Claim:
    """What a message says (``text``, possibly empty) and the links it gives."""

    text: str
    links: tuple[str, ...] = ()


@dataclass(frozen=True)
class CheckResult:
    """The answer to a message's text, and the linked article's closest passage, if any."""

    answer: Answer
    linked: Quote | None = None


def read_claim(content: str, embeds: Sequence[tuple[str, str, str]] = ()) -> Claim:
    """The text and links of a message; ``embeds`` are its (title, description, url).

    A message with no text of its own (a feed bot's post) is read from its embeds.
    Raises ``InputError`` when there is neither text nor a link.
    """
    content = MASKED_LINK.sub(r"\1 \2", content)
    links = [match.group(1).rstrip(".,;:!?)]'\"") for match in URL.finditer(content)]
    links += [url for _, _, url in embeds if url]
    text = _plain(content)
    if not text:
        text = _plain(" ".join(f"{title} {description}" for title, description, _ in embeds))
    if not text and not links:
        raise InputError(NO_TEXT)
    return Claim(_first_chars(text, MAX_QUESTION_CHARS), tuple(dict.fromkeys(links)))


def _plain(text: str) -> str:
    text = URL.sub(" ", text)
    text = MARKUP.sub(" ", text)
    text = EVERYONE.sub(" ", text)
    return " ".join(text.split())


def _first_chars(text: str, limit: int) -> str:
    """The start of ``text`` within ``limit`` characters, cut between words."""
    if len(text) <= limit:
        return text
    cut = text[: limit + 1].rsplit(" ", 1)[0]
    return cut if cut and len(cut) <= limit else text[:limit]


class CheckService:
    def __init__(self, resources: Resources, asks: AskService) -> None:
        self.resources = resources
        self.asks = asks

    async def check(self, claim: Claim, guild_id: int | None) -> CheckResult:
        """What ``guild_id``'s news (None: every server's) says about ``claim``: its linked
        article first, if indexed.

        A claim with no text of its own is answered with the linked article's title.
        """
        linked = await asyncio.to_thread(self.linked_quote, claim, guild_id)
        question = claim.text or (linked.title if linked is not None else "")
        if not question:
            raise InputError(NO_TEXT_NOR_ARTICLE)
        shown = frozenset({linked.passage_id}) if linked is not None else frozenset()
        answer = await self.asks.answer(question, guild_id, exclude=shown)
        return CheckResult(answer, linked)

    def linked_quote(self, claim: Claim, guild_id: int | None) -> Quote | None:
        """The passage of the first linked, indexed article that best matches the claim."""
        article = self._linked_article(claim.links, guild_id)
        if article is None:
            return None
        with session_scope(self.resources.engine) as session:
            passages = session.execute(
                select(Passage.id, Passage.text)
                .where(Passage.article_id == article.id)
                .order_by(Passage.position)
                .limit(LINKED_PASSAGES)
            ).all()
        if not passages:
            return None
        best, similarity = 0, 0.0
        if claim.text and len(passages) > 1:
            embedder = self.resources.retriever.embedder
            vectors = embedder.embed([text for _, text in passages])
            similarities = vectors @ embedder.embed_query(claim.text)
            best = int(np.argmax(similarities))
            similarity = float(similarities[best])
        passage_id, text = passages[best]
        return Quote(
            passage_id=passage_id,
            text=text,
            title=article.title,
            source=article.outlet,
            url=article.url,
            published_at=article.published_at,
            score=similarity,
            highlight=best_sentence(claim.text or article.title, text),
            similarity=similarity,
        )

    def _linked_article(self, links: Sequence[str], guild_id: int | None) -> Article | None:
        if not links:
            return None
        wanted: list[str] = []
        for link in links:
            wanted.append(link)
            try:
                wanted.append(canonical_url(link))
            except ValueError:  # a link with a bad port is nobody's article
                continue
        query = (
            select(Article)
            .join(Source, Source.id == Article.source_id)
            .where(or_(Article.url.in_(wanted), Article.key.in_(wanted)))
        )
        if guild_id is not None:
            query = query.where(Source.guild_id.in_([GLOBAL_GUILD, guild_id]))
        with session_scope(self.resources.engine) as session:
            found: dict[str | None, Article] = {}
            for article in session.scalars(query):
                session.expunge(article)
                found.setdefault(article.url, article)
                found.setdefault(article.key, article)
        # The message's first link that is an indexed article.
        return next((found[url] for url in wanted if url in found), None)
