"""The passage change log: which passages each write added, removed or re-tagged.

Every writer of passages (``store.store_articles``, ``sources.remove_source``) appends its
changes with :func:`record_changes`, in the same transaction as the passage rows, as its
last statement. An index records the last entry it took in (``Manifest.log_sequence``) and
catches up by reading the entries after it (:func:`changes_after`): the cost follows what
changed, not the size of the corpus, and nothing is missed while a reader was down.

The log keeps a bounded window (``prune_changes``, a number of days): a reader that fell
behind it compares its whole index with the database once instead.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Engine, delete, func, insert, select, text
from sqlalchemy.orm import Session

from ingest.db import session_scope
from ingest.models import PassageChange, PassageChangeOrigin, utcnow

log = logging.getLogger(__name__)

ADDED, REMOVED, RETAGGED = "added", "removed", "retagged"
INSERT_CHUNK = 5000
# Any fixed number: the advisory lock naming "appending to newsbot's passage change log".
_APPEND_LOCK_KEY = 0x6E62636C6F67


def record_changes(
    session: Session,
    added: Iterable[int] = (),
    removed: Iterable[int] = (),
    retagged: Iterable[int] = (),
) -> int:
    """Append these passage changes to the log in the caller's transaction; how many.

    Call it last in the transaction. On PostgreSQL two writers can take sequence numbers in
    one order and commit in the other (5 commits after 6): a reader that saw 6 and recorded
    it would never read 5. So the append takes a transaction-level advisory lock, held until
    the commit: entries then become visible in sequence order, and what a reader sees is
    always a prefix of the log (with gaps where a transaction rolled back). Being the last
    statement, the lock is held only for this insert and the commit. (The alternatives: a
    cursor on transaction ids below ``pg_snapshot_xmin``, which any long write transaction
    on the server holds back; or re-reading a window of recent entries, which is only
    probably enough.) On SQLite writes are serialized (``BEGIN IMMEDIATE``) already.
    """
    now = utcnow()
    rows = [
        {"passage_id": int(pid), "kind": kind, "changed_at": now}
        for kind, ids in ((REMOVED, removed), (ADDED, added), (RETAGGED, retagged))
        for pid in ids
    ]
    if not rows:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _APPEND_LOCK_KEY})
    for start in range(0, len(rows), INSERT_CHUNK):
        session.execute(insert(PassageChange), rows[start : start + INSERT_CHUNK])
    return len(rows)


@dataclass(frozen=True)
class Changes:
    """What the log says changed after an entry, each passage once, by its latest entry."""

    through: int  # the last entry read: the reader's next cursor
    added: list[int] = field(default_factory=list)  # new passages
    removed: list[int] = field(default_factory=list)  # to drop
    retagged: list[int] = field(default_factory=list)  # to index again (a new date or outlet)
    entries: int = 0  # log entries read
    complete: bool = True  # False: entries after the cursor were pruned (or another database)


def log_origin(engine: Engine) -> str:
    """The token naming this database's change log (made here if the migration did not)."""
    with session_scope(engine) as session:
        token = session.scalar(select(PassageChangeOrigin.token))
        if token is None:
            token = uuid.uuid4().hex
            session.add(PassageChangeOrigin(token=token))
    return token


def latest_sequence(engine: Engine) -> int:
    """The newest log entry (0 for an empty log): what a full build takes in at most.

    Read it *before* reading the passages: the build then holds at least every change up to
    it, and applying a change twice is harmless.
    """
    with session_scope(engine) as session:
        return int(session.scalar(select(func.max(PassageChange.seq))) or 0)


def changes_after(engine: Engine, after: int, origin: str | None = None) -> Changes:
    """The passages changed by the entries after ``after`` (the cursor an index recorded).

    With ``origin`` (the log token the index recorded), a log of another database comes
    back incomplete: its entries say nothing about what the index holds.
    """
    if origin is not None and origin != log_origin(engine):
        log.info("the index follows another database's change log")
        return Changes(after, complete=False)
    with session_scope(engine) as session:
        # The newest entry first, then the ones up to it: all of them are visible by then
        # (the log becomes visible in sequence order, see record_changes).
        newest = int(session.scalar(select(func.max(PassageChange.seq))) or 0)
        if newest <= after:
            # Nothing new, or a cursor past the log's end: a database replaced or restored.
            return Changes(after, complete=newest == after)
        first = int(session.scalar(select(func.min(PassageChange.seq))) or 0)
        if first > after + 1:
            log.info("the change log starts at %d, after this index's %d", first, after)
            return Changes(newest, complete=False)
        latest: dict[int, str] = {}
        count = 0
        query = (
            select(PassageChange.passage_id, PassageChange.kind)
            .where(PassageChange.seq > after, PassageChange.seq <= newest)
            .order_by(PassageChange.seq)
        )
        for passage_id, kind in session.execute(query):
            # Ids are never reused: a passage is added, maybe re-tagged, maybe removed.
            if latest.get(passage_id) != ADDED or kind == REMOVED:
                latest[passage_id] = kind
            count += 1
    by_kind: dict[str, list[int]] = {ADDED: [], REMOVED: [], RETAGGED: []}
    for passage_id, kind in sorted(latest.items()):
        by_kind[kind].append(passage_id)
    return Changes(newest, by_kind[ADDED], by_kind[REMOVED], by_kind[RETAGGED], count)


def prune_changes(engine: Engine, keep: timedelta) -> int:
    """Delete entries older than ``keep`` (never the newest one); how many were deleted.

    The newest entry stays so that a reader can tell "nothing new" from "pruned past me".
    """
    cutoff = utcnow() - keep
    with session_scope(engine) as session:
        newest = session.scalar(select(func.max(PassageChange.seq)))
        if newest is None:
            return 0
        result = session.execute(
            delete(PassageChange).where(
                PassageChange.changed_at < cutoff, PassageChange.seq < newest
            )
        )
    pruned = int(getattr(result, "rowcount", 0) or 0)
    if pruned:
        log.info("pruned %d passage change log entries older than %s", pruned, keep)
    return pruned
