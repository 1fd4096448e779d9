"""BM25 over passages (with their article's title), by passage id, one postings file per segment.

Each index segment keeps its own postings (for every word, the rows holding it and how often)
and document lengths; nothing corpus-wide is baked in. A question's scores are computed from
the postings of its words with the statistics of the live passages of *every* segment (live
document count, each word's live document frequency, average live length), so an index of a
base segment plus deltas and deletions scores every passage exactly as one index built from
scratch over the same passages would. bm25s bakes idf and the average length into its score
matrix at build time, which is why the scoring here is our own (the same Lucene arithmetic,
checked against bm25s in tests/index/test_lexical.py); bm25s's stop words are still used.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

log = logging.getLogger(__name__)
# bm25s sets its logger to DEBUG when imported, which would print a line to the console on
# every index build whatever NEWSBOT_LOG_LEVEL says; the application's level decides instead.
logging.getLogger("bm25s").setLevel(logging.NOTSET)

FOLDER = "lexical"
WORDS_FILE = "words.json"
TOKEN = re.compile(r"\w\w+")
STOPWORDS = frozenset(bm25s.stopwords.STOPWORDS_EN)
K1, B = 1.5, 0.75  # bm25s's defaults, which the ranking was tuned with
_stemmer = Stemmer.Stemmer("english")
# How a question is asked, not what it is about: such a word missing from every passage is
# no sign that the story is missing (bm25s's stop words are few: "what" is not one).
QUESTION_WORDS = frozenset(
    _stemmer.stemWords(
        "what which who whom whose when where why how did does do done get got gets has have "
        "had were would can could should shall may might must many much there their they them "
        "been being about after before during than also any some other more most very just "
        "according reported report reports said says say week weeks month year years today "
        "recently recent latest new".split()
    )
)


def tokenize(text: str) -> list[str]:
    """Lower-cased, stop words dropped, Snowball-stemmed word tokens."""
    words = [w for w in TOKEN.findall(text.casefold()) if w not in STOPWORDS]
    return list(_stemmer.stemWords(words))


def document_text(title: str, passage: str) -> str:
    # The title rides along with every passage: a headline word is strong evidence that a
    # passage of that article is on topic, even when the passage itself never repeats it.
    return f"{title}\n{passage}"


class Postings:
    """One segment's inverted lists: word → (rows holding it, count in each row)."""

    def __init__(
        self,
        words: list[str],
        indptr: np.ndarray,
        rows: np.ndarray,
        counts: np.ndarray,
        lengths: np.ndarray,
    ) -> None:
        self.words = words
        self.word_ids = {word: i for i, word in enumerate(words)}
        self.indptr = indptr  # int64, word w's postings are rows[indptr[w]:indptr[w + 1]]
        self.rows = rows  # int32 rows, ascending within a word
        self.counts = counts  # int32 occurrences of the word in the row
        self.lengths = lengths  # int32 tokens per row

    def __len__(self) -> int:
        return len(self.lengths)

    @classmethod
    def build(cls, texts: Sequence[str]) -> Postings:
        """Postings of ``texts``, row ``i`` being ``texts[i]``."""
        vocab: dict[str, int] = {}
        chunks, sizes = [], []
        for start in range(0, len(texts), 10_000):  # numpy per chunk: no Python int per token
            encoded = [
                [vocab.setdefault(t, len(vocab)) for t in tokenize(text)]
                for text in texts[start : start + 10_000]
            ]
            sizes.append(np.array([len(row) for row in encoded], dtype=np.int64))
            chunks.append(np.array([t for row in encoded for t in row], dtype=np.int64))
        lengths = np.concatenate([np.zeros(0, np.int64), *sizes])
        tokens = np.concatenate([np.zeros(0, np.int64), *chunks])
        rows = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
        size = max(len(texts), 1)
        pairs, counts = np.unique(tokens * size + rows, return_counts=True)
        return cls._sorted(list(vocab), pairs, counts, lengths)

    @classmethod
    def _sorted(
        cls, words: list[str], pairs: np.ndarray, counts: np.ndarray, lengths: np.ndarray
    ) -> Postings:
        """Postings from ascending distinct ``word · rows + row`` keys and their counts."""
        size = max(len(lengths), 1)
        per_word = np.bincount(pairs // size, minlength=len(words))
        indptr = np.zeros(len(words) + 1, dtype=np.int64)
        np.cumsum(per_word, out=indptr[1:])
        rows = (pairs % size).astype(np.int32)
        return cls(words, indptr, rows, counts.astype(np.int32), lengths.astype(np.int32))

    @classmethod
    def merged(cls, parts: Sequence[tuple[Postings, np.ndarray]]) -> Postings:
        """One segment's postings from several: ``(postings, new row of each row or -1)``."""
        vocab: dict[str, int] = {}
        all_words, all_rows, all_counts = [], [], []
        size = max((int(rows.max()) + 1 for _, rows in parts if len(rows)), default=0)
        lengths = np.zeros(size, dtype=np.int64)
        for postings, new_rows in parts:
            kept = new_rows >= 0
            lengths[new_rows[kept]] = postings.lengths[kept]
            mapping = np.array([vocab.setdefault(w, len(vocab)) for w in postings.words], np.int64)
            word_of = np.repeat(np.arange(len(postings.words)), np.diff(postings.indptr))
            target = new_rows[np.asarray(postings.rows)]
            live = target >= 0
            all_words.append(mapping[word_of[live]] if len(mapping) else word_of[live])
            all_rows.append(target[live])
            all_counts.append(np.asarray(postings.counts)[live].astype(np.int64))
        if not all_words:
            return cls.build([])
        # Each new row comes from one old row, so the (word, row) pairs are already distinct.
        keys = np.concatenate(all_words) * max(size, 1) + np.concatenate(all_rows)
        order = np.argsort(keys, kind="stable")
        return cls._sorted(list(vocab), keys[order], np.concatenate(all_counts)[order], lengths)

    def column(self, word: str) -> tuple[np.ndarray, np.ndarray]:
        """The rows holding ``word`` and its count in each (empty if none)."""
        wid = self.word_ids.get(word)
        if wid is None:
            return _NO_ROWS, _NO_ROWS
        start, end = int(self.indptr[wid]), int(self.indptr[wid + 1])
        return np.asarray(self.rows[start:end]), np.asarray(self.counts[start:end])

    # --- on disk ---------------------------------------------------------------------------

    def save(self, segment_folder: Path, name: str = FOLDER) -> None:
        folder = segment_folder / name
        folder.mkdir()
        # Plain .npy files: a reader memory-maps them and reads only its words' postings.
        for field in ("indptr", "rows", "counts", "lengths"):
            np.save(folder / f"{field}.npy", getattr(self, field))
        (folder / WORDS_FILE).write_text(json.dumps(self.words, ensure_ascii=False))

    @classmethod
    def load(cls, segment_folder: Path, name: str = FOLDER) -> Postings:
        folder = segment_folder / name
        words = json.loads((folder / WORDS_FILE).read_text())
        arrays = [
            np.load(folder / f"{field}.npy", mmap_mode="r")
            for field in ("indptr", "rows", "counts", "lengths")
        ]
        return cls(words, *arrays)


_NO_ROWS = np.zeros(0, dtype=np.int32)


@dataclass
class _Part:
    postings: Postings
    rows: np.ndarray  # index row of each postings row, -1 for deleted ones


class LiveWords:
    """The words at least one live passage holds (``word in vocab``)."""

    def __init__(self, index: LexicalIndex) -> None:
        self.index = index

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and self.index.document_frequency(word) > 0


class LexicalIndex:
    """BM25 over the live rows of one or more postings; index row ``i`` is passage ``ids[i]``.

    Corpus statistics are those of the live rows alone, so scores never depend on how the
    passages are split into segments or how many deleted ones they still hold.
    """

    def __init__(self, ids: np.ndarray, parts: Sequence[tuple[Postings, np.ndarray]]) -> None:
        self.ids = np.asarray(ids, dtype=np.int64)
        self.parts = [_Part(postings, np.asarray(rows, dtype=np.int64)) for postings, rows in parts]
        total = sum(int(np.asarray(p.postings.lengths)[p.rows >= 0].sum()) for p in self.parts)
        self.average_length = total / len(self.ids) if len(self.ids) else 0.0
        self.vocab = LiveWords(self)

    @classmethod
    def empty(cls) -> LexicalIndex:
        return cls(np.zeros(0, np.int64), [])

    @classmethod
    def build(cls, documents: Sequence[tuple[int, str]]) -> LexicalIndex:
        """An index of ``(passage id, text)`` pairs, in memory (row ``i`` is document ``i``)."""
        postings = Postings.build([text for _, text in documents])
        ids = np.array([pid for pid, _ in documents], dtype=np.int64)
        return cls(ids, [(postings, np.arange(len(documents)))])

    def __len__(self) -> int:
        return len(self.ids)

    def _postings(self, word: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(index rows, counts, lengths) of the live rows holding ``word``, over all parts."""
        found = []
        for part in self.parts:
            rows, counts = part.postings.column(word)
            if len(rows) == 0:
                continue
            target = part.rows[rows]
            live = target >= 0
            found.append(
                (target[live], counts[live], np.asarray(part.postings.lengths)[rows[live]])
            )
        if not found:
            return _NO_ROWS.astype(np.int64), _NO_ROWS, _NO_ROWS
        if len(found) == 1:
            return found[0]
        return tuple(np.concatenate(column) for column in zip(*found, strict=True))  # type: ignore[return-value]

    def idf(self, word: str) -> float | None:
        """``log(1 + N/df)`` of a word live passages hold, as coverage weighs it; else None."""
        df = self.document_frequency(word)
        return float(np.float32(np.log1p(len(self.ids) / df))) if df else None

    def document_frequency(self, word: str) -> int:
        return sum(
            int(np.count_nonzero(part.rows[part.postings.column(word)[0]] >= 0))
            for part in self.parts
        )

    def terms(self, query: str) -> QueryTerms:
        """The query's words and the live postings of each, read once for scores and coverage."""
        words = tokenize(query)
        return QueryTerms(words, {word: self._postings(word) for word in dict.fromkeys(words)})

    def scores(self, query: str | QueryTerms) -> np.ndarray:
        """BM25 score of every row for ``query`` (zeros when no query word is indexed).

        Lucene's BM25 as bm25s computes it: per posting ``float32(idf · tf / (tf + k1·(1 − b
        + b·len/avg)))`` with ``idf = log(1 + (N − df + 0.5) / (df + 0.5))``, added up in the
        query's word order (a repeated word counts again).
        """
        terms = self.terms(query) if isinstance(query, str) else query
        out = np.zeros(len(self.ids), dtype=np.float32)
        count = len(self.ids)
        columns: dict[str, np.ndarray] = {}
        for word in terms.words:
            rows, tf, lengths = terms.postings[word]
            if len(rows) == 0:
                continue
            if word not in columns:
                df = len(rows)
                idf = np.float32(math.log(1 + (count - df + 0.5) / (df + 0.5)))
                tf64 = tf.astype(np.float64)
                norm = K1 * ((1 - B) + B * lengths / self.average_length) + tf64
                columns[word] = (np.float64(idf) * (tf64 / norm)).astype(np.float32)
            out[rows] += columns[word]
        return out

    def coverage(self, query: str | QueryTerms, rows: np.ndarray) -> np.ndarray:
        """Per row, the idf-weighted share of the query's distinct words it contains.

        BM25 rewards repeating one query word; a passage that names every entity of the
        question is usually the better quote, and this says so directly. A query word that no
        passage holds weighs as much as the rarest word can: a name the index has never seen
        is the surest sign that the story asked about is not indexed.
        """
        terms = self.terms(query) if isinstance(query, str) else query
        # Question words ("what", "say") are how a question is put, not what it is about: in a
        # small index they are rare, and would weigh more than the names the passage holds.
        words = sorted(set(terms.words) - QUESTION_WORDS)
        out = np.zeros(len(rows), dtype=np.float32)
        if not words:
            return out
        count = len(self.ids)
        holders = [terms.postings[word][0] for word in words]
        known = [held for held in holders if len(held)]
        weights = np.array([np.log1p(count / len(held)) for held in known], dtype=np.float64)
        weights = weights.astype(np.float32)
        unseen = len(words) - len(known)
        total = float(weights.sum()) + unseen * float(np.log1p(max(count, 1)))
        if total <= 0:
            return out  # only question words ("When?"): no key word for a passage to hold
        # Added word by word in the same order as a per-row sum of the weights it holds
        # (adding a zero changes no float), with one scatter per word instead of np.isin.
        held_by_row = np.zeros(count, dtype=bool)
        for weight, held in zip(weights, known, strict=True):
            held_by_row[held] = True
            out += np.where(held_by_row[rows], weight, np.float32(0))
            held_by_row[held] = False
        return (out / total).astype(np.float32)


@dataclass(frozen=True)
class QueryTerms:
    """A query's tokens in order, and each distinct one's (rows, counts, lengths) postings."""

    words: list[str]
    postings: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
