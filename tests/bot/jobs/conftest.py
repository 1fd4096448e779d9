"""A PostgreSQL schema of its own for each job queue test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from ingest.db import open_engine
from tests.conftest import postgres_schema_url


@pytest.fixture
def queue_database() -> Iterator[tuple[str, Engine]]:
    """(URL, engine) of a new schema on the local server, dropped afterwards."""
    with postgres_schema_url() as url:
        engine = open_engine(url)
        yield url, engine
        engine.dispose()
