"""A full index build from the database, streamed: the base segment of every stored passage.

What a rebuild costs at a million passages is reading them and their cached vectors, BM25
tokenizing, and FAISS assignment; none of it needs one Python object per passage or the
corpus's vectors twice in memory. So:

1. Passages without a cached vector are embedded first, batch by batch, each batch committed
   to the cache (a killed build loses one batch). In queue mode (``embed_passages`` off)
   they are left out instead, for a later sync once a worker has embedded them.
2. In one read snapshot, two streaming passes over the passages that have a cached vector,
   in id order: the first reads the catalog and the text, which worker processes tokenize
   (both cores) while this one reads on; the second reads the vectors chunk by chunk into
   FAISS (trained first on a sample fetched by text hash, for an IVF index). Only the FAISS
   index itself holds every vector; the exact top 10 that measures an IVF index's recall is
   kept as the chunks go by.

The segment is the same as ``IndexWriter._segment`` makes of the same passages (tested).
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np
from sqlalchemy import Connection, Engine, Select, and_, select

from index import lexical
from index.cache import CHUNK as IN_CHUNK
from index.cache import model_id
from index.embedder import Embedder
from index.lexical import EncodedChunk, Postings, PostingsBuilder, document_text
from index.precompute import embed_uncached
from index.segments import Segment
from index.vectors import (
    IVF,
    NO_DATE,
    Catalog,
    IndexKind,
    IvfPlan,
    TopTen,
    VectorIndex,
    enough_probes,
    kind_for,
)
from ingest.models import Article, CachedEmbedding, Passage, Source

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
ROWS = 20_000  # rows read (and tokenized) at once
# Below this many passages worker processes cost more to start than they save.
PARALLEL_FROM = 50_000
IN_FLIGHT = 4  # chunks handed to the tokenizing workers and not yet collected


@dataclass
class FullBuild:
    segment: Segment
    embedded: int  # passage texts embedded for it
    waiting: tuple[int, ...]  # stored passages left out: no cached vector yet (queue mode)


def build_segment(
    engine: Engine,
    embedder: Embedder,
    index_type: IndexKind,
    embed_passages: bool,
    progress: Progress | None,
) -> FullBuild:
    """A segment of every stored passage that has (or now gets) a cached vector."""
    embedded = embed_uncached(engine, embedder, progress) if embed_passages else 0
    number = model_id(engine, embedder.name, create=True)
    assert number is not None  # created if missing
    with _snapshot(engine) as connection:
        read = _read_passages(connection, number)
        kind = kind_for(len(read.catalog.ids), index_type)
        vectors = _read_vectors(connection, number, read, embedder.dimension, kind)
    vectors.model = embedder.name
    segment = Segment(
        vectors,
        read.catalog,
        read.positions,
        read.chars,
        read.outlets,
        read.outlet_names,
        read.lexical,
        read.titles,
    )
    return FullBuild(segment, embedded, read.waiting)


# --- step 2: one snapshot, two passes ----------------------------------------------------


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection whose reads all see one snapshot of the database."""
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            if engine.dialect.name == "sqlite":
                # pysqlite starts no transaction for reads: each SELECT would be its own
                # snapshot. In WAL mode an explicit one does not block writers.
                connection.exec_driver_sql("BEGIN")
            yield connection


def _with_vector(number: int) -> Any:
    """The join condition of a passage and its cached vector under model ``number``."""
    return and_(CachedEmbedding.model_id == number, CachedEmbedding.text_hash == Passage.text_hash)


@dataclass
class _Read:
    """The first pass: everything of the segment but its vectors."""

    catalog: Catalog
    positions: np.ndarray
    chars: np.ndarray
    outlets: np.ndarray
    outlet_names: list[str]
    hashes: np.ndarray  # bytes (S64) text hash per row, to fetch vectors by
    lexical: Postings
    titles: Postings
    waiting: tuple[int, ...]  # stored passages without a cached vector, left out


