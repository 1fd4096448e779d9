"""Text from the bytes a server sent: BOM, then the header's charset, then the page's own
declaration (``<meta charset>``, ``<?xml encoding?>``), then UTF-8, as browsers guess."""

from __future__ import annotations

import codecs
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ingest.fetch import FetchResult

__all__ = ["bom_encoding", "decode_body", "decode_bytes"]

_UNICODE_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def bom_encoding(data: bytes) -> str | None:
    """The encoding a Unicode byte-order mark at the start of ``data`` announces, if any."""
    for bom, encoding in _UNICODE_BOMS:
        if data.startswith(bom):
            return encoding
    return None


_META_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_:.\-]+)""", re.I)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9_.\-]+)["']""")


def _codec_name(label: str | None) -> str | None:
    if not label:
        return None
    try:
        info = codecs.lookup(label.strip().strip("\"'").lower())
    except LookupError:
        return None
    # As browsers do (WHATWG Encoding): these labels mean windows-1252 on the web.
    if info.name in ("ascii", "iso8859-1", "latin-1"):
        return "cp1252"
    return info.name


def _declared_encoding(head: bytes) -> str | None:
    match = _XML_ENCODING.match(head) or _META_CHARSET.search(head)
    if not match:
        return None
    name = _codec_name(match.group(1).decode("ascii", "replace"))
    # An in-document UTF-16 declaration is always a lie: the document was readable as ASCII.
    if name and name.startswith(("utf-16", "utf-32", "utf_16", "utf_32")):
        return "utf-8"
    return name


def decode_bytes(body: bytes, charset: str | None = None) -> str:
    """Decode ``body``: BOM, then ``charset``, then meta/XML declaration, then UTF-8.

    Never raises: if every candidate fails strictly, the first one is used with replacement
    characters for the bytes it cannot decode.
    """
    candidates: list[str] = []
    for name in (
        bom_encoding(body),
        _codec_name(charset),
        _declared_encoding(body[:4096]),
        "utf-8",
    ):
        if name and name not in candidates:
            candidates.append(name)
    for name in candidates:
        try:
            return body.decode(name)
        except (UnicodeDecodeError, LookupError, ValueError):
            continue
    for name in candidates:
        try:
            return body.decode(name, errors="replace")
        except (LookupError, ValueError):
            continue
    return body.decode("utf-8", errors="replace")


def decode_body(result: FetchResult) -> str:
    """The body of ``result`` as text (see ``decode_bytes`` for the order of guesses)."""
    return decode_bytes(result.body, result.charset)
