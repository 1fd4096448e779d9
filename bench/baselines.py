"""The standard recipes the product is measured against, each with a hard "as of" cut.

* BM25 alone over the product's passages (bm25s, the same tokenizer, passage text only);
* dense alone: the product's FAISS vectors of those passages, exact search;
* reciprocal-rank fusion of the two (k = 60, the constant from Cormack et al. 2009);
* LangChain's recursive splitter (1,000 characters, 100 overlap) over each article's text,
  embedded with the same model, dense only: what most people would assemble instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import faiss
import numpy as np
from sqlalchemy import Engine, select

from bench.realtimeqa import CorpusArticle
from bench.vector_cache import VectorCache
from index.embedder import Embedder
from index.lexical import LexicalIndex
from index.live import LiveIndex
from index.vectors import NO_DATE, VectorIndex
from ingest.db import session_scope
from ingest.models import Article, Passage

log = logging.getLogger(__name__)

POOL = 100
RRF_K = 60
CHUNK_CHARS = 1000
CHUNK_OVERLAP = 100


@dataclass(frozen=True)
class Retrieved:
    """One passage a retriever would quote: its text and the article (canonical URL) it is from."""

    text: str
    article: str
    score: float
    title: str = ""


Search = Callable[[str, datetime, int], list[Retrieved]]


class PassageTable:
    """Every stored passage of the benchmark database, row-aligned with sorted passage ids."""

    def __init__(self, engine: Engine) -> None:
        query = (
            select(Passage.id, Passage.text, Article.url, Article.published_at, Article.title)
            .join(Article, Passage.article_id == Article.id)
            .order_by(Passage.id)
        )
        with session_scope(engine) as session:
            rows = session.execute(query).all()
        self.ids = np.array([r[0] for r in rows], dtype=np.int64)
        self.texts = [r[1] for r in rows]
        self.articles = [r[2] or "" for r in rows]
        self.titles = [r[4] or "" for r in rows]
        self.published = np.array(
            [int(r[3].timestamp()) if r[3] else NO_DATE for r in rows], dtype=np.int64
        )

    def visible(self, as_of: datetime) -> np.ndarray:
        """The hard cut: undated passages, and dated ones published by ``as_of``."""
        return (self.published == NO_DATE) | (self.published <= int(as_of.timestamp()))

    def rows(self, ids: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.ids, ids)

    def retrieved(self, rows: np.ndarray, scores: np.ndarray) -> list[Retrieved]:
        return [
            Retrieved(self.texts[r], self.articles[r], float(s), self.titles[r])
            for r, s in zip(rows.tolist(), scores.tolist(), strict=True)
        ]


def _top(scores: np.ndarray, mask: np.ndarray, k: int) -> np.ndarray:
    """Rows of the ``k`` best scores among ``mask``, best first (positive scores only)."""
    masked = np.where(mask, scores, -np.inf)
    k = min(k, int(mask.sum()))
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    top = np.argpartition(-masked, k - 1)[:k]
    top = top[np.argsort(-masked[top], kind="stable")]
    return top[np.isfinite(masked[top])]


class Bm25Baseline:
    def __init__(self, table: PassageTable) -> None:
        self.table = table
        self.lexical = LexicalIndex.build(list(zip(table.ids.tolist(), table.texts, strict=True)))

    def ranked_rows(self, question: str, as_of: datetime, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores = self.lexical.scores(question)
        mask = self.table.visible(as_of) & (scores > 0)
        rows = _top(scores, mask, k)
        return rows, scores[rows]

    def search(self, question: str, as_of: datetime, k: int) -> list[Retrieved]:
        return self.table.retrieved(*self.ranked_rows(question, as_of, k))


class DenseBaseline:
    def __init__(
        self, table: PassageTable, index: VectorIndex | LiveIndex, embedder: Embedder
    ) -> None:
        self.table = table
        self.index = index
        self.embedder = embedder

    def ranked_rows(self, question: str, as_of: datetime, k: int) -> tuple[np.ndarray, np.ndarray]:
        visible = self.table.visible(as_of)
        allowed = None if visible.all() else self.table.ids[visible]
        ids, scores = self.index.search(self.embedder.embed_query(question), k, allowed)
        return self.table.rows(ids), scores

    def search(self, question: str, as_of: datetime, k: int) -> list[Retrieved]:
        return self.table.retrieved(*self.ranked_rows(question, as_of, k))


class RrfBaseline:
    def __init__(self, bm25: Bm25Baseline, dense: DenseBaseline) -> None:
        self.bm25 = bm25
        self.dense = dense

    def search(self, question: str, as_of: datetime, k: int) -> list[Retrieved]:
        fused: dict[int, float] = {}
        for rows, _ in (
            self.bm25.ranked_rows(question, as_of, POOL),
            self.dense.ranked_rows(question, as_of, POOL),
        ):
            for rank, row in enumerate(rows.tolist()):
                fused[row] = fused.get(row, 0.0) + 1.0 / (RRF_K + rank + 1)
        best = sorted(fused.items(), key=lambda item: -item[1])[:k]
        rows = np.array([r for r, _ in best], dtype=np.int64)
        return self.bm25.table.retrieved(rows, np.array([s for _, s in best]))


class ChunkBaseline:
    """LangChain recursive chunks of each article's text, dense search over them."""

    def __init__(
        self, articles: list[CorpusArticle], embedder: Embedder, cache: VectorCache
    ) -> None:
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        splitter = RecursiveCharacterTextSplitter(
            chunk_size=CHUNK_CHARS, chunk_overlap=CHUNK_OVERLAP
        )
        self.texts: list[str] = []
        self.articles: list[str] = []
        self.titles: list[str] = []
        published: list[int] = []
        for article in articles:
            when = article.published_at
            stamp = int(when.timestamp()) if when else NO_DATE
            for chunk in splitter.split_text(article.text):
                self.texts.append(chunk)
                self.articles.append(article.key)
                self.titles.append(article.title)
                published.append(stamp)
        self.published = np.array(published, dtype=np.int64)
        self.embedder = embedder
        vectors = cache.vectors(embedder, self.texts, label="LangChain chunks")
        self.index = faiss.IndexFlatIP(embedder.dimension)
        self.index.add(vectors)
        log.info("LangChain baseline: %d chunks", len(self.texts))

    def search(self, question: str, as_of: datetime, k: int) -> list[Retrieved]:
        visible = (self.published == NO_DATE) | (self.published <= int(as_of.timestamp()))
        query = self.embedder.embed_query(question).reshape(1, -1)
        # FAISS reads bit (id & 7) of byte (id >> 3): little-endian bit order.
        bits = np.packbits(visible, bitorder="little")
        selector = faiss.IDSelectorBitmap(len(visible), faiss.swig_ptr(bits))
        params = faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]
        scores, found = self.index.search(query, k, params=params)
        return [
            Retrieved(self.texts[i], self.articles[i], float(s), self.titles[i])
            for i, s in zip(found[0].tolist(), scores[0].tolist(), strict=True)
            if i >= 0
        ]


def baseline_searches(
    engine: Engine,
    index: VectorIndex | LiveIndex,
    embedder: Embedder,
    rows: Sequence[str],
    chunks: Callable[[], ChunkBaseline],
) -> dict[str, Search]:
    """The search of each baseline row in ``rows``, by row name; each built only when asked
    (``chunks`` makes the LangChain row, which embeds its own chunks)."""
    wanted = set(rows)
    table = PassageTable(engine)
    searches: dict[str, Search] = {}
    bm25 = Bm25Baseline(table) if {"bm25", "rrf"} & wanted else None
    dense = DenseBaseline(table, index, embedder) if {"dense", "rrf"} & wanted else None
    if bm25 is not None and "bm25" in wanted:
        searches["bm25"] = bm25.search
    if dense is not None and "dense" in wanted:
        searches["dense"] = dense.search
    if bm25 is not None and dense is not None and "rrf" in wanted:
        searches["rrf"] = RrfBaseline(bm25, dense).search
    if "langchain" in wanted:
        searches["langchain"] = chunks().search
    return searches