def passages_query(*extra: Any) -> Select[Any]:
    """Each stored passage's catalog columns (id, server, source, article, date, outlet,
    title, text hash), then ``extra`` columns, in passage id order."""
    return (
        select(
            Passage.id,
            Source.guild_id,
            Source.id,
            Article.id,
            Article.published_at,
            Article.outlet,
            Article.title,
            Passage.text_hash,
            *extra,
        )
        .join(Article, Passage.article_id == Article.id)
        .join(Source, Article.source_id == Source.id)
        .order_by(Passage.id)
    )


def _read_passages(connection: Connection, number: int) -> _Read:
    query = passages_query(Passage.position, Passage.text, CachedEmbedding.text_hash).outerjoin(
        CachedEmbedding, _with_vector(number)
    )
    wide: list[list[np.ndarray]] = [[] for _ in range(6)]  # the catalog's int64 columns
    narrow: list[list[np.ndarray]] = [[] for _ in range(3)]  # positions, chars, outlets
    hashes: list[np.ndarray] = []
    waiting: list[int] = []
    names: dict[str, int] = {}
    with _Tokenizer() as tokenizer:
        result = connection.execution_options(yield_per=ROWS).execute(query)
        for part in result.partitions():
            waiting.extend(row[0] for row in part if row[-1] is None)
            rows = [row[:-1] for row in part if row[-1] is not None]
            if not rows:
                continue
            ids, guilds, sources, articles, published, outlets, heads, digests, places, texts = zip(
                *rows, strict=True
            )
            stamps = [int(p.timestamp()) if p is not None else NO_DATE for p in published]
            contents = list(map(contents_digest, heads, digests))
            for column, values in zip(
                wide, (ids, guilds, sources, articles, stamps, contents), strict=True
            ):
                column.append(np.array(values, dtype=np.int64))
            codes = [names.setdefault(o or "", len(names)) for o in outlets]
            for column, values in zip(narrow, (places, list(map(len, texts)), codes), strict=True):
                column.append(np.array(values, dtype=np.int32))
            hashes.append(np.array(digests, dtype="S64"))
            tokenizer.add(list(map(document_text, heads, texts)), list(heads))
        lexical_postings, title_postings = tokenizer.finish()
    catalog = Catalog(*(_joined(column, np.int64) for column in wide))
    positions, chars, outlet_codes = (_joined(column, np.int32) for column in narrow)
    return _Read(
        catalog,
        positions,
        chars,
        outlet_codes,
        list(names),
        _joined(hashes, np.dtype("S64")),
        lexical_postings,
        title_postings,
        tuple(waiting),
    )


def _joined(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)


class _Tokenizer:
    """BM25 postings of the documents and of the titles, tokenized in worker processes.

    Tokenizing is the build's largest Python cost; chunks go to two spawned workers (a
    forked one could inherit FAISS's or torch's threads mid-lock) while this process reads
    on, and come back in order. Small builds tokenize here.
    """

    def __init__(self) -> None:
        self.documents, self.titles = PostingsBuilder(), PostingsBuilder()
        self._pool: ProcessPoolExecutor | None = None
        self._pending: deque[Future[tuple[EncodedChunk, EncodedChunk]]] = deque()
        self._waiting: list[tuple[list[str], list[str]]] = []  # before the pool is worth it
        self._seen = 0

    def __enter__(self) -> _Tokenizer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def add(self, documents: list[str], titles: list[str]) -> None:
        self._seen += len(documents)
        if self._pool is None and self._seen >= PARALLEL_FROM and (os.cpu_count() or 1) > 1:
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(2, mp_context=context)
        if self._pool is None:
            self._waiting.append((documents, titles))
            return
        for waiting in self._waiting:
            self._pending.append(self._pool.submit(_encode_pair, *waiting))
        self._waiting.clear()
        self._pending.append(self._pool.submit(_encode_pair, documents, titles))
        while len(self._pending) > IN_FLIGHT:
            self._collect()

    def _collect(self) -> None:
        documents, titles = self._pending.popleft().result()
        self.documents.add_encoded(documents)
        self.titles.add_encoded(titles)

    def finish(self) -> tuple[Postings, Postings]:
        while self._pending:
            self._collect()
        for documents, titles in self._waiting:
            self.documents.add(documents)
            self.titles.add(titles)
        return self.documents.finish(), self.titles.finish()


