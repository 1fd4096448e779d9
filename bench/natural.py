"""Natural questions: what members type in chat, about the sample corpus and RealTime QA articles.

The questions are written by us, not taken from a quiz (``bench/natural/``, format below);
the articles are read at run time (the sample corpus from ``ingest/sample_corpus``, the
RealTime QA ones from ``../shared``). See bench/README.md.

One JSON object per line::

    {"id": "s-tram-cost", "corpus": "sample" | "rtqa", "style": "number", "question": "...",
     "answerable": true, "answers": ["verbatim answer substring", ...],
     "articles": ["exact title of an article whose quotes are relevant", ...]}

An unanswerable question has ``"answerable": false``, ``"answers": []``, ``"kind":
"near-topic"`` (about an indexed story, a fact it does not hold; ``articles`` names that
story) or ``"off-topic"``. A quote is right when it contains one of the answers (case-folded,
whitespace and quote marks normalised).

    .venv/bin/python -m bench.natural      # (re)write dev.jsonl and test.jsonl from the sources
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.realtimeqa import normalize_answer

FOLDER = Path(__file__).resolve().parent / "natural"
# Where questions are written: ours about the sample corpus, and the RealTime QA set's.
SOURCES = (FOLDER / "sample.jsonl", FOLDER / "rtqa" / "questions.jsonl")
RTQA_ARTICLES = FOLDER / "rtqa" / "articles.txt"
SPLITS = ("dev", "test")
STYLES = (
    "paraphrase",
    "vague",
    "who",
    "why-how",
    "yes-no",
    "number",
    "when",
    "typo",
    "lowercase",
    "plain",
)
# Other spellings of the same styles (the RealTime QA set's), read as the names above.
STYLE_ALIASES = {"how": "why-how", "why": "why-how", "yesno": "yes-no", "lower": "lowercase"}


@dataclass(frozen=True)
class NaturalQuestion:
    id: str
    corpus: str
    style: str
    text: str
    answerable: bool
    answers: tuple[str, ...]
    articles: tuple[str, ...]
    kind: str | None = None  # unanswerable: "near-topic" or "off-topic"

    @classmethod
    def from_record(cls, record: dict) -> NaturalQuestion:
        question = cls(
            id=str(record["id"]),
            corpus=str(record["corpus"]),
            style=STYLE_ALIASES.get(str(record.get("style")), str(record.get("style", "plain"))),
            text=str(record["question"]),
            answerable=bool(record["answerable"]),
            answers=tuple(record.get("answers") or ()),
            articles=tuple(record.get("articles") or ()),
            kind=record.get("kind"),
        )
        if question.answerable and not question.answers:
            raise ValueError(f"{question.id}: an answerable question needs answers")
        if not question.answerable and question.kind not in ("near-topic", "off-topic"):
            raise ValueError(f"{question.id}: kind must be near-topic or off-topic")
        return question

    def as_record(self) -> dict[str, object]:
        record: dict[str, object] = {
            "id": self.id,
            "corpus": self.corpus,
            "style": self.style,
            "question": self.text,
            "answerable": self.answerable,
            "answers": list(self.answers),
            "articles": list(self.articles),
        }
        if self.kind is not None:
            record["kind"] = self.kind
        return record

    def holds_answer(self, text: str) -> bool:
        quoted = normalize_answer(text)
        return any(normalize_answer(a) in quoted for a in self.answers)

    def relevant(self, title: str) -> bool:
        return normalize_title(title) in {normalize_title(t) for t in self.articles}


def normalize_title(title: str) -> str:
    return " ".join(title.casefold().split())


def read_questions(paths: Iterable[Path]) -> list[NaturalQuestion]:
    questions: list[NaturalQuestion] = []
    for path in paths:
        if not path.is_file():
            continue
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    try:
                        questions.append(NaturalQuestion.from_record(json.loads(line)))
                    except (KeyError, ValueError) as error:
                        raise ValueError(f"{path}:{number}: {error}") from error
    ids = [q.id for q in questions]
    if len(ids) != len(set(ids)):
        raise ValueError("question ids must be unique")
    return questions


def load_split(split: str) -> list[NaturalQuestion]:
    return read_questions([FOLDER / f"{split}.jsonl"])


def split(questions: Sequence[NaturalQuestion]) -> dict[str, list[NaturalQuestion]]:
    """Dev and test halves, even within each (corpus, answerable, style or kind) group.

    Within a group questions are ordered by a hash of their id and dealt alternately.
    """
    groups: dict[tuple[str, bool, str], list[NaturalQuestion]] = defaultdict(list)
    for q in questions:
        groups[(q.corpus, q.answerable, q.style if q.answerable else str(q.kind))].append(q)
    halves: dict[str, list[NaturalQuestion]] = {name: [] for name in SPLITS}
    start = 0  # a group's odd question out goes to the side the last odd group did not feed
    for key in sorted(groups):
        ordered = sorted(groups[key], key=lambda q: hashlib.sha256(q.id.encode()).hexdigest())
        for position, q in enumerate(ordered):
            halves[SPLITS[(position + start) % 2]].append(q)
        start = (start + len(ordered)) % 2
    return halves


def rtqa_article_urls(path: Path = RTQA_ARTICLES) -> list[str]:
    if not path.is_file():
        return []
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def main() -> int:
    questions = read_questions(SOURCES)
    for name, part in split(questions).items():
        path = FOLDER / f"{name}.jsonl"
        with path.open("w", encoding="utf-8") as handle:
            for q in sorted(part, key=lambda q: (q.corpus, q.id)):
                handle.write(json.dumps(q.as_record(), ensure_ascii=False) + "\n")
        answerable = sum(q.answerable for q in part)
        print(f"{path.name}: {answerable} answerable, {len(part) - answerable} unanswerable")
    return 0


if __name__ == "__main__":
    sys.exit(main())
