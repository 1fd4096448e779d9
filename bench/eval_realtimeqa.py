"""Retrieval quality on RealTime QA 2022: the product against four standard recipes, one run.

    .venv/bin/python -m bench.eval_realtimeqa [--weeks dev|heldout|all] [--limit N]

Every question is asked as of its own date; the product is asked through ``Answerer.answer``,
the code behind ``/ask`` and ``newsbot ask``. Prints one table and writes
``bench/results/realtimeqa-<weeks>-<time>.json``. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bench.baselines import ChunkBaseline, Retrieved, Search, baseline_searches
from bench.realtimeqa import DEV_WEEKS_UNTIL, Question, contains_answer
from bench.setup import RESULTS, SHIFT, Bench, bench_logging, chosen_rows, prepared, single_threaded
from index.answer import DEFAULT_MIN_SCORE, NO_BARS, Answerer, QuoteBars
from index.answerability import below_floors
from index.quote_widening import QUOTE_CHARS
from index.search import SearchFilters

log = logging.getLogger(__name__)

K = 10
MAX_QUOTE_CHARS = 1024  # a Discord embed field
ROWS = ("bm25", "dense", "rrf", "langchain", "passage", "padded", "product")
PRODUCT_ROWS = ("passage", "padded", "product")
LABELS = {
    "bm25": "BM25 alone",
    "dense": "Dense alone (exact)",
    "rrf": "RRF(BM25, dense)",
    "langchain": "LangChain 1000/100 dense",
    "passage": "newsbot, ranked passage alone",
    "padded": "newsbot, unrelated quotes not dropped",
    "product": "newsbot (product)",
}


@dataclass
class RowResult:
    """Per-question outcomes of one retrieval recipe."""

    name: str
    answer_ranks: list[int | None] = field(default_factory=list)  # 1-based, None = missed
    gold_ranks: list[int | None] = field(default_factory=list)  # questions with gold only
    abstained: int = 0
    unanswerable_asked: int = 0
    unanswerable_abstained: int = 0
    no_answer_asked: int = 0
    no_answer_abstained: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    quotes: int = 0
    over_limit: int = 0
    highlight_hits: int = 0  # top quote holds the answer and so does its highlighted sentence
    highlight_asked: int = 0

    def summary(self) -> dict[str, float | int | str | None]:
        n = len(self.answer_ranks)

        def recall(k: int, ranks: Sequence[int | None]) -> float:
            return sum(1 for r in ranks if r is not None and r <= k) / len(ranks) if ranks else 0.0

        mrr = sum(1.0 / r for r in self.answer_ranks if r is not None and r <= K) / max(n, 1)
        latencies = sorted(self.latencies_ms)
        return {
            "row": LABELS[self.name],
            "questions": n,
            "ans_recall@1": recall(1, self.answer_ranks),
            "ans_recall@3": recall(3, self.answer_ranks),
            "ans_recall@5": recall(5, self.answer_ranks),
            "ans_recall@10": recall(10, self.answer_ranks),
            "mrr@10": mrr,
            "gold_questions": len(self.gold_ranks),
            "gold_recall@5": recall(5, self.gold_ranks),
            "gold_recall@10": recall(10, self.gold_ranks),
            "abstained_answerable": self.abstained / max(n, 1),
            "abstained_unanswerable": (
                self.unanswerable_abstained / self.unanswerable_asked
                if self.unanswerable_asked
                else None
            ),
            "abstained_no_answer_text": (
                self.no_answer_abstained / self.no_answer_asked if self.no_answer_asked else None
            ),
            "latency_p50_ms": statistics.median(latencies) if latencies else None,
            "latency_p95_ms": latencies[int(0.95 * (len(latencies) - 1))] if latencies else None,
            "quotes_over_1024": self.over_limit,
            "highlight_holds_answer": (
                self.highlight_hits / self.highlight_asked if self.highlight_asked else None
            ),
        }


@dataclass(frozen=True)
class Outcome:
    quotes: list[Retrieved]
    abstained: bool
    highlight: str | None = None


Ask = Callable[[Question], Outcome]


def _first_rank(quotes: list[Retrieved], hit: list[bool]) -> int | None:
    for rank, (quote, holds) in enumerate(zip(quotes[:K], hit, strict=False), start=1):
        # A quote too long for an embed field would not be shown whole: never a hit.
        if holds and len(quote.text) <= MAX_QUOTE_CHARS:
            return rank
    return None


def run_row(name: str, ask: Ask, bench: Bench) -> RowResult:
    result = RowResult(name)
    if bench.answerable:
        ask(bench.answerable[0])  # warm caches (lazy loads) outside the timings
    for question in bench.answerable:
        started = time.perf_counter()
        outcome = ask(question)
        result.latencies_ms.append((time.perf_counter() - started) * 1000)
        quotes = [] if outcome.abstained else outcome.quotes
        result.abstained += outcome.abstained
        result.quotes += len(quotes)
        result.over_limit += sum(len(q.text) > MAX_QUOTE_CHARS for q in quotes)
        rank = _first_rank(quotes, [contains_answer(q.text, question.answer) for q in quotes])
        result.answer_ranks.append(rank)
        gold = set(question.evidence_urls) & bench.article_keys
        if gold:
            result.gold_ranks.append(_first_rank(quotes, [q.article in gold for q in quotes]))
        if rank == 1 and outcome.highlight is not None:
            result.highlight_asked += 1
            result.highlight_hits += contains_answer(outcome.highlight, question.answer)
    if name in PRODUCT_ROWS:
        for item in bench.unanswerable:
            result.unanswerable_asked += 1
            result.unanswerable_abstained += ask(item.shifted).abstained
        for question in bench.no_answer_in_corpus:
            result.no_answer_asked += 1
            result.no_answer_abstained += ask(question).abstained
    return result


def product_asker(
    bench: Bench, quote_chars: int | None = QUOTE_CHARS, bars: QuoteBars | None = None
) -> Ask:
    """The product's answers; ``quote_chars=None`` quotes the ranked passages unwidened."""
    answerer = Answerer(
        bench.corpus.engine,
        bench.corpus.retriever,
        quote_chars=quote_chars,
        bars=bars or QuoteBars(),
    )

    def ask(question: Question) -> Outcome:
        answer = answerer.answer(question.text, k=K, filters=SearchFilters(as_of=question.as_of))
        shown = answer.passages
        quotes = [Retrieved(q.text, q.url or "", q.score) for q in shown]
        return Outcome(quotes, answer.abstained, shown[0].highlight if shown else None)

    return ask


