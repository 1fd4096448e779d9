"""Incremental updates as segments: same rankings as a fresh build, small writes, crash safety."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import cast

import numpy as np
import pytest
from sqlalchemy import Engine, select

from index import segments
from index.embedder import Embedder
from index.search import Retriever
from index.updates import MAX_SEGMENTS, merge_plan
from ingest.db import session_scope
from ingest.extract import RawArticle
from ingest.models import Article, Passage
from ingest.pipeline import store_raw_articles
from ingest.sources import remove_source
from tests.index.words import NOW, WordEmbedder, article

REPO = Path(__file__).resolve().parents[2]
WORDS = (
    "harbor council tram ferry wildfire ridge port strike union budget school mayor river "
    "bridge court judge election storm flood museum library airport rail housing clinic "
    "festival market police fire vote contract workers drought water energy solar"
).split()
QUESTIONS = [
    "What did the council decide about the tram?",
    "ferry strike union contract",
    "Was the wildfire near the ridge contained?",
    "housing budget vote",
    "Who won the election for mayor?",
    "storm flood river bridge",
    "solar energy drought water",
]


def stories(count: int, seed: int, prefix: str = "s") -> list[RawArticle]:
    """Articles of random topic words, three passages each, distinct texts."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        paragraphs = [" ".join(rng.choice(WORDS, 90)) + f" {prefix}{i}p{p}." for p in range(3)]
        title = " ".join(rng.choice(WORDS, 4)).capitalize()
        out.append(
            article(f"{prefix}{i}", title, "\n\n".join(paragraphs), NOW, outlet=f"Wire {i % 3}")
        )
    return out


class GaussianWordEmbedder(WordEmbedder):
    """A random vector per word, summed: no two different texts tie on a question exactly.

    (Exact ties at the 200th dense candidate may be broken either way by any index.)
    """

    def embed(self, texts, progress=None, batch_size=64):
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.casefold()):
                seed = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest())
                out[row] += np.random.default_rng(seed).normal(size=self.dimension)
            out[row] /= max(float(np.linalg.norm(out[row])), 1e-9)
        return out


def words_retriever(engine: Engine, root: Path) -> Retriever:
    return Retriever(engine, cast(Embedder, GaussianWordEmbedder()), root)


def same_results(updated: Retriever, fresh: Retriever) -> None:
    for question in QUESTIONS:
        mine, theirs = updated.candidates(question), fresh.candidates(question)
        assert mine.ids.tolist() == theirs.ids.tolist(), question
        assert mine.features.tobytes() == theirs.features.tobytes(), question
        assert updated.search(question, k=10) == fresh.search(question, k=10), question
    assert updated.outlets() == fresh.outlets()


