"""Members' votes on answers: kept by server, counted and exported; they never change ranking.

Every answer given in Discord is recorded (question, server, the passages it quoted with their
ranking scores) so that its "Helpful" / "Not helpful" buttons can name it by id, across
restarts. A member has one vote per answer; voting again replaces it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from sqlalchemy import Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, selectinload

from bot.resources import Resources
from index.answer import Answer
from ingest.db import session_scope
from ingest.errors import InputError
from ingest.models import AnswerQuote, AnswerRecord, Vote, utcnow

log = logging.getLogger(__name__)

AnswerKind = Literal["ask", "mention", "thread", "check"]
SHARE_DAYS = 30
EXPORT_BATCH = 500


@dataclass(frozen=True)
class Tally:
    """An answer's votes, and the vote of the member who just voted."""

    helpful: int
    not_helpful: int
    mine: bool


@dataclass(frozen=True)
class VoteShare:
    """Helpful votes among all votes cast in a server over the last ``days``."""

    helpful: int
    total: int
    days: int = SHARE_DAYS

    @property
    def share(self) -> float | None:
        return self.helpful / self.total if self.total else None


class FeedbackService:
    def __init__(self, resources: Resources) -> None:
        self.resources = resources

    async def record(self, answer: Answer, guild_id: int, kind: AnswerKind) -> int | None:
        """Store ``answer`` as given in ``guild_id``; returns the id its vote buttons carry.

        None when it could not be stored: the member still gets the answer, without buttons.
        """
        try:
            return await asyncio.to_thread(
                record_answer, self.resources.engine, answer, guild_id, kind
            )
        except SQLAlchemyError:
            log.exception("could not record an answer for votes (guild %s)", guild_id)
            return None

    async def vote(self, answer_id: int, guild_id: int, user_id: int, helpful: bool) -> Tally:
        """Record (or change) ``user_id``'s vote on an answer given in ``guild_id``.

        An answer that is unknown, or was given in another server, raises ``InputError``.
        """
        return await asyncio.to_thread(
            cast_vote, self.resources.engine, answer_id, guild_id, user_id, helpful
        )

    def export_blocking(self, path: Path, guild_id: int | None = None) -> int:
        """``newsbot feedback export``: the votes (of one server, or all) as JSONL."""
        return export_votes(self.resources.engine, path, guild_id)


def record_answer(engine: Engine, answer: Answer, guild_id: int, kind: AnswerKind) -> int:
    quoted = answer.closest if answer.abstained else answer.passages
    record = AnswerRecord(
        guild_id=guild_id, kind=kind, question=answer.question, abstained=answer.abstained
    )
    record.quotes = [
        AnswerQuote(
            rank=rank,
            passage_id=quote.passage_id,
            score=float(quote.score),
            similarity=float(quote.similarity),
            coverage=float(quote.coverage),
        )
        for rank, quote in enumerate(quoted, start=1)
    ]
    with session_scope(engine) as session:
        session.add(record)
        session.flush()
        return record.id


def cast_vote(engine: Engine, answer_id: int, guild_id: int, user_id: int, helpful: bool) -> Tally:
    with session_scope(engine) as session:
        answer_guild = session.scalar(
            select(AnswerRecord.guild_id).where(AnswerRecord.id == answer_id)
        )
        if answer_guild is None or answer_guild != guild_id:
            raise InputError("This answer is no longer known here; ask again to vote on it.")
        _upsert_vote(session, answer_id, guild_id, user_id, helpful)
        counts = dict(
            session.execute(
                select(Vote.helpful, func.count())
                .where(Vote.answer_id == answer_id)
                .group_by(Vote.helpful)
            ).all()
        )
    return Tally(counts.get(True, 0), counts.get(False, 0), helpful)


def _upsert_vote(
    session: Session, answer_id: int, guild_id: int, user_id: int, helpful: bool
) -> None:
    """One row per member and answer, whichever of two clicks at once lands first."""
    values = {
        "answer_id": answer_id,
        "user_id": user_id,
        "guild_id": guild_id,
        "helpful": helpful,
        "voted_at": utcnow(),
    }
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(Vote).values(**values)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[Vote.answer_id, Vote.user_id],
            set_={"helpful": helpful, "voted_at": values["voted_at"]},
        )
    )


def helpful_share(engine: Engine, guild_id: int | None, now: datetime | None = None) -> VoteShare:
    """Helpful votes among those cast in ``guild_id`` (None: anywhere) over the last 30 days."""
    since = (now or datetime.now(UTC)) - timedelta(days=SHARE_DAYS)
    query = select(Vote.helpful, func.count()).where(Vote.voted_at >= since)
    if guild_id is not None:
        query = query.where(Vote.guild_id == guild_id)
    with session_scope(engine) as session:
        counts = dict(session.execute(query.group_by(Vote.helpful)).all())
    helpful = counts.get(True, 0)
    return VoteShare(helpful, helpful + counts.get(False, 0))


def vote_records(engine: Engine, guild_id: int | None = None) -> Iterator[dict[str, object]]:
    """Every vote (of one server, or all), oldest first, with its answer, as JSON objects.

    Members are not named: a vote says what was asked and quoted, and whether it helped.
    """
    query = (
        select(Vote, AnswerRecord)
        .join(AnswerRecord, AnswerRecord.id == Vote.answer_id)
        .options(selectinload(AnswerRecord.quotes))
        .order_by(Vote.voted_at, Vote.answer_id, Vote.user_id)
        .execution_options(yield_per=EXPORT_BATCH)
    )
    if guild_id is not None:
        query = query.where(Vote.guild_id == guild_id)
    with session_scope(engine) as session:
        for vote, answer in session.execute(query):
            yield {
                "answer_id": answer.id,
                "guild_id": answer.guild_id,
                "kind": answer.kind,
                "question": answer.question,
                "abstained": answer.abstained,
                "asked_at": answer.asked_at.isoformat(),
                "helpful": vote.helpful,
                "voted_at": vote.voted_at.isoformat(),
                "quotes": [
                    {
                        "rank": quote.rank,
                        "passage_id": quote.passage_id,
                        "score": quote.score,
                        "similarity": quote.similarity,
                        "coverage": quote.coverage,
                    }
                    for quote in answer.quotes
                ],
            }


def export_votes(engine: Engine, path: Path, guild_id: int | None = None) -> int:
    """Write the votes as JSONL to ``path`` (replaced whole, never half-written); returns
    how many."""
    staged = path.with_name(f".{path.name}.partial")
    written = 0
    with staged.open("w", encoding="utf-8") as out:
        for record in vote_records(engine, guild_id):
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            written += 1
    staged.replace(path)
    return written
