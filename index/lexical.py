"""BM25 over passages (with their article's title), by passage id, saved beside the vectors.

bm25s scores from a sparse matrix it builds from token ids. Tokens are kept per passage
(``tokens.npz``) so an update tokenizes only new passages and re-derives the matrix, which
takes seconds, instead of re-reading every passage.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
from scipy import sparse

log = logging.getLogger(__name__)
# bm25s sets its logger to DEBUG when imported, which would print a line to the console on
# every index build whatever NEWSBOT_LOG_LEVEL says; the application's level decides instead.
logging.getLogger("bm25s").setLevel(logging.NOTSET)

FOLDER = "lexical"
TOKENS_FILE = "tokens.npz"
BM25_FOLDER = "bm25"
TOKEN = re.compile(r"\w\w+")
STOPWORDS = frozenset(bm25s.stopwords.STOPWORDS_EN)
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


def bm25_matrix(
    offsets: np.ndarray, token_ids: np.ndarray, columns: int, k1: float, b: float
) -> dict[str, object]:
    """The score matrix ``bm25s.BM25.index`` builds (Lucene BM25), from token arrays.

    bm25s builds it with a Python loop over every passage and token (66 s at 1M passages);
    this is the same arithmetic on whole arrays, bit for bit the same matrix
    (tests/index/test_lexical.py compares them), in a few seconds.
    """
    lengths = np.diff(offsets).astype(np.int64)
    documents = len(lengths)
    rows = np.repeat(np.arange(documents, dtype=np.int64), lengths)
    pairs, frequency = np.unique(rows * columns + token_ids, return_counts=True)
    doc, column = pairs // columns, pairs % columns
    in_documents = np.bincount(column, minlength=columns)
    # Each idf exactly as bm25s computes it (math.log on Python floats), once per distinct df.
    idf_of = {
        int(df): math.log(1 + (documents - df + 0.5) / (df + 0.5))
        for df in np.unique(in_documents[in_documents > 0])
    }
    idf = np.zeros(columns, dtype=np.float32)
    for df, value in idf_of.items():
        idf[in_documents == df] = value
    average = lengths.mean()
    tf = frequency.astype(np.float32).astype(np.float64)
    tfc = tf / (k1 * ((1 - b) + b * lengths[doc] / average) + tf)
    scores = (idf[column].astype(np.float64) * tfc).astype(np.float32)
    matrix = sparse.csc_matrix(
        (scores, (doc.astype(np.int32), column.astype(np.int32))),
        shape=(documents, columns),
        dtype=np.float32,
    )
    return {
        "data": matrix.data,
        "indices": matrix.indices,
        "indptr": matrix.indptr.astype(np.int64),  # as bm25s saves it
        "num_docs": documents,
    }


class LexicalIndex:
    """BM25 scores for every indexed passage; rows follow ``ids``."""

    def __init__(
        self,
        ids: np.ndarray,
        offsets: np.ndarray,
        token_ids: np.ndarray,
        vocab: dict[str, int],
    ) -> None:
        self.ids = ids.astype(np.int64)
        self.offsets = offsets.astype(np.int64)  # row i has token_ids[offsets[i]:offsets[i+1]]
        self.token_ids = token_ids.astype(np.int32)
        self.vocab = vocab
        self._row_of: dict[int, int] | None = None
        self._idf: np.ndarray | None = None
        self._bm25 = self._score_matrix()

    @classmethod
    def empty(cls) -> LexicalIndex:
        return cls(np.zeros(0, np.int64), np.zeros(1, np.int64), np.zeros(0, np.int32), {})

    @classmethod
    def build(cls, documents: Sequence[tuple[int, str]]) -> LexicalIndex:
        """An index of ``(passage id, text)`` pairs."""
        return cls.empty().updated(np.zeros(0, np.int64), documents)

    def __len__(self) -> int:
        return len(self.ids)

    def updated(self, remove: np.ndarray, add: Sequence[tuple[int, str]]) -> LexicalIndex:
        """A new index without the ``remove`` ids and with the ``add`` documents."""
        keep = ~np.isin(self.ids, remove) if len(remove) else np.ones(len(self.ids), dtype=bool)
        lengths = np.diff(self.offsets)
        kept_tokens = np.repeat(keep, lengths)
        vocab = dict(self.vocab)
        new_rows = [self._encode(text, vocab) for _, text in add]
        new_lengths = np.array([len(r) for r in new_rows], dtype=np.int64)
        all_lengths = np.concatenate([lengths[keep], new_lengths])
        offsets = np.zeros(len(all_lengths) + 1, dtype=np.int64)
        np.cumsum(all_lengths, out=offsets[1:])
        token_ids = np.concatenate(
            [self.token_ids[kept_tokens], *(np.asarray(r, dtype=np.int32) for r in new_rows)]
        )
        ids = np.concatenate([self.ids[keep], np.array([i for i, _ in add], dtype=np.int64)])
        return LexicalIndex(ids, offsets, token_ids, vocab)

    @staticmethod
    def _encode(text: str, vocab: dict[str, int]) -> list[int]:
        return [vocab.setdefault(token, len(vocab)) for token in tokenize(text)]

    def _score_matrix(self) -> bm25s.BM25 | None:
        if len(self.ids) == 0:
            return None
        # bm25s needs a column for every vocabulary id, and one more for an empty query.
        vocab = {**self.vocab, "": len(self.vocab)}
        model = bm25s.BM25()
        model.scores = bm25_matrix(self.offsets, self.token_ids, len(vocab), model.k1, model.b)
        model.vocab_dict = vocab
        model.unique_token_ids_set = set(vocab.values())
        model.nonoccurrence_array = None
        return model

    def query_ids(self, query: str) -> list[int]:
        return [self.vocab[t] for t in tokenize(query) if t in self.vocab]

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every row for ``query`` (zeros when no query word is indexed)."""
        tokens = self.query_ids(query)
        if self._bm25 is None or not tokens:
            return np.zeros(len(self.ids), dtype=np.float32)
        return np.asarray(self._bm25.get_scores_from_ids(tokens), dtype=np.float32)

    def coverage(self, query: str, rows: np.ndarray) -> np.ndarray:
        """Per row, the idf-weighted share of the query's distinct words it contains.

        BM25 rewards repeating one query word; a passage that names every entity of the
        question is usually the better quote, and this says so directly. A query word that no
        passage holds weighs as much as the rarest word can: a name the index has never seen
        is the surest sign that the story asked about is not indexed.
        """
        # Question words ("what", "say") are how a question is put, not what it is about: in a
        # small index they are rare, and would weigh more than the names the passage holds.
        words = set(tokenize(query)) - QUESTION_WORDS
        wanted = np.array(sorted(self.vocab[w] for w in words if w in self.vocab), dtype=np.int32)
        unseen = len({w for w in words if w not in self.vocab})
        out = np.zeros(len(rows), dtype=np.float32)
        if not words:
            return out
        weights = self.idf()[wanted]
        total = float(weights.sum()) + unseen * float(np.log1p(max(len(self.ids), 1)))
        if total <= 0:
            return out  # only question words ("When?"): no key word for a passage to hold
        for i, row in enumerate(rows.tolist()):
            present = self.token_ids[self.offsets[row] : self.offsets[row + 1]]
            out[i] = weights[np.isin(wanted, present)].sum() / total
        return out

    def idf(self) -> np.ndarray:
        """Inverse document frequency of every vocabulary id (log(1 + N/df), df ≥ 1)."""
        if self._idf is None:
            size = max(len(self.vocab), 1)
            if self._bm25 is not None:
                # The score matrix has one column per vocabulary id and one entry per passage
                # holding it: df is its column lengths, read in O(vocabulary) at load instead
                # of a sort of every token on the first question (121 s at 1M passages).
                frequency = np.diff(np.asarray(self._bm25.scores["indptr"]))[:size]
            else:
                frequency = np.zeros(size, dtype=np.int64)
            self._idf = np.log1p(len(self.ids) / np.maximum(frequency, 1)).astype(np.float32)
        return self._idf

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """Row numbers of these passage ids (-1 for ids the index lacks)."""
        if self._row_of is None:
            self._row_of = {int(pid): row for row, pid in enumerate(self.ids)}
        return np.array([self._row_of.get(int(i), -1) for i in ids], dtype=np.int64)

    # --- on disk ---------------------------------------------------------------------------

    def save(self, version_folder: Path, name: str = FOLDER) -> None:
        folder = version_folder / name
        folder.mkdir()
        # Plain .npy files, not an .npz: a reader memory-maps them instead of reading them all.
        for field, array in self._arrays().items():
            np.save(folder / f"{field}.npy", array)
        if self._bm25 is not None:
            # bm25s keeps the vocabulary with the matrix; it is the one query ids come from.
            self._bm25.save(str(folder / BM25_FOLDER))

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"ids": self.ids, "offsets": self.offsets, "tokens": self.token_ids}

    @classmethod
    def load(cls, version_folder: Path, name: str = FOLDER) -> LexicalIndex | None:
        """The saved index, or None if this version has none (saved before lexical search).

        Token rows and the score matrix are memory-mapped: a search reads only the postings
        of its words and the rows of its candidates, so start-up reads almost nothing.
        """
        folder = version_folder / name
        if (folder / TOKENS_FILE).is_file():  # saved before the arrays were separate files
            with np.load(folder / TOKENS_FILE) as data:
                ids, offsets, tokens = data["ids"], data["offsets"], data["tokens"]
        elif (folder / "tokens.npy").is_file():
            ids, offsets, tokens = (
                np.load(folder / f"{field}.npy", mmap_mode="r")
                for field in ("ids", "offsets", "tokens")
            )
        else:
            return None
        index = cls.__new__(cls)
        index.ids, index.offsets, index.token_ids = np.asarray(ids), offsets, tokens
        index._row_of = None
        index._idf = None
        index._bm25 = None
        index.vocab = {}
        if (folder / BM25_FOLDER).is_dir():
            index._bm25 = bm25s.BM25.load(str(folder / BM25_FOLDER), mmap=True)
            index.vocab = {t: i for t, i in index._bm25.vocab_dict.items() if t != ""}
        return index

    @staticmethod
    def saved_in(version_folder: Path, name: str = FOLDER) -> bool:
        folder = version_folder / name
        return (folder / TOKENS_FILE).is_file() or (folder / "tokens.npy").is_file()
