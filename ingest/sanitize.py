"""Untrusted text made safe to store, index and show, whatever file, feed or page it came from.

Articles arrive with anything in them: lone surrogates (which no database can encode), NUL
(which PostgreSQL refuses), terminal escape sequences (which would clear or rewrite the screen
of whoever runs ``newsbot ask``), links with line breaks in them. :func:`clean_text` is the one
place that turns such text into clean text; every ``RawArticle`` passes through it.
"""

from __future__ import annotations

import re

from ingest.errors import InputError

# The widths of the columns these values go to (ingest/models.py): longer values are refused
# or cut here, so that PostgreSQL never rejects a whole batch for one of them.
MAX_URL_CHARS = 2000
MAX_TITLE_CHARS = 1000
MAX_OUTLET_CHARS = 200
MAX_AUTHOR_CHARS = 500
MAX_SOURCE_NAME_CHARS = 200

# ECMA-48 sequences, 7-bit and 8-bit forms: CSI (ESC [ ... final byte, e.g. ESC[2J), the string
# sequences OSC, DCS, SOS, PM and APC up to their terminator (e.g. an OSC 8 hyperlink), and
# two-byte escapes (ESC c resets the terminal). An unterminated string sequence ends at the
# line's end rather than swallowing the rest of the article.
_TERMINAL_SEQUENCE = re.compile(
    r"""
      (?:\x1b\[|\x9b) [0-?]* [ -/]* [@-~]
    | (?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f]) [^\x07\x1b\x9c\n]* (?:\x07|\x1b\\|\x9c)?
    | \x1b [ -/]* [0-~]
    """,
    re.VERBOSE,
)
# Carriage returns, vertical tabs, form feeds and NEL are line breaks; keep them as such.
_LINE_BREAK = re.compile(r"\r\n|[\r\x0b\x0c\x85]")
# C0 and C1 controls but tab and newline, DEL, and surrogates (in a str, always lone ones).
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_WHITESPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")


def clean_text(text: str) -> str:
    """``text`` without terminal escape sequences, control characters (newline and tab stay)
    or lone surrogates; line breaks of any kind become newlines."""
    if not _UNSAFE.search(text):
        return text
    if _SURROGATE.search(text):
        # A surrogate pair that was never combined (e.g. "\\ud83d\\ude00" from a careless
        # encoder) becomes its character; lone surrogates are dropped.
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "ignore")
    text = _TERMINAL_SEQUENCE.sub("", text)
    text = _LINE_BREAK.sub("\n", text)
    return _UNSAFE.sub("", text)


def clean_line(text: str) -> str:
    """Clean text on one line, its runs of whitespace (line breaks included) one space each."""
    return " ".join(clean_text(text).split())


def web_link(url: str) -> str:
    """``url`` if a citation can link to it, else ``InputError`` saying why.

    A link is http or https, has a host, has no whitespace or control characters (which would
    break the citation line, in a terminal as in Discord) and fits the database's column.
    """
    from ingest.sources import validate_web_url

    if len(url) > MAX_URL_CHARS:
        raise InputError(f"URL too long ({len(url):,} characters, at most {MAX_URL_CHARS:,})")
    if _WHITESPACE_OR_CONTROL.search(url) or _SURROGATE.search(url):
        shown = clean_line(url)
        shown = shown if len(shown) <= 80 else f"{shown[:79]}…"
        raise InputError(f"URL contains whitespace or control characters: {shown!r}")
    return validate_web_url(url)


def source_name(name: str) -> str:
    """A source name as typed, on one line and clean, or ``InputError`` if it cannot be one."""
    cleaned = clean_line(name)
    if not cleaned:
        raise InputError("the source name is empty")
    if len(cleaned) > MAX_SOURCE_NAME_CHARS:
        raise InputError(
            f"the source name is too long ({len(cleaned):,} characters,"
            f" at most {MAX_SOURCE_NAME_CHARS})"
        )
    return cleaned