CALIBRATION_THRESHOLDS = (0.0, 0.4, 0.45, 0.5, DEFAULT_MIN_SCORE, 0.6, 0.65, 0.7)


def calibrate(bench: Bench) -> list[dict[str, float]]:
    """Abstention rates and AnsRecall@5 for several answerability thresholds (``min_score``).

    Every question is answered once without abstention; each threshold is then applied to
    the answers as ``Answerer`` applies it (with the product's coverage floor), so the rows
    show what the setting trades: answerable questions refused against unanswerable ones.
    """
    answerer = Answerer(
        bench.corpus.engine, bench.corpus.retriever, min_score=0.0, min_coverage=0.0, min_cosine=0.0
    )

    def judged(question: Question) -> tuple[bool, float, bool]:
        """(refused whatever the threshold, answerability, answer in the first five quotes)"""
        answer = answerer.answer(question.text, k=K, filters=SearchFilters(as_of=question.as_of))
        found = any(contains_answer(q.text, question.answer) for q in answer.passages[:5])
        refused = answer.abstained or below_floors(answer.signals)
        return refused, answer.answerability, found

    answerable = [judged(q) for q in bench.answerable]
    unanswerable = [judged(u.shifted) for u in bench.unanswerable]
    rows = []
    for threshold in CALIBRATION_THRESHOLDS:

        def refused(outcome: tuple[bool, float, bool], t: float = threshold) -> bool:
            return outcome[0] or outcome[1] < t

        rows.append(
            {
                "min_score": threshold,
                "abstained_answerable": sum(map(refused, answerable)) / max(len(answerable), 1),
                "abstained_unanswerable": (
                    sum(map(refused, unanswerable)) / max(len(unanswerable), 1)
                ),
                "ans_recall@5": sum(o[2] and not refused(o) for o in answerable)
                / max(len(answerable), 1),
            }
        )
    return rows


def format_calibration(rows: list[dict[str, float]]) -> str:
    lines = [
        "| min_score | Abstain ans. | Abstain unans. | AnsR@5 |",
        "|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['min_score']:.3f} | {100 * row['abstained_answerable']:.1f} "
            f"| {100 * row['abstained_unanswerable']:.1f} | {100 * row['ans_recall@5']:.1f} |"
        )
    return "\n".join(lines)


