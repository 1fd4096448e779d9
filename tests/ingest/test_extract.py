"""Reading local files: every format, and a clear one-line error for every bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.errors import InputError
from ingest.extract import collect_files, read_paths
from ingest.sample import SAMPLE_CORPUS


def test_jsonl_reads_every_field(tmp_path: Path) -> None:
    """A JSONL line becomes an article with title, body, url, outlet, date and author."""
    record = {
        "title": "Tram line approved",
        "body": "The council voted 9-4.\n\nWork starts soon.",
        "url": "https://ledger.example/tram",
        "source": "Harbor City Ledger",
        "published_at": "2026-03-12T07:30:00-04:00",
        "author": "Jane Roe",
    }
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps(record) + "\n")
    [article] = read_paths([path]).articles
    assert (article.title, article.url, article.outlet, article.author) == (
        "Tram line approved",
        "https://ledger.example/tram",
        "Harbor City Ledger",
        "Jane Roe",
    )
    assert article.published_at == datetime(2026, 3, 12, 11, 30, tzinfo=UTC)


def test_malformed_jsonl_line_is_reported_and_good_lines_kept(tmp_path: Path) -> None:
    """A broken line is named by its number; the lines around it are still read."""
    good = json.dumps({"title": "T", "body": "Body text here."})
    path = tmp_path / "feed.jsonl"
    path.write_text("\n".join([good, "{not json", json.dumps({"title": "no body"}), good]))
    report = read_paths([path])
    assert len(report.articles) == 2
    assert [p.split(": ", 1)[1] for p in report.problems] == [
        "line 2: Expecting property name enclosed in double quotes",
        'line 3: missing "body"',
    ]


def test_bad_date_is_reported(tmp_path: Path) -> None:
    """A published_at that is not ISO 8601 is a per-line problem, not a crash."""
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"title": "T", "body": "B.", "published_at": "last Tuesday"}))
    report = read_paths([path])
    assert report.articles == []
    assert "not ISO 8601" in report.problems[0]


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    """A path that does not exist stops the run before anything is read."""
    with pytest.raises(InputError, match="no such file or folder"):
        collect_files([tmp_path / "nope.txt"])


def test_binary_file_is_refused(tmp_path: Path) -> None:
    """A binary file with a text extension is reported, not stored as gibberish."""
    path = tmp_path / "image.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    report = read_paths([path])
    assert report.articles == []
    assert report.problems == [f"{path}: binary file, not text"]


def test_invalid_utf8_is_refused(tmp_path: Path) -> None:
    """Latin-1 bytes are reported with the offending position."""
    path = tmp_path / "latin.txt"
    path.write_bytes("Caf\xe9 opens\n\nIt opened.".encode("latin-1"))
    report = read_paths([path])
    assert report.articles == []
    assert "not valid UTF-8 (byte 3)" in report.problems[0]


def test_unsupported_extension_is_refused(tmp_path: Path) -> None:
    """Naming a .pdf directly is an error that lists the supported types."""
    path = tmp_path / "paper.pdf"
    path.write_bytes(b"%PDF-1.4")
    with pytest.raises(InputError, match=r"unsupported file type \.pdf"):
        collect_files([path])


def test_text_file_title_is_first_line(tmp_path: Path) -> None:
    """In .txt and .md files the first non-empty line is the title."""
    path = tmp_path / "story.md"
    path.write_text("\n# Bridge closes\n\nThe bridge closed on Monday.\n")
    [article] = read_paths([path]).articles
    assert article.title == "Bridge closes"
    assert article.body == "The bridge closed on Monday."


def test_sample_corpus_reads_all_twelve_articles() -> None:
    """The shipped sample corpus has twelve articles across JSONL, text and HTML."""
    report = read_paths([SAMPLE_CORPUS])
    assert report.problems == []
    assert len(report.articles) == 12
    html = [a for a in report.articles if a.key.endswith(".html")]
    assert all(a.published_at and a.outlet and a.author for a in html)


def test_text_file_dateline_becomes_the_date(tmp_path: Path) -> None:
    """A printed dateline such as "Oct. 28, 2025, 5:40 p.m." dates a .txt article."""
    path = tmp_path / "bridge.txt"
    path.write_text("Bridge closes\n\n2 min read\nOct. 28, 2025, 5:40 p.m.\nThe bridge closed.\n")
    [article] = read_paths([path]).articles
    assert article.published_at == datetime(2025, 10, 28, 17, 40, tzinfo=UTC)


def test_jsonl_strings_with_unicode_line_separators_stay_one_line(tmp_path: Path) -> None:
    """U+2028, U+2029 and U+0085 inside a JSON string do not cut its line in two."""
    records = [
        {"title": f"Story {n}", "body": f"First part.{separator}Second part."}
        for n, separator in enumerate(["\u2028", "\u2029", "\u0085"])
    ]
    path = tmp_path / "separators.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records), "utf-8")
    report = read_paths([path])
    assert report.problems == []
    assert [a.title for a in report.articles] == ["Story 0", "Story 1", "Story 2"]
    assert all("Second part." in a.body for a in report.articles)


def test_invalid_utf8_or_nul_in_jsonl_costs_only_its_line(tmp_path: Path) -> None:
    """A Latin-1 byte on line 2 and a raw NUL on line 3 are reported; lines 1 and 4 are read."""
    good = json.dumps({"title": "Ferry returns", "body": "The ferry sails again."}).encode()
    latin = json.dumps({"title": "Caf", "body": "x"}).encode().replace(b"Caf", b"Caf\xe9")
    nul = b'{"title": "Nul", "body": "a\x00b"}'
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join([good, latin, nul, good.replace(b"Ferry", b"Tram")]))
    report = read_paths([path])
    assert [a.title for a in report.articles] == ["Ferry returns", "Tram returns"]
    assert [p.removeprefix(f"{path}: ") for p in report.problems] == [
        "line 2: not valid UTF-8 (byte 15 of the line)",
        "line 3: Invalid control character at",
    ]


def test_deeply_nested_jsonl_line_is_reported_not_fatal(tmp_path: Path) -> None:
    """A line nested 100,000 deep is a per-line problem, not a RecursionError."""
    good = json.dumps({"title": "Tram line approved", "body": "The council voted."})
    path = tmp_path / "nested.jsonl"
    path.write_text("\n".join([good, "[" * 100_000 + "]" * 100_000, good.replace("Tram", "Bus")]))
    report = read_paths([path])
    assert [a.title for a in report.articles] == ["Tram line approved", "Bus line approved"]
    assert report.problems == [f"{path}: line 2: JSON nested too deeply"]


def test_jsonl_url_with_a_newline_is_reported_and_the_article_kept_without_it(
    tmp_path: Path,
) -> None:
    """A link that would break the citation line is dropped (and said so); the story is kept."""
    records = [
        {"title": "Tram", "body": "Voted.", "url": "https://ledger.example/tram\nEvil line"},
        {"title": "Ferry", "body": "Sails.", "url": "file:///etc/passwd"},
        {"title": "Bus", "body": "Runs.", "url": "https://ledger.example/bus"},
    ]
    path = tmp_path / "links.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records))
    report = read_paths([path])
    assert [(a.title, a.url) for a in report.articles] == [
        ("Tram", None),
        ("Ferry", None),
        ("Bus", "https://ledger.example/bus"),
    ]
    assert len(report.problems) == 2
    assert "line 1: URL contains whitespace or control characters" in report.problems[0]
    assert "line 2: only http and https" in report.problems[1]
    assert all(p.endswith("; stored without a link") for p in report.problems)


def test_terminal_escape_sequences_in_a_file_are_stripped(tmp_path: Path) -> None:
    """ESC[2J, colours and OSC 8 links in a local file never reach the stored text."""
    path = tmp_path / "hostile.txt"
    path.write_text(
        "\x1b[2J\x1b[31mBridge closes\x1b[0m\n\n"
        "The \x1b]8;;https://evil.example/\x1b\\Old Mill Bridge\x1b]8;;\x1b\\ closes on Monday.\x07"
    )
    [article] = read_paths([path]).articles
    assert article.title == "Bridge closes"
    assert article.body == "The Old Mill Bridge closes on Monday."


def test_empty_html_file_is_reported_and_the_folder_still_read(tmp_path: Path) -> None:
    """An empty .html among good files is one problem; the other files are read."""
    (tmp_path / "a_empty.html").write_text("")
    (tmp_path / "b_blank.html").write_text("<html><body></body></html>")
    (tmp_path / "c_story.txt").write_text("Bridge closes\n\nThe bridge closes on Monday.")
    report = read_paths([tmp_path])
    assert [a.title for a in report.articles] == ["Bridge closes"]
    assert report.problems == [
        f"{tmp_path / 'a_empty.html'}: empty file",
        f"{tmp_path / 'b_blank.html'}: no article text found in the HTML",
    ]
