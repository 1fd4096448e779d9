"""``newsbot refresh`` and ``newsbot reindex`` at a terminal with workers (``NEWSBOT_JOBS=queue``):
queued for a real ``newsbot worker`` process, their outcome printed once the worker is done."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from index.embedder import Embedder
from index.precompute import uncached_passages
from ingest.db import open_engine, session_scope
from ingest.models import GLOBAL_GUILD, Source
from ingest.sources import add_source
from tests.bot.news_site import HARBOUR, news_site
from tests.bot.test_worker import newsbot_env, queue_settings, until_logged, worker_process
from tests.conftest import postgres_schema_url

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(600)]


def newsbot(
    settings: dict[str, str], folder: Path, *arguments: str
) -> subprocess.CompletedProcess[str]:
    folder.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *arguments],
        env=newsbot_env(settings, folder / "data"),
        cwd=folder,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )


async def test_terminal_refresh_and_reindex_are_run_by_the_workers(
    tmp_path: Path, embedder: Embedder
) -> None:
    """Not due: nothing queued; --all: the worker fetches and embeds; reindex: by a worker."""
    with postgres_schema_url() as database, news_site(harbour=HARBOUR) as site:
        settings = queue_settings(database, site)
        engine = open_engine(database)
        try:
            with session_scope(engine) as session:
                source = add_source(
                    session, site.url(site.feed_path("harbour")), "Harbour", GLOBAL_GUILD
                )
                # Due in an hour: the workers' schedule leaves it alone.
                source.next_fetch_at = datetime.now(UTC) + timedelta(hours=1)
                source_id = source.id
            with worker_process(settings, tmp_path / "worker"):
                await until_logged(tmp_path / "worker" / "worker.log", "worker ready")
                not_due = newsbot(settings, tmp_path / "cli", "refresh", "--quiet")
                requests_then = site.requests[site.feed_path("harbour")]
                forced = newsbot(settings, tmp_path / "cli", "refresh", "--all", "--quiet")
                reindexed = newsbot(settings, tmp_path / "cli", "reindex", "--quiet")
            with engine.connect() as connection:
                workers = (
                    connection.execute(
                        text("SELECT worker FROM job_reports WHERE task = 'refresh'")
                    )
                    .scalars()
                    .all()
                )
            with session_scope(engine) as session:
                fetched = session.get(Source, source_id)
                assert fetched is not None
                succeeded = fetched.last_success_at is not None
            # Every passage the refresh stored has its vector: nothing left to embed.
            left = uncached_passages(engine, embedder.name)
        finally:
            engine.dispose()
        assert site.requests[site.feed_path("harbour")] == 1

    assert not_due.returncode == 0, not_due.stderr
    assert "1 sources not due yet" in not_due.stdout and "nothing to refresh" in not_due.stdout
    assert requests_then == 0
    assert forced.returncode == 0, forced.stderr
    assert "refreshes queued for the workers" in forced.stderr
    assert f"Harbour (#{source_id}, feed): {len(HARBOUR)} new" in forced.stdout, forced.stdout
    assert "index: the workers embedded the new passages" in forced.stdout
    assert len(workers) == 1 and workers[0].endswith(tuple("0123456789"))
    assert succeeded
    assert left == {}
    assert reindexed.returncode == 0, reindexed.stderr
    assert "reindex done by a worker: 0 passages embedded" in reindexed.stdout, reindexed.stdout
