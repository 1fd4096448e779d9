"""Members' votes as a ranking test: would the ranking now put the helpful quote first?

    .venv/bin/python -m bench.eval_feedback FILE [--k 3] [--rows]

FILE is what ``newsbot feedback export FILE`` wrote from the database the votes were cast on;
the ranking judged is the product's as configured now (the same ``NEWSBOT_*`` settings and
data directory: passage ids must still be those the votes saw). Each voted answer counts once,
by its members' majority (ties are left out), and its question is asked again as of when it
was first asked, within its server's sources. Run it before and after a ranking change:

- answers voted helpful: the share whose first quote now is one the members saw and found
  helpful (``helpful_first``), and the share now refused;
- answers voted not helpful: the share whose first quote is now another passage, or that is
  now refused (``unhelpful_replaced``);
- refusals voted not helpful (answerable, members say): the share now answered.

Votes never change ranking by themselves; this is how a change is checked against them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.resources import Resources, resources_on
from bot.settings import get_settings
from index.search import SearchFilters

log = logging.getLogger(__name__)

DEFAULT_K = 3


@dataclass(frozen=True)
class VotedAnswer:
    """One answer as the members judged it: helpful by a majority of their votes, or not."""

    answer_id: int
    guild_id: int
    question: str
    asked_at: datetime
    abstained: bool
    quoted: tuple[int, ...]  # passage ids, first quoted first
    helpful: bool
    votes: int


def load_votes(lines: Iterable[str]) -> tuple[list[VotedAnswer], list[str]]:
    """Answers judged by majority, and one problem line per unusable input line (skipped)."""
    tallies: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    answers: dict[int, dict[str, Any]] = {}
    problems: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            answer_id = int(record["answer_id"])
            helpful = bool(record["helpful"])
            answers.setdefault(answer_id, record)
        except (ValueError, KeyError, TypeError) as error:
            problems.append(f"line {number}: not a vote ({error})")
            continue
        tallies[answer_id][0 if helpful else 1] += 1
    judged = []
    for answer_id, (yes, no) in tallies.items():
        if yes == no:
            continue
        record = answers[answer_id]
        quotes = sorted(record["quotes"], key=lambda quote: quote["rank"])
        judged.append(
            VotedAnswer(
                answer_id=answer_id,
                guild_id=int(record["guild_id"]),
                question=str(record["question"]),
                asked_at=datetime.fromisoformat(str(record["asked_at"])),
                abstained=bool(record["abstained"]),
                quoted=tuple(int(quote["passage_id"]) for quote in quotes),
                helpful=yes > no,
                votes=yes + no,
            )
        )
    return judged, problems


@dataclass(frozen=True)
class Rerun:
    voted: VotedAnswer
    first: int | None  # the passage quoted first now (None: refused now)

    @property
    def outcome(self) -> str:
        voted = self.voted
        if voted.abstained:
            return "answered now" if self.first is not None else "still refused"
        if self.first is None:
            return "refused now"
        if voted.helpful:
            return "helpful first" if self.first in voted.quoted else "helpful displaced"
        return "unhelpful first" if self.first == voted.quoted[0] else "unhelpful replaced"


def rerun(resources: Resources, voted: list[VotedAnswer], k: int = DEFAULT_K) -> list[Rerun]:
    """Each voted question asked again, as of when it was asked, in its server's scope."""
    answerer = resources.answerer
    reruns = []
    for answer in voted:
        filters = SearchFilters(guild_id=answer.guild_id, as_of=answer.asked_at)
        now = answerer.answer(answer.question, k=k, filters=filters)
        first = None if now.abstained or not now.passages else now.passages[0].passage_id
        reruns.append(Rerun(answer, first))
    return reruns


def summary(reruns: list[Rerun]) -> dict[str, object]:
    """The shares described in the module docstring, with the counts they are taken of."""

    def share(group: list[Rerun], *outcomes: str) -> float | None:
        hits = sum(1 for r in group if r.outcome in outcomes)
        return round(hits / len(group), 4) if group else None

    helpful = [r for r in reruns if not r.voted.abstained and r.voted.helpful]
    unhelpful = [r for r in reruns if not r.voted.abstained and not r.voted.helpful]
    refusals = [r for r in reruns if r.voted.abstained and not r.voted.helpful]
    return {
        "answers": len(reruns),
        "helpful": len(helpful),
        "helpful_first": share(helpful, "helpful first"),
        "helpful_refused_now": share(helpful, "refused now"),
        "unhelpful": len(unhelpful),
        "unhelpful_replaced": share(unhelpful, "unhelpful replaced", "refused now"),
        "unhelpful_refusals": len(refusals),
        "refusals_answered_now": share(refusals, "answered now"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path, help="votes from `newsbot feedback export FILE`")
    parser.add_argument("--k", type=int, default=DEFAULT_K, help="quotes per answer (3)")
    parser.add_argument("--rows", action="store_true", help="print each answer's outcome")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        lines = args.file.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        print(f"error: cannot read {args.file}: {error.strerror or error}", file=sys.stderr)
        return 2
    voted, problems = load_votes(lines)
    for problem in problems:
        print(f"skipped: {problem}", file=sys.stderr)
    with asyncio.Runner() as runner, resources_on(runner, get_settings()) as resources:
        reruns = rerun(resources, voted, args.k)
    if args.rows:
        for row in reruns:
            print(f"{row.voted.answer_id}\t{row.outcome}\t{row.voted.question}")
    print(json.dumps(summary(reruns), indent=2))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
