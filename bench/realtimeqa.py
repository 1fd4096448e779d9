"""The RealTime QA 2022 weeks as a news corpus, questions and answer checks (see its README).

Data is read at run time from ``../shared/bench/realtimeqa/2022``; nothing is copied here.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ingest.extract import RawArticle

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "bench" / "realtimeqa" / "2022"

# Tuning only ever sees the dev weeks; the held-out weeks are for the same measurement run
# once the product's settings are fixed. Dev = the first 15 weekly quizzes (June to
# September), held-out = the 14 that follow (September 30 to December 30).
DEV_WEEKS_UNTIL = "20220923"

QUOTES = re.compile(r"[\"'“”‘’`]")
HREF = re.compile(r"""href\s*=\s*["']([^"']+)["']""", re.IGNORECASE)


def canonical_url(url: str) -> str:
    """The article's identity: the URL without query and fragment (and no trailing slash)."""
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/") or "/"
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, "", ""))


def host(url: str) -> str:
    netloc = urlsplit(url).netloc.lower()
    return netloc.removeprefix("www.")


def normalize_answer(text: str) -> str:
    """Case-folded, quotes dropped, whitespace collapsed: the README's matching rule."""
    return " ".join(QUOTES.sub("", text).casefold().split())


def contains_answer(text: str, answer: str) -> bool:
    return normalize_answer(answer) in normalize_answer(text)


@dataclass(frozen=True)
class Question:
    question_id: str
    week: str
    day: date
    text: str
    answer: str
    evidence_urls: tuple[str, ...]

    @property
    def as_of(self) -> datetime:
        """The end of the question's day: "now" for this question."""
        return datetime.combine(self.day, time.max, tzinfo=UTC)

    @property
    def dev(self) -> bool:
        return self.week <= DEV_WEEKS_UNTIL


@dataclass
class CorpusArticle:
    url: str
    title: str
    text: str
    published: date | None

    @property
    def key(self) -> str:
        return canonical_url(self.url)

    @property
    def published_at(self) -> datetime | None:
        return datetime.combine(self.published, time(), tzinfo=UTC) if self.published else None

    def as_raw(self) -> RawArticle:
        """The article as the JSONL import would read it (source = host)."""
        return RawArticle(
            title=(self.title.strip() or host(self.url))[:1000],
            body=self.text,
            key=self.key,
            url=self.key,
            outlet=host(self.url),
            published_at=self.published_at,
        )


def _records(pattern: str, data_dir: Path) -> Iterable[dict]:
    for path in sorted(data_dir.glob(pattern)):
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    yield json.loads(line)


def _parse_day(value: object) -> date | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return datetime.strptime(value.strip()[:10], "%Y/%m/%d").date()
    except ValueError:
        return None


def load_corpus(data_dir: Path = DATA_DIR) -> list[CorpusArticle]:
    """Every distinct article (by canonical URL) of all ``_gcs`` and ``_gold`` files.

    The same URL often comes back for several questions with differently scraped text; the
    longest text wins, and a title or date from any sighting fills a gap.
    """
    articles: dict[str, CorpusArticle] = {}
    for pattern in ("*_gcs.jsonl", "*_gold.jsonl"):
        for record in _records(pattern, data_dir):
            for result in record.get("search_result") or []:
                url = result.get("url")
                if not url:
                    continue
                sighting = CorpusArticle(
                    url=url,
                    title=result.get("title") or "",
                    text=result.get("text") or "",
                    published=_parse_day(result.get("publish_date")),
                )
                known = articles.get(sighting.key)
                if known is None:
                    articles[sighting.key] = sighting
                    continue
                if len(sighting.text) > len(known.text):
                    known.text = sighting.text
                known.title = known.title or sighting.title
                known.published = known.published or sighting.published
    return [a for a in articles.values() if a.text.strip()]


def load_questions(data_dir: Path = DATA_DIR) -> list[Question]:
    """All questions, once each (a question may be repeated in another file)."""
    questions: dict[str, Question] = {}
    for record in _records("*_qa.jsonl", data_dir):
        qid = record["question_id"]
        day = _parse_day(record.get("question_date"))
        if qid in questions or day is None:
            continue
        evidence = tuple(
            dict.fromkeys(canonical_url(u) for u in HREF.findall(record.get("evidence") or ""))
        )
        questions[qid] = Question(
            question_id=qid,
            week=qid.split("_")[0],
            day=day,
            text=record["question_sentence"].strip(),
            answer=record["choices"][int(record["answer"][0])].strip(),
            evidence_urls=evidence,
        )
    return sorted(questions.values(), key=lambda q: (q.week, int(q.question_id.split("_")[1])))


class AnswerFinder:
    """Which corpus articles contain a question's answer text.

    Scanning 43 MB per question takes most of a minute for all of them, so answers already
    looked up are remembered in ``cache`` (a JSON file; valid for one corpus fingerprint).
    """

    def __init__(self, articles: list[CorpusArticle], cache: Path | None = None) -> None:
        self.articles = articles
        self.cache = cache
        self._texts: list[str] | None = None
        self._known: dict[str, list[int]] = {}
        if cache is not None and cache.is_file():
            self._known = json.loads(cache.read_text())

    def holders(self, answer: str) -> list[int]:
        needle = normalize_answer(answer)
        if not needle:
            return []
        if needle not in self._known:
            if self._texts is None:
                self._texts = [normalize_answer(f"{a.title}\n{a.text}") for a in self.articles]
            self._known[needle] = [i for i, text in enumerate(self._texts) if needle in text]
        return self._known[needle]

    def save(self) -> None:
        if self.cache is not None:
            self.cache.write_text(json.dumps(self._known))
