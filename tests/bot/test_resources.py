"""The process's resources are opened in one place and closed when their owner ends."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, event

from bot.resources import open_resources
from ingest.errors import InputError
from tests.bot.conftest import make_settings


def disposals(engine: Engine) -> list[Engine]:
    """Filled with ``engine`` when it is disposed."""
    seen: list[Engine] = []
    event.listen(engine, "engine_disposed", seen.append)
    return seen


async def test_leaving_disposes_the_engine_and_closes_the_fetcher(tmp_path: Path) -> None:
    """On the way out the engine is disposed and the one fetcher fetches no more."""
    async with open_resources(make_settings(tmp_path)) as resources:
        disposed = disposals(resources.engine)
        fetcher = resources.fetcher
        assert disposed == []
    assert disposed == [resources.engine]
    with pytest.raises(RuntimeError, match="async with"):
        await fetcher.fetch("https://example.com/")


async def test_the_engine_is_disposed_when_the_body_fails(tmp_path: Path) -> None:
    """An error inside the block still disposes the engine."""
    engines: list[Engine] = []
    disposed: list[Engine] = []

    async def fail_inside() -> None:
        async with open_resources(make_settings(tmp_path)) as resources:
            engines.append(resources.engine)
            disposed.extend(disposals(resources.engine))  # empty: not disposed yet
            event.listen(resources.engine, "engine_disposed", disposed.append)
            raise InputError("boom")

    with pytest.raises(InputError, match="boom"):
        await fail_inside()
    assert len(engines) == 1 and disposed == engines


async def test_a_malformed_allow_list_opens_nothing(tmp_path: Path) -> None:
    """A fetch allow-list that cannot work is refused in one line before the database opens."""
    settings = make_settings(tmp_path / "data", fetch_allow_hosts="localhost")
    with pytest.raises(InputError, match="NEWSBOT_FETCH_ALLOW_HOSTS"):
        async with open_resources(settings):
            pass
    assert not (tmp_path / "data").exists()
