"""Natural questions: the product against the same four recipes as RealTime QA, one run.

    .venv/bin/python -m bench.eval_natural [--split dev|test|all] [--realtimeqa dev|heldout]

The corpus is the sample corpus plus the RealTime QA articles the natural questions are about
(``bench/natural/rtqa/articles.txt``), ingested by the product's own ingest into one fresh
data directory. Questions are asked without a date, as a member asks ``/ask``; each row shows
``SHOWN`` quotes. Prints one table (and, with ``--realtimeqa``, the RealTime QA table of those
weeks after it) and writes ``bench/results/natural-<split>-<time>.json``. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from bench import datadir
from bench.baselines import ChunkBaseline, Retrieved, Search, baseline_searches
from bench.natural import NaturalQuestion, load_split, rtqa_article_urls
from bench.realtimeqa import DATA_DIR, CorpusArticle, canonical_url, load_corpus
from bench.setup import CACHE, RESULTS, bench_logging, chosen_rows, single_threaded
from bench.vector_cache import VectorCache
from index.answer import Answer, Answerer
from index.embedder import Embedder
from index.search import Retriever
from ingest.db import open_engine
from ingest.extract import read_paths
from ingest.pipeline import ingest_paths
from ingest.sample import SAMPLE_CORPUS

log = logging.getLogger(__name__)

SHOWN = 3  # NEWSBOT_ANSWER_PASSAGES' default: what one /ask reply shows
PAGES = 3  # as bot/services/ask.py asks: the first page plus two of "More passages"
MAX_QUOTE_CHARS = 1024
NO_DATE_LIMIT = datetime(9999, 1, 1, tzinfo=UTC)
ROWS = ("bm25", "dense", "rrf", "langchain", "product")
LABELS = {
    "bm25": "BM25 alone",
    "dense": "Dense alone (exact)",
    "rrf": "RRF(BM25, dense)",
    "langchain": "LangChain 1000/100 dense",
    "product": "newsbot (product)",
}


@dataclass(frozen=True)
class Shown:
    """What one row showed for one question."""

    quotes: list[Retrieved]
    abstained: bool
    more: list[Retrieved] = field(default_factory=list)  # "More passages" pages (product)
    closest: list[str] = field(default_factory=list)  # titles a refusal lists (product)


Ask = Callable[[NaturalQuestion], Shown]


@dataclass
class Corpus:
    engine: Engine
    retriever: Retriever
    articles: list[CorpusArticle]  # as the LangChain recipe reads them: title, body text


@dataclass
class RowResult:
    name: str
    first: list[bool] = field(default_factory=list)  # per answerable question
    among: list[bool] = field(default_factory=list)
    refused: list[bool] = field(default_factory=list)
    unanswerable_refused: dict[str, list[bool]] = field(default_factory=dict)  # by kind
    quotes_shown: int = 0
    quotes_unrelated: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    by_style: dict[str, list[tuple[bool, bool]]] = field(default_factory=dict)
    per_question: dict[str, dict[str, object]] = field(default_factory=dict)
    more_unrelated: int = 0
    more_shown: int = 0

    def summary(self) -> dict[str, object]:
        def share(values: Sequence[bool]) -> float | None:
            return sum(values) / len(values) if values else None

        unanswerable = [v for values in self.unanswerable_refused.values() for v in values]
        return {
            "row": LABELS[self.name],
            "answerable": len(self.first),
            "first": sum(self.first),
            "among_shown": sum(self.among),
            "answerable_refused": sum(self.refused),
            "unanswerable": len(unanswerable),
            "unanswerable_refused": sum(unanswerable),
            "unanswerable_refused_by_kind": {
                kind: [sum(v), len(v)] for kind, v in sorted(self.unanswerable_refused.items())
            },
            "first_rate": share(self.first),
            "among_rate": share(self.among),
            "answerable_refused_rate": share(self.refused),
            "unanswerable_refused_rate": share(unanswerable),
            "quotes_shown": self.quotes_shown,
            "quotes_unrelated": self.quotes_unrelated,
            "unrelated_share": self.quotes_unrelated / self.quotes_shown
            if self.quotes_shown
            else None,
            "more_shown": self.more_shown,
            "more_unrelated": self.more_unrelated,
            "latency_p50_ms": statistics.median(self.latencies_ms) if self.latencies_ms else None,
            "by_style": {
                style: {
                    "questions": len(v),
                    "first": sum(f for f, _ in v),
                    "among_shown": sum(a for _, a in v),
                }
                for style, v in sorted(self.by_style.items())
            },
        }


def holds(question: NaturalQuestion, quote: Retrieved) -> bool:
    return len(quote.text) <= MAX_QUOTE_CHARS and question.holds_answer(quote.text)


def run_row(name: str, ask: Ask, questions: Sequence[NaturalQuestion]) -> RowResult:
    result = RowResult(name)
    if questions:
        ask(questions[0])  # warm caches (lazy loads) outside the timings
    for question in questions:
        started = time.perf_counter()
        shown = ask(question)
        result.latencies_ms.append((time.perf_counter() - started) * 1000)
        quotes = [] if shown.abstained else shown.quotes[:SHOWN]
        record: dict[str, object] = {
            "abstained": shown.abstained,
            "titles": [q.title for q in quotes] or shown.closest,
        }
        if question.answerable:
            first = bool(quotes) and holds(question, quotes[0])
            among = any(holds(question, q) for q in quotes)
            result.first.append(first)
            result.among.append(among)
            result.refused.append(shown.abstained)
            result.by_style.setdefault(question.style, []).append((first, among))
            result.quotes_shown += len(quotes)
            unrelated = [not question.relevant(q.title) for q in quotes]
            result.quotes_unrelated += sum(unrelated)
            more = [] if shown.abstained else shown.more
            result.more_shown += len(more)
            result.more_unrelated += sum(not question.relevant(q.title) for q in more)
            record.update(first=first, among=among, unrelated=sum(unrelated))
        else:
            result.unanswerable_refused.setdefault(str(question.kind), []).append(shown.abstained)
        result.per_question[question.id] = record
    return result


def _quotes(answer_quotes: Sequence) -> list[Retrieved]:
    return [Retrieved(q.text, q.url or "", q.score, q.title) for q in answer_quotes]


def product_asker(corpus: Corpus, answerer: Answerer | None = None) -> Ask:
    """The product as ``/ask`` calls it: one page shown, two more fetched for paging."""
    answerer = answerer or Answerer(corpus.engine, corpus.retriever)

    def ask(question: NaturalQuestion) -> Shown:
        answer: Answer = answerer.answer(question.text, k=SHOWN, extra=SHOWN * (PAGES - 1))
        return Shown(
            _quotes(answer.passages),
            answer.abstained,
            more=_quotes(answer.more),
            closest=[q.title for q in answer.closest],
        )

    return ask


def baseline_askers(corpus: Corpus, embedder: Embedder, rows: Sequence[str]) -> dict[str, Ask]:
    def chunks() -> ChunkBaseline:
        return ChunkBaseline(corpus.articles, embedder, VectorCache(CACHE / "chunks.db"))

    searches = baseline_searches(corpus.engine, corpus.retriever.live(), embedder, rows, chunks)

    def asker(search: Search) -> Ask:
        return lambda q: Shown(search(q.text, NO_DATE_LIMIT, SHOWN), abstained=False)

    return {row: asker(search) for row, search in searches.items()}


def sample_articles() -> list[CorpusArticle]:
    """The sample corpus as read by the product's reader (before cleaning and splitting)."""
    report = read_paths([SAMPLE_CORPUS])
    return [
        CorpusArticle(
            url=raw.url or f"sample:{raw.key}", title=raw.title, text=raw.body, published=None
        )
        for raw in report.articles
    ]


