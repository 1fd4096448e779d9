"""Quotes widened with the sentences around the ranked passage, verbatim and within limits."""

from __future__ import annotations

from index.quote_widening import Surroundings, widen

BEFORE = "The council met on Monday. Residents packed the hall.\n\nThe mayor spoke first."
CORE = "The Old Mill bridge closed in March for repairs. Crews replaced the deck."
AFTER = "The bridge will reopen on 2 June, the council said. Tolls stay the same.\n\nOther news."


def test_the_answering_sentence_after_the_passage_is_quoted() -> None:
    """Asked when the bridge reopens, the quote reaches the next passage's first sentence."""
    quote = widen("When does the Old Mill bridge reopen?", CORE, Surroundings(BEFORE, AFTER), 130)
    assert quote == f"{CORE}\n\nThe bridge will reopen on 2 June, the council said."


def test_widening_stays_within_the_limit_and_verbatim() -> None:
    """The quote never passes the limit, and is the neighbours' tail, the passage, their head."""
    for limit in (len(CORE), 100, 200, 260, 1000):
        quote = widen("bridge", CORE, Surroundings(BEFORE, AFTER), limit)
        assert len(quote) <= max(limit, len(CORE))
        parts = quote.split("\n\n")
        assert CORE in parts
        core_at = parts.index(CORE)
        before = "\n\n".join(parts[:core_at])
        after = "\n\n".join(parts[core_at + 1 :])
        assert BEFORE.endswith(before)
        assert AFTER.startswith(after)


def test_a_passage_alone_or_already_full_is_quoted_as_it_is() -> None:
    """Without neighbours, or at the limit already, the passage is quoted unchanged."""
    assert widen("bridge", CORE, Surroundings(None, None)) == CORE
    assert widen("bridge", CORE, Surroundings(BEFORE, AFTER), len(CORE)) == CORE
