"""Decoding what a server sent: BOM, header charset, in-document declaration, UTF-8."""

from __future__ import annotations

import pytest

from ingest.decoding import decode_body, decode_bytes
from ingest.fetch import FetchResult


@pytest.mark.parametrize(
    ("body", "charset", "expected"),
    [
        (b'<?xml version="1.0" encoding="windows-1252"?><t>\x93q\x94</t>', None, "\u201cq\u201d"),
        (b"\xef\xbb\xbfcaf\xc3\xa9", "iso-8859-1", "caf\u00e9"),
        ("caf\u00e9".encode("utf-16"), None, "caf\u00e9"),
        (b"caf\xc3\xa9", "no-such-charset", "caf\u00e9"),
        (b"caf\xe9", None, "caf\ufffd"),
        (b"caf\xe9", "utf-8", "caf\ufffd"),
        (b'<meta charset="iso-8859-1">caf\xe9', "utf-8", "caf\u00e9"),
        (b'<meta charset="utf-16"><p>caf\xc3\xa9', None, "caf\u00e9"),
        (b"\x81\x8d", "latin-1", "\ufffd\ufffd"),
    ],
)
def test_decode_bytes_order_of_guesses(body: bytes, charset: str | None, expected: str) -> None:
    """BOM, header charset, in-document declaration, UTF-8, then replacement; never raises."""
    assert expected in decode_bytes(body, charset)


def test_decode_body_uses_result_charset() -> None:
    """decode_body reads the charset from the FetchResult."""
    result = FetchResult(
        url="https://example.com/",
        status=200,
        content_type="text/plain",
        charset="cp1251",
        body="\u043d\u043e\u0432\u043e\u0441\u0442\u0438".encode("cp1251"),
        etag=None,
        last_modified=None,
    )
    assert decode_body(result) == "\u043d\u043e\u0432\u043e\u0441\u0442\u0438"
