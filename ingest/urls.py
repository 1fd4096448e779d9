"""URL normalisation, so one story reached through different links is stored once."""

from __future__ import annotations

import logging
from urllib.parse import urljoin, urlsplit, urlunsplit

logger = logging.getLogger(__name__)

__all__ = ["TRACKING_PARAMS", "absolute_url", "canonical_url"]

# Exact names; any key starting with "utm_" is dropped as well.
TRACKING_PARAMS = frozenset({"fbclid", "gclid", "mc_cid", "mc_eid"})

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _is_tracking(piece: str) -> bool:
    key = piece.split("=", 1)[0].strip().lower()
    return key.startswith("utm_") or key in TRACKING_PARAMS


def _remove_dot_segments(path: str) -> str:
    # RFC 3986 section 5.2.4, so "/a/./b/../c" and "/a/c" compare equal.
    if "." not in path:
        return path
    output: list[str] = []
    segments = path.split("/")
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == ".":
            if last:
                output.append("")
            continue
        if segment == "..":
            if len(output) > 1:
                output.pop()
            if last:
                output.append("")
            continue
        output.append(segment)
    result = "/".join(output)
    if path.startswith("/") and not result.startswith("/"):
        result = "/" + result
    return result


def canonical_url(url: str) -> str:
    """Return ``url`` in a canonical form.

    Lowercases scheme and host, drops default ports, the fragment and tracking parameters
    (``utm_*``, ``fbclid``, ``gclid``, ``mc_cid``, ``mc_eid``), sorts the remaining query
    parameters and removes dot segments. Query pieces are kept byte for byte (only reordered)
    so that a server which does not use form encoding still gets what it expects.

    Raises ``ValueError`` when the URL cannot be parsed (for example a bad port).
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    netloc = parts.netloc
    if netloc:
        host = (parts.hostname or "").lower()
        if ":" in host:  # IPv6 literal: urlsplit strips the brackets
            host = f"[{host}]"
        port = parts.port  # raises ValueError for a malformed or out-of-range port
        userinfo = netloc.rpartition("@")[0] if "@" in netloc else ""
        netloc = host
        if port is not None and _DEFAULT_PORTS.get(scheme) != port:
            netloc = f"{host}:{port}"
        if userinfo:
            netloc = f"{userinfo}@{netloc}"
    path = _remove_dot_segments(parts.path)
    if netloc and not path and scheme in _DEFAULT_PORTS:
        path = "/"
    pieces = [p for p in parts.query.split("&") if p and not _is_tracking(p)]
    query = "&".join(sorted(pieces))
    return urlunsplit((scheme, netloc, path, query, ""))


def absolute_url(base: str, href: str) -> str:
    """Resolve ``href`` (possibly relative) against ``base`` and return it canonical."""
    return canonical_url(urljoin(base.strip(), href.strip()))