def rtqa_articles() -> list[CorpusArticle]:
    wanted = {canonical_url(u) for u in rtqa_article_urls()}
    if not wanted:
        return []
    chosen = [a for a in load_corpus(DATA_DIR) if a.key in wanted]
    missing = len(wanted) - len(chosen)
    if missing:
        log.warning("%d selected RealTime QA articles are not in the corpus", missing)
    return chosen


@contextmanager
def prepared(embedder: Embedder) -> Iterator[Corpus]:
    """A fresh data directory: the sample corpus, then the selected RealTime QA articles."""
    CACHE.mkdir(parents=True, exist_ok=True)
    rtqa = rtqa_articles()
    with tempfile.TemporaryDirectory(prefix="newsbot-natural-") as folder:
        data_dir = Path(folder)
        engine = open_engine(f"sqlite:///{(data_dir / 'newsbot.db').resolve()}")
        ingest_paths(engine, [SAMPLE_CORPUS], "sample")
        engine.dispose()
        built = datadir.build(data_dir, rtqa, embedder, VectorCache(CACHE / "passages.db"))
        log.info(
            "natural corpus: 12 sample + %d RealTime QA articles, %d passages",
            len(rtqa),
            built.retriever.searchable_count(),
        )
        articles = sample_articles() + [
            CorpusArticle(a.key, a.as_raw().title, a.text, None) for a in rtqa
        ]
        try:
            yield Corpus(built.engine, built.retriever, articles)
        finally:
            built.engine.dispose()


def _count(done: int, total: int) -> str:
    return f"{done}/{total}"


