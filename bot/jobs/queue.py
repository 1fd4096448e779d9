"""The procrastinate app over newsbot's PostgreSQL database: its schema, its tasks, notices.

Both sides build the same app: workers run its tasks, bots queue them. Its tables are made,
and upgraded when procrastinate's version changes, at the start of a queue-mode process, like
newsbot's own migrations (``queue_schema``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import procrastinate
from sqlalchemy import Engine, make_url, text

from bot.jobs.queue_schema import ensure_queue_schema
from bot.settings import Settings
from ingest.errors import InputError

log = logging.getLogger(__name__)

# The channel bots LISTEN on: a worker says there that the database holds new vectors
# ("sync") or that a reindex is ready to swap in ("rebuild"). One channel per schema, as
# PostgreSQL's channels span the whole database: deployments (or test runs) in different
# schemas of one database must not wake each other's bots. A channel name is an identifier
# of at most 63 bytes, so the schema is hashed into it; both sides compute it in SQL.
INDEX_CHANNEL_SQL = "'newsbot_index_' || left(md5(current_schema()), 16)"
SYNC = "sync"
REBUILD = "rebuild"
# A sync notice that also names the articles a refresh stored ("stored:12,13"), for the one
# bot process that posts the follows' news (bot/jobs/follow.py).
STORED = "stored:"
# NOTIFY payloads must stay under 8000 bytes: longer lists of ids take several notices.
PAYLOAD_CHARS = 7000


def libpq_url(database_url: str) -> str:
    """The SQLAlchemy URL as libpq reads it (``postgresql://``, password and options kept)."""
    url = make_url(database_url)
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def check_queue_settings(settings: Settings) -> None:
    """``InputError`` when ``NEWSBOT_JOBS=queue`` cannot work with this database."""
    if not settings.queued:
        return
    url = settings.resolved_database_url
    if not make_url(url).drivername.startswith("postgresql"):
        raise InputError(
            "NEWSBOT_JOBS=queue needs a PostgreSQL database (NEWSBOT_DATABASE_URL="
            "postgresql+psycopg://...); with SQLite, leave NEWSBOT_JOBS at inline"
        )


def make_app(settings: Settings) -> procrastinate.App:
    from bot.jobs.tasks import blueprint

    connector = procrastinate.PsycopgConnector(conninfo=libpq_url(settings.resolved_database_url))
    app = procrastinate.App(connector=connector)
    app.add_tasks_from(blueprint, namespace="newsbot")
    return app


@asynccontextmanager
async def open_queue(settings: Settings, engine: Engine) -> AsyncIterator[procrastinate.App]:
    """The app, its schema in place and its connection pool open, for one ``async with``."""
    check_queue_settings(settings)
    await asyncio.to_thread(ensure_queue_schema, engine)
    app = make_app(settings)
    async with app.open_async():
        yield app


def notify_index(engine: Engine, what: str = SYNC, article_ids: Sequence[int] = ()) -> None:
    """Tell every bot replica the database's passages or vectors changed (``article_ids``: a
    refresh stored these, in notices of their own that also ask for a sync)."""
    payloads = [what] if what != SYNC or not article_ids else []
    payloads += stored_payloads(article_ids)
    with engine.begin() as connection:  # delivered together, in order, at the commit
        for payload in payloads:
            connection.execute(
                text(f"SELECT pg_notify({INDEX_CHANNEL_SQL}, :what)"), {"what": payload}
            )


def stored_payloads(article_ids: Sequence[int]) -> list[str]:
    """``stored:`` notices naming these articles, each short enough for NOTIFY."""
    payloads: list[str] = []
    ids: list[str] = []
    for article_id in article_ids:
        if ids and len(STORED) + len(",".join(ids)) + len(str(article_id)) >= PAYLOAD_CHARS:
            payloads.append(STORED + ",".join(ids))
            ids = []
        ids.append(str(article_id))
    if ids:
        payloads.append(STORED + ",".join(ids))
    return payloads


def stored_ids(payload: str) -> list[int]:
    """The article ids a ``stored:`` notice names (none for other notices)."""
    if not payload.startswith(STORED):
        return []
    return [int(part) for part in payload.removeprefix(STORED).split(",") if part]


REFRESH_TASK = "newsbot:refresh_source"
EMBED_TASK = "newsbot:embed_new_passages"
REINDEX_TASK = "newsbot:reindex"


async def _defer_once(app: procrastinate.App, task: str, key: str, **arguments: object) -> int:
    """Queue ``task`` unless a job with this key is waiting already; that job's id either way.

    ``key`` is both the job's lock (never two running at once) and its queueing lock (never
    two waiting at once).
    """
    from procrastinate.exceptions import AlreadyEnqueued

    try:
        return await app.configure_task(task, lock=key, queueing_lock=key).defer_async(
            **arguments  # type: ignore[arg-type]
        )
    except AlreadyEnqueued:
        waiting = await app.job_manager.list_jobs_async(queueing_lock=key, status="todo")
        for job in waiting:
            assert job.id is not None
            return job.id
        # It started in the meantime: queue this one behind it.
        return await _defer_once(app, task, key, **arguments)


def refresh_key(source_id: int) -> str:
    """The lock and queueing lock of a source's refreshes."""
    return f"source:{source_id}"


async def defer_refresh(app: procrastinate.App, source_id: int, force: bool = False) -> int:
    """Queue a refresh of one source; ``force`` fetches it even when it is not due."""
    return await _defer_once(
        app, REFRESH_TASK, refresh_key(source_id), source_id=source_id, force=force
    )


async def defer_embedding(app: procrastinate.App) -> int:
    """Queue the embedding of every stored passage that has no vector yet."""
    return await _defer_once(app, EMBED_TASK, "embed")


async def defer_reindex(app: procrastinate.App) -> int:
    return await _defer_once(app, REINDEX_TASK, "reindex")
