"""Cutting text to Discord's limits: at boundaries, marked with "…", never inside a link."""

from __future__ import annotations

import pytest

from bot.limits import (
    ELLIPSIS,
    fit,
    fit_lines,
    shorten_around,
    truncate,
    truncate_start,
)

TEXT = (
    "The council met on Monday. It approved the harbour budget after a long debate. "
    "Residents asked about ferry fares, parking and the lantern festival."
)


def test_text_that_fits_is_unchanged() -> None:
    """Short text comes back exactly as it was, without an ellipsis."""
    assert truncate(TEXT, len(TEXT)) == TEXT
    assert truncate_start(TEXT, len(TEXT)) == TEXT


@pytest.mark.parametrize("limit", [5, 17, 40, 80, 100, 120])
def test_cut_text_fits_and_ends_with_an_ellipsis(limit: int) -> None:
    """Cut text is within the limit and says it was cut."""
    cut = truncate(TEXT, limit)
    assert len(cut) <= limit
    assert cut.endswith(ELLIPSIS)


def test_cut_prefers_a_sentence_boundary() -> None:
    """When a sentence ends late enough, the cut falls right after it."""
    assert truncate(TEXT, 100) == (
        "The council met on Monday. It approved the harbour budget after a long debate." + ELLIPSIS
    )


def test_cut_falls_between_words() -> None:
    """Without a nearby sentence end, the cut falls at a space, never inside a word."""
    cut = truncate("Residents asked about ferry fares, parking and the lantern festival.", 30)
    assert cut == "Residents asked about ferry" + ELLIPSIS


def test_cut_never_splits_a_link() -> None:
    """A URL or markdown link that would be cut is left out whole."""
    url = "https://news.example/a/very/long/path/to/the/article?id=12345"
    text = f"Read more at {url} today"
    cut = truncate(text, 40)
    assert cut == "Read more at" + ELLIPSIS
    masked = f"See [the report]({url}) for details"
    assert truncate(masked, 30) == "See" + ELLIPSIS


def test_cut_from_the_start_keeps_the_end() -> None:
    """truncate_start keeps the end of the text, starting at a word or sentence."""
    cut = truncate_start(TEXT, 80)
    assert len(cut) <= 80
    assert cut.startswith(ELLIPSIS)
    assert cut.endswith("the lantern festival.")
    assert cut[1] != " " and TEXT.endswith(cut[1:])
    assert cut[1:].split()[0] in TEXT.split()


def test_dangling_escape_is_dropped() -> None:
    """A cut right after a markdown escape backslash does not leave the backslash behind."""
    cut = truncate("aaaa bbbb\\", 10)
    assert not cut[:-1].endswith("\\")


def test_context_is_cut_around_the_focus() -> None:
    """The focus sentence stays whole; context on both sides shrinks to fit."""
    before = "First sentence here. Second sentence is rather long and comes before. "
    focus = "The answer is forty-two."
    after = " Then more text follows, and even more text, and still more after that."
    b, f, a = shorten_around(before, focus, after, 70)
    assert f == focus
    assert len(b) + len(f) + len(a) <= 70
    assert b.startswith(ELLIPSIS) and a.endswith(ELLIPSIS)


def test_focus_longer_than_the_room_is_cut_itself() -> None:
    """A focus that cannot fit is cut like any text, and the context dropped."""
    b, f, a = shorten_around("before ", "a focus sentence that is long", " after", 12)
    assert (b, a) == ("", "")
    assert len(f) <= 12 and f.endswith(ELLIPSIS)


def test_unused_room_goes_to_the_other_side() -> None:
    """With little text before the focus, more of what follows is kept."""
    b, f, a = shorten_around("Hi. ", "Focus.", " " + "word " * 40, 60)
    assert b == "Hi. "
    assert len(b) + len(f) + len(a) <= 60
    assert len(a) > 40


def test_lines_fit_with_a_count_of_the_rest() -> None:
    """Whole lines are kept while they fit, then "… and N more" counts the others."""
    lines = [f"source number {i} with a description" for i in range(100)]
    text = fit_lines(lines, 500)
    assert len(text) <= 500
    kept = text.splitlines()[:-1]
    assert kept == lines[: len(kept)]
    assert text.splitlines()[-1] == f"… and {100 - len(kept)} more"


def test_fit_retries_until_the_rendering_fits() -> None:
    """fit() shrinks the budget when formatting makes the text grow."""

    def render(budget: int) -> str:
        return "> " + truncate("*" * 300, budget).replace("*", "\\*")

    text = fit(render, 100)
    assert len(text) <= 100
    assert text.startswith("> \\*")
