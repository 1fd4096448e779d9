"""The index type a sync builds: exact or IVF by size, or as the setting says."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from sqlalchemy import Engine

from index import segments
from index.embedder import Embedder
from index.search import Retriever
from ingest.extract import RawArticle
from ingest.pipeline import store_raw_articles
from tests.index.words import WordEmbedder

TOPICS = "tram harbour budget library ferry school museum airport market bridge".split()


def stories(count: int) -> list[RawArticle]:
    return [
        RawArticle(
            title=f"{TOPICS[i % 10].title()} report {i}",
            body=f"The council debated the {TOPICS[i % 10]} plan number {i} on Monday evening.",
            key=f"story-{i}",
        )
        for i in range(count)
    ]


def test_the_ivf_setting_builds_a_trained_index_that_answers_and_can_go_back(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    """Index type "ivf" gives an IVF index with its recall in the manifest; "exact" undoes it."""
    store_raw_articles(sqlite_engine, stories(1500), "ledger")
    embedder = cast(Embedder, WordEmbedder())
    ivf = Retriever(sqlite_engine, embedder, tmp_path / "index", index_type="ivf")
    ivf.sync()
    manifest = segments.read_manifest(tmp_path / "index")
    assert manifest is not None and manifest.kind == "ivf" and manifest.count == 1500
    assert manifest.recall_at_10 is not None and manifest.recall_at_10 >= 0.95
    assert len(ivf.search("ferry plan number 1234", k=3)) == 3
    exact = Retriever(sqlite_engine, embedder, tmp_path / "index", index_type="exact")
    exact.sync()
    manifest = segments.read_manifest(tmp_path / "index")
    assert manifest is not None and manifest.kind == "exact" and manifest.count == 1500
