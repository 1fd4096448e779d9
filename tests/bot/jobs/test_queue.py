"""The job queue's set-up: refused without PostgreSQL, its schema made once, jobs queued once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from bot.cli import app
from bot.jobs.queue import defer_refresh, open_queue
from bot.jobs.queue_schema import ensure_queue_schema
from tests.bot.conftest import make_settings


@pytest.mark.parametrize("command", ["worker", "run"])
def test_queue_mode_on_sqlite_is_refused_in_one_line(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NEWSBOT_JOBS=queue with the default SQLite database says what it needs."""
    monkeypatch.setenv("NEWSBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("NEWSBOT_JOBS", "queue")
    monkeypatch.delenv("NEWSBOT_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, [command, "--quiet"] if command == "run" else [command])
    assert result.exit_code == 1
    assert "NEWSBOT_JOBS=queue needs a PostgreSQL database" in result.output
    assert "Traceback" not in result.output


def test_a_worker_without_the_queue_setting_says_how_to_set_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`newsbot worker` in the default (inline) mode explains instead of waiting for nothing."""
    monkeypatch.setenv("NEWSBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("NEWSBOT_JOBS", raising=False)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["worker"])
    assert result.exit_code == 1
    assert "set NEWSBOT_JOBS=queue" in result.output


@pytest.mark.postgres
def test_processes_starting_together_make_the_queue_schema_once(
    queue_database: tuple[str, Engine],
) -> None:
    """Three starts at once on a new database: no error, and the queue's tables are there."""
    _, engine = queue_database
    errors: list[BaseException] = []

    def start() -> None:
        try:
            ensure_queue_schema(engine)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    ensure_queue_schema(engine)  # and once more, as every later start does
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM procrastinate_jobs")).scalar() == 0


@pytest.mark.postgres
async def test_a_source_queued_twice_is_one_waiting_job(
    queue_database: tuple[str, Engine], tmp_path: Path
) -> None:
    """The schedule and /source refresh queueing one source meet in the same job."""
    url, engine = queue_database
    settings = make_settings(tmp_path, database_url=url, jobs="queue")
    async with open_queue(settings, engine) as queue:
        first = await defer_refresh(queue, 7)
        again = await defer_refresh(queue, 7, force=True)
        other = await defer_refresh(queue, 8)
    assert first == again != other