_worker_terms: dict[str, lexical._Terms] = {}


def _encode_pair(documents: list[str], titles: list[str]) -> tuple[EncodedChunk, EncodedChunk]:
    """In a worker: both postings of one chunk; stemmed words are kept for its next chunks."""
    terms = _worker_terms.setdefault("documents", lexical._Terms())
    title_terms = _worker_terms.setdefault("titles", lexical._Terms())
    return lexical.encode(documents, terms), lexical.encode(titles, title_terms)


def _read_vectors(
    connection: Connection, number: int, read: _Read, dimension: int, kind: str
) -> VectorIndex:
    """The second pass: the cached vectors in id order, into an exact or a trained IVF index."""
    catalog = read.catalog
    index = VectorIndex("", dimension)
    index.catalog = catalog
    if len(catalog.ids) == 0:
        return index
    faiss.omp_set_num_threads(os.cpu_count() or 1)  # this thread's FAISS work: both cores
    plan: IvfPlan | None = None
    top: TopTen | None = None
    if kind == IVF:
        plan = IvfPlan.for_count(len(catalog.ids))
        wanted = np.concatenate([plan.sample, plan.queries])
        known = _vectors_by_hash(connection, number, read.hashes[wanted], dimension)
        index.faiss = plan.trained(known[: len(plan.sample)])
        top = TopTen(known[len(plan.sample) :])
        index.kind = IVF
    query = (
        select(Passage.id, CachedEmbedding.vector)
        .join(Article, Passage.article_id == Article.id)
        .join(Source, Article.source_id == Source.id)
        .join(CachedEmbedding, _with_vector(number))
        .order_by(Passage.id)
    )
    at = 0
    result = connection.execution_options(yield_per=ROWS).execute(query)
    for rows in result.partitions():
        ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        if not np.array_equal(ids, catalog.ids[at : at + len(ids)]):
            raise RuntimeError("the passages changed between two reads of one snapshot")
        block = _vectors_of([row[1] for row in rows], dimension)
        index.faiss.add_with_ids(block, ids)
        if top is not None:
            top.see(block)
        at += len(ids)
    if at != len(catalog.ids):
        raise RuntimeError("the passages changed between two reads of one snapshot")
    if plan is not None and top is not None:
        index.probes, index.recall_at_10 = enough_probes(index.faiss, top.queries, top.scores())
    return index


def _vectors_of(blobs: list[bytes], dimension: int) -> np.ndarray:
    block = np.frombuffer(b"".join(blobs), dtype=np.float32)
    if len(block) != len(blobs) * dimension:
        raise ValueError(f"cached vectors are not all of dimension {dimension}: rebuild them")
    return block.reshape(len(blobs), dimension)


def _vectors_by_hash(
    connection: Connection, number: int, hashes: np.ndarray, dimension: int
) -> np.ndarray:
    """The cached vectors of these text hashes, row-aligned with them."""
    wanted = [h.decode() for h in hashes]
    unique = list(dict.fromkeys(wanted))
    found: dict[str, bytes] = {}
    for start in range(0, len(unique), IN_CHUNK):
        query = select(CachedEmbedding.text_hash, CachedEmbedding.vector).where(
            CachedEmbedding.model_id == number,
            CachedEmbedding.text_hash.in_(unique[start : start + IN_CHUNK]),
        )
        found.update((digest, blob) for digest, blob in connection.execute(query))
    return _vectors_of([found[h] for h in wanted], dimension)


def contents_digest(title: str, text_hash: str) -> int:
    """What an id's vector and BM25 documents were made from, in 64 bits."""
    digest = hashlib.blake2b(f"{title}\x1f{text_hash}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True) or 1