def baseline_askers(bench: Bench, rows: Sequence[str]) -> dict[str, Ask]:
    def chunks() -> ChunkBaseline:
        return ChunkBaseline(bench.articles, bench.embedder, bench.chunk_cache)

    corpus = bench.corpus
    searches = baseline_searches(
        corpus.engine, corpus.retriever.live(), bench.embedder, rows, chunks
    )

    def asker(search: Search) -> Ask:
        return lambda q: Outcome(search(q.text, q.as_of, K), abstained=False)

    return {row: asker(search) for row, search in searches.items()}


def format_table(summaries: list[dict]) -> str:
    def pct(value: object) -> str:
        return "—" if value is None else f"{100 * float(value):.1f}"  # type: ignore[arg-type]

    def ms(value: object) -> str:
        return "—" if value is None else f"{float(value):.0f}"  # type: ignore[arg-type]

    header = (
        "| Row | AnsR@1 | AnsR@3 | AnsR@5 | AnsR@10 | MRR@10 | GoldR@5 | GoldR@10 "
        "| Abstain ans. | Abstain unans. | p50 ms | p95 ms |"
    )
    lines = [header, "|" + "---|" * 12]
    for s in summaries:
        lines.append(
            f"| {s['row']} | {pct(s['ans_recall@1'])} | {pct(s['ans_recall@3'])} "
            f"| {pct(s['ans_recall@5'])} | {pct(s['ans_recall@10'])} | {s['mrr@10']:.3f} "
            f"| {pct(s['gold_recall@5'])} | {pct(s['gold_recall@10'])} "
            f"| {pct(s['abstained_answerable'])} | {pct(s['abstained_unanswerable'])} "
            f"| {ms(s['latency_p50_ms'])} | {ms(s['latency_p95_ms'])} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--weeks", choices=("dev", "heldout", "all"), default="dev")
    parser.add_argument("--limit", type=int, default=None, help="At most N questions per set.")
    parser.add_argument("--rows", default=",".join(ROWS), help="Comma-separated subset of rows.")
    parser.add_argument("--reingest", action="store_true", help="Ignore the cached ingest.")
    parser.add_argument(
        "--passage-target", type=int, default=None, help="Experiment: another passage size."
    )
    args = parser.parse_args(argv)
    rows = chosen_rows(parser, args.rows, ROWS, "bm25,dense,rrf,passage,product")
    bench_logging()
    started = datetime.now(UTC)
    with prepared(args.weeks, args.limit, args.reingest, args.passage_target) as bench:
        askers = baseline_askers(bench, rows)
        if "product" in rows:
            askers["product"] = product_asker(bench)
        if "passage" in rows:
            askers["passage"] = product_asker(bench, quote_chars=None)
        if "padded" in rows:
            askers["padded"] = product_asker(bench, bars=NO_BARS)
        single_threaded()  # after any embedding of new text, which wants every core
        results = []
        for name in ROWS:
            if name in askers:
                log.info("asking %d questions: %s", len(bench.answerable), LABELS[name])
                results.append(run_row(name, askers[name], bench))
        summaries = [r.summary() for r in results]
        calibration = calibrate(bench) if "product" in rows else []
        report = {
            "benchmark": "RealTime QA 2022",
            "weeks": args.weeks,
            "dev_weeks": f"20220617..{DEV_WEEKS_UNTIL}",
            "limit": args.limit,
            "started": started.isoformat(timespec="seconds"),
            "corpus_articles": len(bench.articles),
            "indexed_passages": bench.corpus.retriever.searchable_count(),
            "answerable_questions": len(bench.answerable),
            "unanswerable_questions": len(bench.unanswerable),
            "unanswerable_rule": f"asked {SHIFT.days} days early; no article visible then "
            "contains the answer",
            "no_answer_text_questions": len(bench.no_answer_in_corpus),
            "rows": summaries,
            "abstention_calibration": calibration,
            "per_question": {
                r.name: dict(
                    zip(
                        [q.question_id for q in bench.answerable],
                        r.answer_ranks,
                        strict=True,
                    )
                )
                for r in results
            },
            "setup_seconds": {
                "ingest": round(bench.corpus.ingest_seconds, 1),
                "index": round(bench.corpus.index_seconds, 1),
            },
        }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"realtimeqa-{args.weeks}-{started.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2))
    print(format_table(summaries))
    if calibration:
        print(f"\nAbstention by min_score (the product uses {DEFAULT_MIN_SCORE}):")
        print(format_calibration(calibration))
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
