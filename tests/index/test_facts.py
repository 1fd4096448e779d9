"""Per-passage facts saved with each index version."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from index.facts import NO_ROW, PassageFacts, _neighbours


def test_neighbours_are_the_same_articles_adjacent_passages() -> None:
    """Rows of one article link to the passages before and after them, never across articles."""
    articles = np.array([7, 7, 9, 7, 9])
    positions = np.array([0, 2, 1, 1, 0], dtype=np.int32)
    previous, following = _neighbours(articles, positions)
    assert previous.tolist() == [NO_ROW, 3, 4, 0, NO_ROW]
    assert following.tolist() == [3, NO_ROW, NO_ROW, 1, 2]


def test_facts_round_trip_and_outlet_mask(tmp_path: Path) -> None:
    """Saved facts load unchanged; an outlet filter selects that outlet's rows."""
    facts = PassageFacts(
        ids=np.array([1, 2, 3]),
        positions=np.array([0, 1, 0], dtype=np.int32),
        chars=np.array([500, 300, 800], dtype=np.int32),
        outlets=np.array([0, 0, 1], dtype=np.int32),
        previous=np.array([NO_ROW, 0, NO_ROW]),
        following=np.array([1, NO_ROW, NO_ROW]),
        outlet_names=["Valley Wire", "Harbor City Ledger"],
    )
    facts.save(tmp_path)
    loaded = PassageFacts.load(tmp_path)
    assert loaded is not None and loaded.outlet_names == facts.outlet_names
    assert loaded.rows_with_outlets(("Harbor City Ledger",)).tolist() == [False, False, True]
    assert PassageFacts.load(tmp_path / "none") is None
