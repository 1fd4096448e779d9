"""Per-passage facts the ranking needs beyond the catalog: place in the article, size, outlet.

Each index segment saves its passages' place, size and outlet (``index.segments``); the live
index joins them row-aligned with its catalog (sorted by id) and links each passage to its
article's neighbours, so a search never goes to SQL before it has chosen what to quote.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

NO_ROW = -1


@dataclass
class PassageFacts:
    ids: np.ndarray  # int64 passage ids, ascending: the catalog's order
    positions: np.ndarray  # int32 index of the passage in its article
    chars: np.ndarray  # int32 length of the passage text
    outlets: np.ndarray  # int32 index into ``outlet_names``
    previous: np.ndarray  # int64 row of the article's previous passage, NO_ROW if none
    following: np.ndarray  # int64 row of the article's next passage, NO_ROW if none
    outlet_names: list[str]

    @classmethod
    def empty(cls) -> PassageFacts:
        none = np.zeros(0, dtype=np.int64)
        return cls(
            none,
            none.astype(np.int32),
            none.astype(np.int32),
            none.astype(np.int32),
            none,
            none,
            [],
        )

    def rows_with_outlets(self, wanted: tuple[str, ...]) -> np.ndarray:
        """A mask of rows whose outlet is one of ``wanted`` (exact names as stored)."""
        codes = [i for i, name in enumerate(self.outlet_names) if name in wanted]
        return np.isin(self.outlets, codes)


def neighbours(article_ids: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row, the rows holding the same article's previous and next passage."""
    previous = np.full(len(article_ids), NO_ROW, dtype=np.int64)
    following = np.full(len(article_ids), NO_ROW, dtype=np.int64)
    if len(article_ids) == 0:
        return previous, following
    order = np.lexsort((positions, article_ids))
    same = article_ids[order][1:] == article_ids[order][:-1]
    previous[order[1:][same]] = order[:-1][same]
    following[order[:-1][same]] = order[1:][same]
    return previous, following
