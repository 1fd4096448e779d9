"""Untrusted text made safe: control characters, escape sequences, surrogates, bad links."""

from __future__ import annotations

import pytest

from ingest.errors import InputError
from ingest.sanitize import clean_line, clean_text, source_name, web_link


def test_terminal_escape_sequences_are_removed_and_their_text_kept() -> None:
    """ESC[2J, colours, an OSC 8 hyperlink and a reset leave only the visible words."""
    link = "\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x07"
    raw = f"\x1b[2J\x1b[31mRed\x1b[0m alert: {link} now\x1bc"
    assert clean_text(raw) == "Red alert: click now"


def test_control_characters_go_and_newlines_and_tabs_stay() -> None:
    """NUL, backspace, bell and C1 controls are dropped; CR, VT, FF and NEL become newlines."""
    assert clean_text("a\x00b\x08c\x07d\x9ce\tf\r\ng\rh\x0ci\x85j") == "abcde\tf\ng\nh\ni\nj"


def test_lone_surrogates_are_dropped_and_split_pairs_joined() -> None:
    """A lone surrogate (unencodable) goes; a surrogate pair left uncombined becomes its emoji."""
    assert clean_text("caf\ud800e \ud83d\ude00") == "cafe 😀"
    clean_text("caf\ud800e").encode()  # encodable now


def test_text_in_any_script_is_left_alone() -> None:
    """Chinese, Arabic, emoji and U+2028 are not control characters."""
    text = "北京。\u2028مرحبا 😀 — “quotes”"
    assert clean_text(text) is text


def test_clean_line_puts_everything_on_one_line() -> None:
    """Titles and names lose their line breaks and runs of spaces."""
    assert clean_line("  Bridge\n\tcloses \x1b[2J again ") == "Bridge closes again"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://ledger.example/a\nb", "whitespace or control"),
        ("https://ledger.example/a b", "whitespace or control"),
        ("https://ledger.example/a\x1b[2J", "whitespace or control"),
        ("javascript:alert(1)", "only http and https"),
        ("https://ledger.example/" + "a" * 2000, "too long"),
    ],
)
def test_links_a_citation_cannot_show_are_refused(url: str, reason: str) -> None:
    """A link with whitespace, control characters, another scheme or over 2,000 chars is refused."""
    with pytest.raises(InputError, match=reason):
        web_link(url)


def test_good_link_is_kept() -> None:
    """An ordinary https link passes unchanged."""
    assert web_link("https://ledger.example/news?id=4") == "https://ledger.example/news?id=4"


def test_source_name_over_its_column_is_refused() -> None:
    """A source name longer than 200 characters is refused with its length, not cut silently."""
    with pytest.raises(InputError, match="too long \\(250 characters, at most 200\\)"):
        source_name("n" * 250)
    assert source_name(" Harbor\nLedger ") == "Harbor Ledger"