def test_rankings_after_updates_and_deletions_equal_a_fresh_build(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    """Base + deltas + deleted ids rank every candidate exactly as a full rebuild does."""
    updated = words_retriever(sqlite_engine, tmp_path / "index")
    first = store_raw_articles(sqlite_engine, stories(40, 1), "ledger")
    updated.sync()
    wire = store_raw_articles(sqlite_engine, stories(15, 2, "t"), "wire")
    updated.sync()
    store_raw_articles(sqlite_engine, stories(10, 3, "u"), "courier")
    updated.sync()
    changed = replace(stories(40, 1)[5], body="A ferry strike ended when the union ratified.")
    store_raw_articles(sqlite_engine, [changed], "ledger")
    updated.sync()
    with session_scope(sqlite_engine) as session:
        remove_source(session, wire.source_id)
    updated.sync()
    manifest = segments.read_manifest(tmp_path / "index")
    assert manifest is not None and len(manifest.segments) >= 3
    assert sum(entry.deleted_count for entry in manifest.segments) >= 1
    assert first.result.passages_added == 120

    fresh = words_retriever(sqlite_engine, tmp_path / "fresh")
    fresh.rebuild()
    assert updated.searchable_count() == fresh.searchable_count()
    same_results(updated, fresh)

    assert updated.writer.merge(everything=True)
    merged = segments.read_manifest(tmp_path / "index")
    assert merged is not None and len(merged.segments) == 1
    same_results(updated, fresh)


def test_an_update_writes_only_the_new_passages(sqlite_engine: Engine, tmp_path: Path) -> None:
    """Adding an article writes one segment of its passages; the base's files stay untouched."""
    retriever = words_retriever(sqlite_engine, tmp_path / "index")
    store_raw_articles(sqlite_engine, stories(50, 4), "ledger")
    retriever.sync()
    [base] = segments.read_manifest(retriever.root).segments  # type: ignore[union-attr]
    before = {p: p.stat().st_mtime_ns for p in (retriever.root / base.name).rglob("*")}
    store_raw_articles(sqlite_engine, stories(1, 5, "new"), "wire")
    report = retriever.sync()
    manifest = segments.read_manifest(retriever.root)
    assert manifest is not None and report.added == 3 and report.total == 153
    assert [entry.rows for entry in manifest.segments] == [150, 3]
    assert {p: p.stat().st_mtime_ns for p in (retriever.root / base.name).rglob("*")} == before
    assert retriever.search("harbor council tram", k=1)


def test_apply_indexes_the_ids_it_is_given(sqlite_engine: Engine, tmp_path: Path) -> None:
    """The replica API: added ids are indexed, removed ones dropped, unknown added ones too."""
    retriever = words_retriever(sqlite_engine, tmp_path / "index")
    store_raw_articles(sqlite_engine, stories(5, 6), "ledger")
    retriever.sync()
    store_raw_articles(sqlite_engine, stories(2, 7, "late"), "wire")
    with session_scope(sqlite_engine) as session:
        late = session.scalars(
            select(Passage.id).join(Article).where(Article.key.like("late%"))
        ).all()
    report = retriever.apply(added=[*late, 10_000], removed=[1, 2])
    assert (report.added, report.removed, report.total) == (6, 2, 19)
    assert set(late) <= set(retriever.live().catalog.ids.tolist())
    assert not {1, 2} & set(retriever.live().catalog.ids.tolist())


def test_small_segments_are_merged_in_the_background(sqlite_engine: Engine, tmp_path: Path) -> None:
    """Past the segment limit a background merge folds the deltas into one; results stay."""
    retriever = words_retriever(sqlite_engine, tmp_path / "index")
    store_raw_articles(sqlite_engine, stories(60, 8), "ledger")
    retriever.sync()
    for round_ in range(MAX_SEGMENTS):
        store_raw_articles(sqlite_engine, stories(1, 9 + round_, f"r{round_}"), "wire")
        retriever.sync()
        retriever.writer.wait_for_merge()
    manifest = segments.read_manifest(retriever.root)
    assert manifest is not None and len(manifest.segments) <= MAX_SEGMENTS
    assert not merge_plan(manifest) and manifest.count == 180 + 3 * MAX_SEGMENTS
    fresh = words_retriever(sqlite_engine, tmp_path / "fresh")
    fresh.rebuild()
    same_results(retriever, fresh)


KILLED_MID_UPDATE = """
import os, signal, sys
from pathlib import Path
import index.lexical, index.segments
from index.search import Retriever
from ingest.db import open_engine
from tests.index.words import WordEmbedder

database, root, point = sys.argv[1:]
def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
if point == "segment files":
    index.lexical.Postings.save = die  # the vectors and catalog are written, the rest not
elif point == "deleted ids":
    index.segments.write_deleted = die
elif point == "manifest":
    real_replace = os.replace
    def replace(source, target):
        if str(target).endswith("manifest.json"):
            die()
        real_replace(source, target)
    os.replace = replace
elif point == "clean-up":
    index.segments.remove_unused = die
Retriever(open_engine(f"sqlite:///{database}"), WordEmbedder(), Path(root)).sync()
"""


@pytest.mark.parametrize("point", ["segment files", "deleted ids", "manifest", "clean-up"])
def test_an_update_killed_at_any_point_leaves_a_working_index(
    sqlite_engine: Engine, tmp_path: Path, point: str
) -> None:
    """SIGKILL mid-update: readers see the old index or the new one whole; a sync finishes it."""
    root = tmp_path / "index"
    removed = store_raw_articles(sqlite_engine, stories(20, 10), "ledger")
    store_raw_articles(sqlite_engine, stories(20, 11, "w"), "wire")
    words_retriever(sqlite_engine, root).sync()
    old = segments.read_catalog_ids(root).tolist()
    with session_scope(sqlite_engine) as session:
        remove_source(session, removed.source_id)
    store_raw_articles(sqlite_engine, stories(5, 12, "n"), "courier")
    with session_scope(sqlite_engine) as session:
        new = sorted(session.scalars(select(Passage.id)))
    database = sqlite_engine.url.database
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_MID_UPDATE, str(database), str(root), point],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    seen = segments.read_catalog_ids(root).tolist()
    assert seen == (new if point == "clean-up" else old)
    reader = words_retriever(sqlite_engine, root)
    assert reader.search("harbor council tram", k=3)
    reader.sync()
    assert segments.read_catalog_ids(root).tolist() == new
    assert reader.searchable_count() == len(new)
    # Only the live segments stay (hidden staging files of the crash go once they are stale).
    manifest = segments.read_manifest(root)
    assert manifest is not None
    visible = {p.name for p in root.iterdir() if not p.name.startswith(".")}
    assert visible == {segments.MANIFEST_FILE} | {entry.name for entry in manifest.segments}


UPDATING = """
import sys
from pathlib import Path
from index.search import Retriever
from ingest.db import open_engine
from ingest.pipeline import store_raw_articles
from tests.index.test_segments import GaussianWordEmbedder, stories

database, root, rounds = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
engine = open_engine(f"sqlite:///{database}")
retriever = Retriever(engine, GaussianWordEmbedder(), root)
for round_ in range(rounds):
    store_raw_articles(engine, stories(1, 100 + round_, f"c{round_}"), "wire")
    retriever.sync()
    retriever.writer.wait_for_merge()
"""


def test_a_reader_sees_each_update_whole_while_another_process_writes(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    """While a process publishes updates and merges, every load shows one whole update."""
    root = tmp_path / "index"
    store_raw_articles(sqlite_engine, stories(30, 13), "ledger")
    reader = words_retriever(sqlite_engine, root)
    reader.sync()
    rounds = MAX_SEGMENTS + 4  # enough for a merge to run among the updates
    writer = subprocess.Popen(
        [sys.executable, "-c", UPDATING, str(sqlite_engine.url.database), str(root), str(rounds)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stderr=subprocess.PIPE,
    )
    seen = set()
    while writer.poll() is None:
        live = reader.live()
        seen.add(len(live))
        assert len(live.lexical) == len(live) == len(np.unique(live.catalog.ids))
        assert set(live.facts.ids.tolist()) == set(live.catalog.ids.tolist())
    assert writer.returncode == 0, writer.stderr.read().decode() if writer.stderr else ""
    assert seen <= {90 + 3 * i for i in range(rounds + 1)} and len(seen) > 1
    assert len(reader.live()) == 90 + 3 * rounds
