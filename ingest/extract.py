"""Articles out of local files: .txt and .md (first line is the title), .html, .jsonl."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ingest.dates import parse_dateline, parse_iso
from ingest.errors import InputError, NewsbotError
from ingest.sanitize import (
    MAX_AUTHOR_CHARS,
    MAX_OUTLET_CHARS,
    MAX_TITLE_CHARS,
    MAX_URL_CHARS,
    clean_line,
    clean_text,
    web_link,
)

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".txt", ".md", ".html", ".htm", ".jsonl")
MAX_FILE_BYTES = 200 * 1024 * 1024


@dataclass
class RawArticle:
    """An article as read, before boilerplate is removed: ``body`` keeps its paragraphs on
    separate lines. Its text is made safe (``ingest.sanitize``) as it is built."""

    title: str
    body: str
    key: str
    url: str | None = None
    outlet: str | None = None
    published_at: datetime | None = None
    author: str | None = None

    def __post_init__(self) -> None:
        """Clean every field, whatever the origin (file, feed, page), before anything stores or
        shows it; an unusable ``url`` or ``key`` raises ``InputError``."""
        self.title = clean_line(self.title)[:MAX_TITLE_CHARS]
        self.body = clean_text(self.body)
        self.key = clean_text(self.key)
        if len(self.key) > MAX_URL_CHARS:
            raise InputError(f"article key too long ({len(self.key):,} characters)")
        if self.url is not None:
            self.url = web_link(self.url)
        self.outlet = _short(self.outlet, MAX_OUTLET_CHARS)
        self.author = _short(self.author, MAX_AUTHOR_CHARS)


def _short(value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    return clean_line(value)[:limit] or None


@dataclass
class ReadReport:
    """What reading some paths produced, and the problems that were skipped."""

    articles: list[RawArticle] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def collect_files(paths: list[Path]) -> list[Path]:
    """Expand folders into their supported files; refuse paths that do not exist."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise InputError(f"no such file or folder: {', '.join(missing)}")
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and _supported(p)))
        elif _supported(path):
            files.append(path)
        else:
            raise InputError(
                f"{path}: unsupported file type {path.suffix or '(none)'};"
                f" expected one of {', '.join(SUPPORTED_SUFFIXES)}"
            )
    return files


def _supported(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED_SUFFIXES and not path.name.startswith(".")


def read_paths(paths: list[Path]) -> ReadReport:
    """Read every article under ``paths``; a bad file or line is reported, never fatal."""
    report = ReadReport()
    for file in collect_files(paths):
        try:
            report.articles.extend(read_file(file, report.problems))
        except NewsbotError as error:
            report.problems.append(str(error))
    return report


def read_file(path: Path, problems: list[str]) -> list[RawArticle]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        # Decoded line by line: one bad byte costs its line, not the file.
        return list(parse_jsonl(read_bytes(path), str(path), problems))
    text = read_text(path)
    if suffix in (".html", ".htm"):
        return [parse_html(text, path)]
    return [parse_plain(text, path)]


def read_bytes(path: Path) -> bytes:
    """The file's bytes, or a one-line error saying why it cannot be read."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InputError(f"{path}: file too large ({size:,} bytes)")
        return path.read_bytes()
    except OSError as error:
        raise InputError(f"{path}: cannot read file ({error.strerror or error})") from error


def read_text(path: Path) -> str:
    """The file as UTF-8 text, or a one-line error saying why it cannot be read."""
    data = read_bytes(path)
    if b"\x00" in data[:8192]:
        raise InputError(f"{path}: binary file, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(
            f"{path}: not valid UTF-8 (byte {error.start}); re-save it as UTF-8"
        ) from error


def parse_plain(text: str, path: Path) -> RawArticle:
    from ingest.clean import UI_LINE

    lines = text.splitlines()
    for index, line in enumerate(lines):
        # Scraped pages often open with furniture such as "News Feed" above the headline.
        if line.strip() and not UI_LINE.match(line.strip()):
            title = line.strip().lstrip("#").strip()
            body = "\n".join(lines[index + 1 :]).strip()
            break
    else:
        raise InputError(f"{path}: empty file")
    if not body:
        raise InputError(f"{path}: no text after the title line")
    return RawArticle(
        title=title[:1000], body=body, key=f"file:{path.name}", published_at=_dateline(body)
    )


def _dateline(body: str) -> datetime | None:
    """A publication date printed on its own line near the top of a scraped page."""
    for line in body.splitlines()[:8]:
        found = parse_dateline(line)
        if found is not None:
            return found
    return None


def parse_html(text: str, path: Path) -> RawArticle:
    from ingest.webpage import NoArticleText, extract_article

    if not text.strip():
        raise InputError(f"{path}: empty file")  # before trafilatura logs an error about it
    try:
        extracted = extract_article(text, url=path.resolve().as_uri())
    except NoArticleText as error:
        raise InputError(f"{path}: no article text found in the HTML") from error
    return RawArticle(
        title=(extracted.title or path.stem)[:1000],
        body=extracted.text,
        key=f"file:{path.name}",
        outlet=extracted.site_name,
        author=extracted.author,
        published_at=extracted.published_at,
    )


def parse_jsonl(data: bytes, origin: str, problems: list[str]) -> Iterator[RawArticle]:
    """One article per line; a malformed line is reported with its number and skipped.

    Lines end at "\n" only: U+2028, U+2029 and U+0085 are valid inside a JSON string, and
    ``str.splitlines`` would cut a line at each of them.
    """
    for number, raw_line in enumerate(data.split(b"\n"), start=1):
        where = f"{origin}: line {number}"
        try:
            line = raw_line.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as error:
            problems.append(f"{where}: not valid UTF-8 (byte {error.start + 1} of the line)")
            continue
        if not line.strip():
            continue
        try:
            yield article_from_record(json.loads(line), problems, where)
        except RecursionError:
            problems.append(f"{where}: JSON nested too deeply")
        except (json.JSONDecodeError, InputError, TypeError, ValueError) as error:
            message = error.msg if isinstance(error, json.JSONDecodeError) else str(error)
            problems.append(f"{where}: {message}")


def article_from_record(record: object, problems: list[str], where: str) -> RawArticle:
    """The article of one JSONL record; a bad ``url`` is reported and the article kept
    without a link, since its text is still worth quoting."""
    if not isinstance(record, dict):
        raise InputError("expected a JSON object")
    title = record.get("title")
    body = record.get("body")
    if not isinstance(title, str) or not title.strip():
        raise InputError('missing "title"')
    if not isinstance(body, str) or not body.strip():
        raise InputError('missing "body"')
    url = _optional_str(record, "url")
    if url is not None:
        try:
            url = web_link(url)
        except InputError as error:
            problems.append(f"{where}: {error}; stored without a link")
            url = None
    # Keyed by the title as given, as before, so stored articles keep their keys.
    digest = hashlib.sha256(clean_text(title).encode()).hexdigest()[:16]
    return RawArticle(
        title=title,
        body=body,
        key=url or f"line:{digest}",
        url=url,
        outlet=_optional_str(record, "source"),
        author=_optional_str(record, "author"),
        published_at=parse_datetime(record.get("published_at")),
    )


def _optional_str(record: dict[str, object], name: str) -> str | None:
    value = record.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InputError(f'"{name}" must be a string')
    return value.strip()


def parse_datetime(value: object) -> datetime | None:
    """ISO 8601 date or datetime; naive values are taken as UTC."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InputError('"published_at" must be an ISO 8601 string')
    parsed = parse_iso(value)
    if parsed is None:
        raise InputError(f'"published_at" is not ISO 8601: {value!r}')
    return parsed
