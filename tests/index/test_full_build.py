"""The streamed full build: the same index as the update path, and crash safety."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import cast

import numpy as np
import pytest
from sqlalchemy import Engine, delete, select

from index import full_build, segments
from index.embedder import Embedder
from index.full_build import build_segment
from index.segments import Segment
from index.updates import IndexWriter
from index.vectors import IVF, VectorIndex
from ingest.db import session_scope
from ingest.models import CachedEmbedding, Passage
from ingest.pipeline import store_raw_articles
from tests.index.test_segments import REPO, GaussianWordEmbedder, stories, words_retriever


def writer_for(engine: Engine, root: Path, index_type: str = "auto") -> IndexWriter:
    return IndexWriter(engine, cast(Embedder, GaussianWordEmbedder()), root, index_type)  # type: ignore[arg-type]


def same_segment(streamed: Segment, reference: Segment) -> None:
    for mine, theirs in zip(streamed.catalog.columns(), reference.catalog.columns(), strict=True):
        assert mine.tolist() == theirs.tolist()
    for field in ("positions", "chars", "outlets"):
        assert getattr(streamed, field).tolist() == getattr(reference, field).tolist(), field
    assert streamed.outlet_names == reference.outlet_names
    for postings, expected in (
        (streamed.lexical, reference.lexical),
        (streamed.titles, reference.titles),
    ):
        assert postings.words == expected.words
        for field in ("indptr", "rows", "counts", "lengths"):
            assert np.array_equal(getattr(postings, field), getattr(expected, field)), field
    assert np.array_equal(streamed.vectors.all_vectors(), reference.vectors.all_vectors())


@pytest.mark.parametrize("workers", [False, True])
def test_the_streamed_build_makes_the_segment_the_update_path_makes(
    sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: bool
) -> None:
    """Read in small chunks (and tokenized in worker processes), the base segment holds the
    catalog, facts, postings and vectors that building it from the whole catalog gives."""
    monkeypatch.setattr(full_build, "ROWS", 37)
    monkeypatch.setattr(full_build, "PARALLEL_FROM", 1 if workers else 10**9)
    store_raw_articles(sqlite_engine, stories(30, 21), "ledger")
    store_raw_articles(sqlite_engine, stories(20, 22, "w"), "wire")
    writer = writer_for(sqlite_engine, tmp_path / "index")
    built = build_segment(
        sqlite_engine, writer.embedder, "auto", embed_passages=True, progress=None
    )
    streamed = built.segment
    assert built.embedded == len(streamed) == 150 and built.waiting == ()
    catalog, outlets = writer._catalog(None)
    reference, again = writer._segment(catalog, outlets, None)
    assert again == 0  # every vector came from the cache the streamed build filled
    same_segment(streamed, reference)


def test_a_streamed_ivf_build_is_the_ivf_index_built_from_all_vectors(
    sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Trained on the same sample and filled chunk by chunk, the IVF index probes as many
    lists, measures the same recall and answers as the one built from every vector at once."""
    monkeypatch.setattr(full_build, "ROWS", 250)
    store_raw_articles(sqlite_engine, stories(340, 23), "ledger")
    writer = writer_for(sqlite_engine, tmp_path / "index", "ivf")
    streamed = build_segment(sqlite_engine, writer.embedder, "ivf", True, None).segment
    assert streamed.vectors.kind == IVF and len(streamed) == 1020
    catalog, outlets = writer._catalog(None)
    reference, _ = writer._segment(catalog, outlets, None)
    data = reference.vectors.all_vectors()
    whole = VectorIndex.built(writer.embedder.name, data, catalog, IVF)
    assert (streamed.vectors.probes, streamed.vectors.recall_at_10) == (
        whole.probes,
        whole.recall_at_10,
    )
    for query in data[:20]:
        mine, theirs = streamed.vectors.search(query, 10), whole.search(query, 10)
        assert mine[0].tolist() == theirs[0].tolist()


def test_queue_mode_builds_only_passages_with_a_cached_vector(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    """With embedding left to workers, a rebuild indexes what the cache holds and embeds none."""
    store_raw_articles(sqlite_engine, stories(10, 24), "ledger")
    writer = writer_for(sqlite_engine, tmp_path / "index")
    build_segment(sqlite_engine, writer.embedder, "auto", True, None)
    with session_scope(sqlite_engine) as session:
        dropped = session.scalars(select(Passage.text_hash).limit(4)).all()
        session.execute(delete(CachedEmbedding).where(CachedEmbedding.text_hash.in_(dropped)))
    built = build_segment(sqlite_engine, writer.embedder, "auto", False, None)
    assert (built.embedded, len(built.segment)) == (0, 26)
    with session_scope(sqlite_engine) as session:
        left_out = session.scalars(select(Passage.id).where(Passage.text_hash.in_(dropped)))
        assert built.waiting == tuple(sorted(left_out))


KILLED_MID_REBUILD = """
import os, signal, sys
from pathlib import Path
import index.full_build, index.lexical
from index.search import Retriever
from ingest.db import open_engine
from tests.index.test_segments import GaussianWordEmbedder

database, root, point = sys.argv[1:]
def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
if point == "vectors":
    index.full_build._read_vectors = die  # the passages are read and tokenized
elif point == "segment files":
    index.lexical.Postings.save = die  # the vectors and catalog are written, the rest not
Retriever(open_engine(f"sqlite:///{database}"), GaussianWordEmbedder(), Path(root)).rebuild()
"""


@pytest.mark.parametrize("point", ["vectors", "segment files"])
def test_a_rebuild_killed_midway_leaves_the_previous_index_live(
    sqlite_engine: Engine, tmp_path: Path, point: str
) -> None:
    """SIGKILL during a full rebuild: the old index answers as before; the next rebuild works."""
    root = tmp_path / "index"
    store_raw_articles(sqlite_engine, stories(20, 25), "ledger")
    words_retriever(sqlite_engine, root).sync()
    old = segments.read_catalog_ids(root).tolist()
    store_raw_articles(sqlite_engine, stories(5, 26, "n"), "courier")
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            KILLED_MID_REBUILD,
            str(sqlite_engine.url.database),
            str(root),
            point,
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    assert segments.read_catalog_ids(root).tolist() == old
    reader = words_retriever(sqlite_engine, root)
    assert reader.searchable_count() == len(old)
    assert reader.search("harbor council tram", k=3)
    report = reader.rebuild()
    assert report.total == len(old) + 15
    assert reader.searchable_count() == len(old) + 15
