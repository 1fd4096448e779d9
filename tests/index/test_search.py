"""The retriever against a real database, real FAISS and the real packaged model."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from index import segments
from index.embedder import Embedder
from index.search import Hit, Retriever, SearchFilters
from ingest.db import session_scope
from ingest.extract import RawArticle
from ingest.pipeline import store_raw_articles
from ingest.sources import remove_source
from ingest.store import passages_by_id

pytestmark = pytest.mark.slow

TRAM = RawArticle(
    title="Council approves tram line",
    body="Harbor City Council approved the Eastshore tram line on Wednesday, 9 votes to 4.",
    key="tram",
    published_at=datetime(2026, 3, 12, tzinfo=UTC),
)
FIRE = RawArticle(
    title="Wildfire contained",
    body="Firefighters said the Sorrel Ridge wildfire was 65 percent contained on Tuesday.",
    key="fire",
    published_at=datetime(2025, 8, 26, tzinfo=UTC),
)


FERRY = RawArticle(
    title="Ferry timetable changes",
    body="The Northgate ferry leaves every twenty minutes from Monday, the harbour office said.",
    key="ferry",
    published_at=datetime(2026, 2, 2, tzinfo=UTC),
)


def passage_texts(retriever: Retriever, hits: list[Hit]) -> list[str]:
    """The stored text of each hit, in order."""
    with session_scope(retriever.engine) as session:
        found = passages_by_id(session, [hit.passage_id for hit in hits])
    return [found[hit.passage_id].text for hit in hits]


class CountingEmbedder(Embedder):
    """The real model, counting how many passages it is asked to embed."""

    def __init__(self, real: Embedder) -> None:
        self.__dict__.update(real.__dict__)
        self.embedded = 0

    def embed(self, texts, progress=None, batch_size=64):
        self.embedded += len(texts)
        return super().embed(texts, progress, batch_size)


@pytest.fixture
def retriever(engine: Engine, embedder: Embedder, tmp_path: Path) -> Retriever:
    return Retriever(engine, CountingEmbedder(embedder), tmp_path / "index")


def test_relevant_passage_ranks_first(retriever: Retriever) -> None:
    """A question about the tram finds the tram passage first."""
    store_raw_articles(retriever.engine, [TRAM, FIRE], "ledger")
    retriever.sync()
    hits = retriever.search("Did the council approve the tram?", k=2)
    assert len(hits) == 2
    assert hits[0].score > hits[1].score
    assert passage_texts(retriever, hits[:1]) == [TRAM.body]


def test_reindex_of_unchanged_corpus_embeds_nothing(retriever: Retriever) -> None:
    """Cached embeddings make a full rebuild of the same passages free."""
    store_raw_articles(retriever.engine, [TRAM, FIRE], "ledger")
    retriever.sync()
    counter = retriever.embedder
    assert isinstance(counter, CountingEmbedder)
    assert counter.embedded == 2
    report = retriever.rebuild()
    assert (report.embedded, report.total, counter.embedded) == (0, 2, 2)


def test_ingest_embeds_only_new_passages(retriever: Retriever) -> None:
    """Adding one article embeds its passage alone and keeps the rest."""
    store_raw_articles(retriever.engine, [TRAM], "ledger")
    retriever.sync()
    store_raw_articles(retriever.engine, [FIRE], "ledger")
    report = retriever.sync()
    assert (report.added, report.embedded, report.total) == (1, 1, 2)


def test_removed_source_leaves_the_index(retriever: Retriever) -> None:
    """After a source is removed, a sync drops its vectors."""
    report = store_raw_articles(retriever.engine, [TRAM], "ledger")
    store_raw_articles(retriever.engine, [FIRE], "dispatch")
    retriever.sync()
    with session_scope(retriever.engine) as session:
        remove_source(session, report.source_id)
    assert retriever.sync().removed == 1
    assert retriever.searchable_count() == 1


def test_guilds_see_only_their_sources_and_global_ones(retriever: Retriever) -> None:
    """Server 1 never gets server 2's passages; both see global sources."""
    store_raw_articles(retriever.engine, [TRAM], "server one", guild_id=1)
    store_raw_articles(retriever.engine, [FIRE], "server two", guild_id=2)
    store_raw_articles(retriever.engine, [FERRY], "wire")  # a global source
    retriever.sync()
    one = retriever.search("wildfire contained", k=5, filters=SearchFilters(guild_id=1))
    assert sorted(passage_texts(retriever, one)) == sorted([TRAM.body, FERRY.body])
    two = retriever.search("tram line approved", k=5, filters=SearchFilters(guild_id=2))
    assert sorted(passage_texts(retriever, two)) == sorted([FIRE.body, FERRY.body])
    # A server with no sources of its own still sees the global one, and only that.
    assert retriever.searchable_count(SearchFilters(guild_id=3)) == 1


