"""The sample corpus is offered once, to a database that never had a source."""

from __future__ import annotations

import pytest

from bot.cli import ensure_sample_corpus
from bot.resources import Resources
from ingest.db import session_scope
from ingest.sources import add_source, list_sources, remove_source
from tests.bot.conftest import MakeContext

pytestmark = pytest.mark.slow


def source_names(context: Resources) -> list[str]:
    with session_scope(context.engine) as session:
        return [s.name for s in list_sources(session)]


async def test_a_removed_sample_corpus_stays_removed(make_context: MakeContext) -> None:
    """After removing the sample (and even every source), the next start does not re-seed."""
    context = await make_context()
    ensure_sample_corpus(context, quiet=True)
    assert source_names(context) == ["sample"]
    with session_scope(context.engine) as session:
        sample = list_sources(session)[0].id
        remove_source(session, sample)
    ensure_sample_corpus(await make_context(), quiet=True)  # the next start
    assert source_names(context) == []
    assert context.retriever.searchable_count() == 0


async def test_a_database_with_sources_is_not_seeded(make_context: MakeContext) -> None:
    """A source with no articles yet (a feed not fetched) is enough to skip the sample."""
    context = await make_context()
    with session_scope(context.engine) as session:
        add_source(session, "https://feeds.example/rss.xml", "Feeds", 0)
    ensure_sample_corpus(context, quiet=True)
    assert source_names(context) == ["Feeds"]