def format_table(summaries: list[dict]) -> str:
    def pct(value: object) -> str:
        return "—" if value is None else f"{100 * float(value):.0f}%"  # type: ignore[arg-type]

    lines = [
        "| Row | Right quote first | Right quote among shown | Answerable refused "
        "| Unanswerable refused | Shown quotes from unrelated articles | p50 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        n, u = s["answerable"], s["unanswerable"]
        latency = s["latency_p50_ms"]
        lines.append(
            f"| {s['row']} | {_count(s['first'], n)} ({pct(s['first_rate'])}) "
            f"| {_count(s['among_shown'], n)} ({pct(s['among_rate'])}) "
            f"| {_count(s['answerable_refused'], n)} ({pct(s['answerable_refused_rate'])}) "
            f"| {_count(s['unanswerable_refused'], u)} ({pct(s['unanswerable_refused_rate'])}) "
            f"| {s['quotes_unrelated']} of {s['quotes_shown']} ({pct(s['unrelated_share'])}) "
            f"| {'—' if latency is None else f'{latency:.0f}'} |"
        )
    return "\n".join(lines)


def format_styles(summary: dict) -> str:
    parts = [
        f"{style} {v['first']}/{v['among_shown']}/{v['questions']}"
        for style, v in summary["by_style"].items()
    ]
    kinds = ", ".join(
        f"{kind} {done}/{total}"
        for kind, (done, total) in summary["unanswerable_refused_by_kind"].items()
    )
    return f"{summary['row']} (first/among/questions): " + ", ".join(parts) + f"; refused: {kinds}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--split", choices=("dev", "test", "all"), default="dev")
    parser.add_argument("--rows", default=",".join(ROWS), help="Comma-separated subset of rows.")
    parser.add_argument(
        "--realtimeqa",
        choices=("dev", "heldout", "all"),
        default=None,
        help="Then run the RealTime QA bench on these weeks and print its table too.",
    )
    args = parser.parse_args(argv)
    rows = chosen_rows(parser, args.rows, ROWS, "bm25,dense,rrf,product")
    bench_logging()
    splits = ("dev", "test") if args.split == "all" else (args.split,)
    questions = [q for name in splits for q in load_split(name)]
    if not questions:
        parser.error("no questions: run `python -m bench.natural` to write the splits")
    started = datetime.now(UTC)
    embedder = Embedder()
    with prepared(embedder) as corpus:
        askers = baseline_askers(corpus, embedder, rows)
        if "product" in rows:
            askers["product"] = product_asker(corpus)
        single_threaded()
        results = []
        for name in ROWS:
            if name in askers:
                log.info("asking %d questions: %s", len(questions), LABELS[name])
                results.append(run_row(name, askers[name], questions))
        passages = corpus.retriever.searchable_count()
    summaries = [r.summary() for r in results]
    by_corpus: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        for corpus_name in sorted({q.corpus for q in questions}):
            part = [q for q in questions if q.corpus == corpus_name]
            by_corpus[corpus_name].append(_subset(r, part).summary())
    report = {
        "benchmark": "natural questions",
        "split": args.split,
        "started": started.isoformat(timespec="seconds"),
        "indexed_passages": passages,
        "answerable_questions": sum(q.answerable for q in questions),
        "unanswerable_questions": sum(not q.answerable for q in questions),
        "shown": SHOWN,
        "rows": summaries,
        "by_corpus": by_corpus,
        "per_question": {r.name: r.per_question for r in results},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"natural-{args.split}-{started.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(
        f"Natural questions, {args.split} ({report['answerable_questions']} answerable, "
        f"{report['unanswerable_questions']} unanswerable; {SHOWN} quotes shown):"
    )
    print(format_table(summaries))
    for corpus_name, part_summaries in by_corpus.items():
        print(f"\n{corpus_name} questions only:")
        print(format_table(part_summaries))
    print()
    for summary in summaries:
        print(format_styles(summary))
    print(f"\nresults: {path}")
    if args.realtimeqa:
        from bench import eval_realtimeqa

        print(f"\nRealTime QA, {args.realtimeqa} weeks:", flush=True)
        return eval_realtimeqa.main(["--weeks", args.realtimeqa])
    return 0


def _subset(result: RowResult, questions: Sequence[NaturalQuestion]) -> RowResult:
    """The same row's outcomes on some of its questions (from the per-question records)."""
    sub = RowResult(result.name)
    ids = {q.id for q in questions}
    sub.latencies_ms = result.latencies_ms
    for q in questions:
        record = result.per_question[q.id]
        if q.answerable:
            sub.first.append(bool(record["first"]))
            sub.among.append(bool(record["among"]))
            sub.refused.append(bool(record["abstained"]))
            sub.by_style.setdefault(q.style, []).append(
                (bool(record["first"]), bool(record["among"]))
            )
            shown = 0 if record["abstained"] else len(record["titles"])  # type: ignore[arg-type]
            sub.quotes_shown += shown
            sub.quotes_unrelated += int(record["unrelated"])  # type: ignore[call-overload]
        else:
            sub.unanswerable_refused.setdefault(str(q.kind), []).append(bool(record["abstained"]))
    sub.per_question = {k: v for k, v in result.per_question.items() if k in ids}
    return sub


if __name__ == "__main__":
    sys.exit(main())
