"""Per-passage facts the live index joins from its segments."""

from __future__ import annotations

import numpy as np

from index.facts import NO_ROW, PassageFacts, neighbours


def testneighbours_are_the_same_articles_adjacent_passages() -> None:
    """Rows of one article link to the passages before and after them, never across articles."""
    articles = np.array([7, 7, 9, 7, 9])
    positions = np.array([0, 2, 1, 1, 0], dtype=np.int32)
    previous, following = neighbours(articles, positions)
    assert previous.tolist() == [NO_ROW, 3, 4, 0, NO_ROW]
    assert following.tolist() == [3, NO_ROW, NO_ROW, 1, 2]


def test_outlet_mask_selects_that_outlets_rows() -> None:
    """An outlet filter selects the rows of the outlets named, by exact name."""
    facts = PassageFacts(
        ids=np.array([1, 2, 3]),
        positions=np.array([0, 1, 0], dtype=np.int32),
        chars=np.array([500, 300, 800], dtype=np.int32),
        outlets=np.array([0, 0, 1], dtype=np.int32),
        previous=np.array([NO_ROW, 0, NO_ROW]),
        following=np.array([1, NO_ROW, NO_ROW]),
        outlet_names=["Valley Wire", "Harbor City Ledger"],
    )
    assert facts.rows_with_outlets(("Harbor City Ledger",)).tolist() == [False, False, True]
    assert facts.rows_with_outlets(("Valley Wire", "x")).tolist() == [True, True, False]
