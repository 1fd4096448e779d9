"""Per-passage facts the ranking needs beyond the catalog: place in the article, size, outlet.

Saved in each index version folder, row-aligned with the version's catalog (sorted by id),
so a search never goes to SQL before it has chosen the passages to quote.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, func, select

from index.vectors import Catalog
from ingest.db import session_scope
from ingest.models import Article, Passage

log = logging.getLogger(__name__)

FACTS_FILE = "facts.npz"
OUTLETS_FILE = "outlets.json"
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

    @classmethod
    def from_database(cls, engine: Engine, catalog: Catalog) -> PassageFacts:
        """Facts for the catalog's passages, in the catalog's row order."""
        query = (
            select(Passage.id, Passage.position, func.length(Passage.text), Article.outlet)
            .join(Article, Passage.article_id == Article.id)
            .order_by(Passage.id)
        )
        with session_scope(engine) as session:
            rows = {pid: (pos, size, outlet) for pid, pos, size, outlet in session.execute(query)}
        ids = catalog.ids
        if not np.all(ids[:-1] < ids[1:]):
            raise ValueError("the catalog must be sorted by passage id")
        names: dict[str, int] = {}
        positions = np.zeros(len(ids), dtype=np.int32)
        chars = np.zeros(len(ids), dtype=np.int32)
        outlets = np.zeros(len(ids), dtype=np.int32)
        for row, pid in enumerate(ids):
            position, size, outlet = rows.get(int(pid), (0, 0, ""))
            positions[row] = position
            chars[row] = size
            outlets[row] = names.setdefault(outlet or "", len(names))
        previous, following = _neighbours(catalog.article_ids, positions)
        return cls(ids, positions, chars, outlets, previous, following, list(names))

    def rows_with_outlets(self, wanted: tuple[str, ...]) -> np.ndarray:
        """A mask of rows whose outlet is one of ``wanted`` (exact names as stored)."""
        codes = [i for i, name in enumerate(self.outlet_names) if name in wanted]
        return np.isin(self.outlets, codes)

    def save(self, folder: Path) -> None:
        np.savez(
            folder / FACTS_FILE,
            ids=self.ids,
            positions=self.positions,
            chars=self.chars,
            outlets=self.outlets,
            previous=self.previous,
            following=self.following,
        )
        (folder / OUTLETS_FILE).write_text(json.dumps(self.outlet_names, ensure_ascii=False))

    @classmethod
    def load(cls, folder: Path) -> PassageFacts | None:
        if not (folder / FACTS_FILE).is_file():
            return None
        with np.load(folder / FACTS_FILE) as data:
            arrays = {name: data[name] for name in data.files}
        names = json.loads((folder / OUTLETS_FILE).read_text())
        return cls(outlet_names=names, **arrays)


def _neighbours(article_ids: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
