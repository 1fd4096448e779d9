"""Copying a newsbot database (``migrate-to``): every table as it was, no id handed out twice."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, select

from index.embedder import Embedder
from index.search import Retriever
from ingest.database_copy import copy_database, tables
from ingest.db import open_engine, session_scope
from ingest.errors import InputError
from ingest.follows import add_follow
from ingest.models import Article, JobReport, Passage
from ingest.pipeline import ingest_paths
from ingest.sample import SAMPLE_CORPUS

pytestmark = pytest.mark.postgres


@pytest.fixture
def filled(tmp_path: Path, embedder: Embedder) -> Iterator[Engine]:
    """SQLite with the sample corpus and its vectors, a follow, a job report; its last
    passage deleted (so the highest id handed out is no longer in the table)."""
    engine = open_engine(f"sqlite:///{tmp_path / 'newsbot.db'}")
    ingest_paths(engine, [SAMPLE_CORPUS], "sample")
    Retriever(engine, embedder, tmp_path / "index").sync()
    with session_scope(engine) as session:
        add_follow(session, 5, 6, "the harbour strike", None, 7)
        session.add(JobReport(job_id=99, task="refresh", done=1, total=1))
        last = session.scalar(select(func.max(Passage.id)))
        session.execute(delete(Passage).where(Passage.id == last))
    yield engine
    engine.dispose()


def rows(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    with engine.connect() as connection:
        return {
            table.name: [
                dict(row)
                for row in connection.execute(
                    select(table).order_by(*table.primary_key.columns)
                ).mappings()
            ]
            for table in tables()
        }


def test_every_table_is_copied_as_it_is_and_ids_are_never_handed_out_again(
    filled: Engine, postgres_engine: Engine
) -> None:
    """Rows equal table by table; the next passage id is past the deleted highest one."""
    with session_scope(filled) as session:
        handed_out = (session.scalar(select(func.max(Passage.id))) or 0) + 1  # the deleted one
    seen: dict[str, int] = {}

    report = copy_database(
        filled,
        postgres_engine,
        batch_size=7,
        progress=lambda table, done, total: seen.__setitem__(table, total),
    )

    source, target = rows(filled), rows(postgres_engine)
    assert source == target
    assert set(report.rows) == {table.name for table in tables()} == set(seen)
    assert report.rows["passages"] == len(source["passages"]) == 33
    assert len(target["embedding_cache"]) >= 33 and len(target["follows"]) == 1
    with session_scope(postgres_engine) as session:
        article = session.scalars(select(Article)).first()
        assert article is not None
        passage = Passage(article_id=article.id, position=999, text="new", text_hash="x")
        session.add(passage)
        session.flush()
        assert passage.id == handed_out + 1


def test_a_filled_target_is_refused_and_replaced_when_asked(
    filled: Engine, postgres_engine: Engine
) -> None:
    """A second copy is refused in one line; with replace, the target ends as the source."""
    copy_database(filled, postgres_engine)
    with pytest.raises(InputError) as refused:
        copy_database(filled, postgres_engine)
    report = copy_database(filled, postgres_engine, replace=True)

    assert "is not empty" in str(refused.value) and "--replace" in str(refused.value)
    assert rows(filled) == rows(postgres_engine)
    assert report.rows["passages"] == 33


def test_copying_a_database_into_itself_is_refused(filled: Engine) -> None:
    """The same URL on both sides would delete the data with --replace: refused."""
    same = open_engine(filled.url.render_as_string(hide_password=False))
    try:
        with pytest.raises(InputError, match="the database newsbot is using"):
            copy_database(filled, same)
    finally:
        same.dispose()