def test_as_of_hides_later_articles(retriever: Retriever) -> None:
    """Asking as of 2025-09-01 cannot find an article published in 2026."""
    store_raw_articles(retriever.engine, [TRAM, FIRE], "ledger")
    retriever.sync()
    filters = SearchFilters(as_of=datetime(2025, 9, 1, tzinfo=UTC))
    assert retriever.searchable_count(filters) == 1


def test_model_change_forces_rebuild(engine: Engine, embedder: Embedder, tmp_path: Path) -> None:
    """An index built with another model is rebuilt, not mixed with new vectors."""
    store_raw_articles(engine, [TRAM], "ledger")
    first = Retriever(engine, embedder, tmp_path / "index")
    first.sync()
    renamed = CountingEmbedder(embedder)
    renamed.name = "another-model"
    second = Retriever(engine, renamed, tmp_path / "index")
    report = second.sync()
    assert report.rebuilt and renamed.embedded == 1
    manifest = segments.read_manifest(tmp_path / "index")
    assert manifest is not None and manifest.model == "another-model"


def test_reader_keeps_old_index_until_swap(
    engine: Engine, embedder: Embedder, tmp_path: Path
) -> None:
    """A second retriever (the bot) sees new passages only once the writer publishes."""
    store_raw_articles(engine, [TRAM], "ledger")
    writer = Retriever(engine, embedder, tmp_path / "index")
    writer.sync()
    reader = Retriever(engine, embedder, tmp_path / "index")
    assert reader.searchable_count() == 1
    store_raw_articles(engine, [FIRE], "ledger")
    assert reader.searchable_count() == 1
    writer.sync()
    assert reader.searchable_count() == 2


KILLED_BEFORE_SYNC = """
import os, signal, sys
import index.search
# The process dies the moment it would start the index sync, after its commit.
index.search.Retriever.sync = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
from bot.cli import app
app(sys.argv[1:])
"""


def test_removal_killed_before_the_index_sync_is_repaired_on_next_open(
    embedder: Embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After `sources remove` dies by SIGKILL between commit and sync, the next `ask`/`stats`
    searches and counts only the passages still stored."""
    from typer.testing import CliRunner

    from bot.cli import app
    from ingest.db import open_engine

    data = tmp_path / "data"
    engine = open_engine(f"sqlite:///{data / 'newsbot.db'}")
    store_raw_articles(engine, [TRAM], "ledger")
    fire = store_raw_articles(engine, [FIRE], "courier")
    Retriever(engine, embedder, data / "index").sync()
    env = {**os.environ, "NEWSBOT_DATA_DIR": str(data)}
    env.pop("NEWSBOT_DATABASE_URL", None)
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_BEFORE_SYNC, "sources", "remove", str(fire.source_id)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    manifest = segments.read_manifest(data / "index")
    assert manifest is not None and manifest.count == 2  # the orphan is still indexed
    monkeypatch.setenv("NEWSBOT_DATA_DIR", str(data))
    monkeypatch.delenv("NEWSBOT_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    output = CliRunner().invoke(app, ["stats"], catch_exceptions=False).output
    assert "passages: 1" in output and "index:    1 vectors" in output
    assert "search:   exact search" in output
    assert Retriever(engine, embedder, data / "index").searchable_count() == 1


def test_a_reader_opening_an_index_with_orphans_repairs_it(
    engine: Engine, embedder: Embedder, tmp_path: Path
) -> None:
    """A process that opens an index holding deleted passages syncs it before answering."""
    store_raw_articles(engine, [TRAM], "ledger")
    fire = store_raw_articles(engine, [FIRE], "courier")
    Retriever(engine, embedder, tmp_path / "index").sync()
    with session_scope(engine) as session:
        remove_source(session, fire.source_id)
    reader = Retriever(engine, embedder, tmp_path / "index")
    assert reader.searchable_count() == 1
    assert len(reader.search("wildfire contained", k=5)) == 1  # the orphan is not found
    manifest = segments.read_manifest(tmp_path / "index")
    assert manifest is not None and manifest.count == 1
