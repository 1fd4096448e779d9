"""The ``newsbot`` command: ingest, reindex, ask, stats, console, run."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bot.context import AppContext, open_context
from bot.progress import progress_bar
from bot.settings import Settings, get_settings
from index.answer import Answer
from index.search import SearchFilters
from ingest.errors import NewsbotError
from ingest.models import GLOBAL_GUILD

log = logging.getLogger(__name__)

app = typer.Typer(
    help="Answer questions about the news by quoting indexed articles, with citations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
Guild = Annotated[
    int | None, typer.Option("--guild", help="Discord server id (default: global sources).")
]


def _setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=getattr(logging, settings.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("httpx", "sentence_transformers", "transformers", "trafilatura", "faiss"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _context() -> tuple[Settings, AppContext]:
    settings = get_settings()
    _setup_logging(settings)
    return settings, open_context(settings).__enter__()


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders: .txt .md .html .jsonl")],
    source: Annotated[str | None, typer.Option(help="Source name (default: folder name).")] = None,
    guild: Guild = None,
    quiet: Quiet = False,
) -> None:
    """Add articles from local files, then embed their new passages."""
    from ingest.pipeline import ingest_paths

    _, context = _context()
    try:
        with progress_bar("Reading articles", "articles", quiet, err) as report:
            result = ingest_paths(
                context.engine, paths, source, guild if guild is not None else GLOBAL_GUILD, report
            )
        for problem in result.problems:
            err.print(f"[yellow]skipped:[/yellow] {problem}", highlight=False)
        stored = result.result
        out.print(
            f"{result.source_name}: {stored.added} new, {stored.updated} updated, "
            f"{stored.unchanged} unchanged, {stored.duplicates} duplicate articles; "
            f"{stored.passages_added} passages added, {stored.passages_removed} removed"
        )
        _sync_index(context, quiet)
    except NewsbotError as error:
        raise fail(str(error)) from None
    if result.problems:
        raise typer.Exit(1)


def _sync_index(context: AppContext, quiet: bool, rebuild: bool = False) -> None:
    retriever = context.retriever
    with progress_bar("Embedding passages", "passages", quiet, err) as report:
        result = retriever.rebuild(report) if rebuild else retriever.sync(report)
    out.print(
        f"index: {result.total} passages ({result.added} added, {result.removed} removed, "
        f"{result.embedded} embedded) in {result.seconds:.1f}s"
    )


@app.command()
def reindex(quiet: Quiet = False) -> None:
    """Rebuild the index from the database and swap it in atomically."""
    _, context = _context()
    _sync_index(context, quiet, rebuild=True)


def _parse_day(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise fail(f"{option} must be an ISO date such as 2022-06-17") from None
    if isinstance(parsed, datetime) and len(value) <= 10:
        # A bare date means the whole of that day.
        parsed = datetime.combine(date.fromisoformat(value[:10]), datetime.max.time())
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@app.command()
def ask(
    question: Annotated[str | None, typer.Argument(help="The question.")] = None,
    k: Annotated[int, typer.Option("--k", min=1, max=50, help="Passages to quote.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    questions: Annotated[
        Path | None, typer.Option("--questions", help="File with one question per line.")
    ] = None,
    guild: Guild = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Answer as on this ISO date.")
    ] = None,
) -> None:
    """Quote the passages that answer a question (or say nothing relevant is indexed)."""
    if (question is None) == (questions is None):
        raise fail("give either a QUESTION or --questions FILE", 2)
    _, context = _context()
    filters = SearchFilters(guild_id=guild, as_of=_parse_day(as_of, "--as-of"))
    answerer = context.answerer
    if questions is not None:
        if not questions.is_file():
            raise fail(f"no such file: {questions}", 2)
        for line in questions.read_text(encoding="utf-8", errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                record = answerer.answer(line, k=k, filters=filters).as_json()
            except NewsbotError as error:
                record = {"question": line.strip(), "error": str(error)}
            out.print_json(json.dumps(record)) if not as_json else print(json.dumps(record))
        return
    assert question is not None
    try:
        answer = answerer.answer(question, k=k, filters=filters)
    except NewsbotError as error:
        raise fail(str(error), 2) from None
    if as_json:
        print(json.dumps(answer.as_json(), ensure_ascii=False))
    else:
        print_answer(answer, out)


def print_answer(answer: Answer, console: Console) -> None:
    from bot.text import answer_as_text

    console.print(answer_as_text(answer), highlight=False, markup=False, soft_wrap=True)


@app.command()
def stats() -> None:
    """Sources, articles, passages, index size and model."""
    from index.vectors import read_manifest
    from ingest.db import session_scope
    from ingest.store import corpus_stats

    settings, context = _context()
    with session_scope(context.engine) as session:
        counts = corpus_stats(session)
    manifest = read_manifest(settings.index_dir)
    out.print(f"sources:  {counts.sources}")
    out.print(f"articles: {counts.articles}")
    out.print(f"passages: {counts.passages}")
    if manifest is None:
        out.print("index:    not built yet (run `newsbot reindex`)")
    else:
        out.print(f"index:    {manifest.count} vectors, version {manifest.version}")
        out.print(f"model:    {manifest.model} ({manifest.dimension} dimensions)")
    out.print(f"database: {context.engine.url.render_as_string(hide_password=True)}")


@app.command()
def console(guild: Guild = None) -> None:
    """A local prompt that answers questions as the bot would."""
    from bot.console import run_console

    _, context = _context()
    run_console(context, guild_id=guild)


@app.command()
def run(quiet: Quiet = False) -> None:
    """Start the bot (the console without a token); the first run ingests the sample corpus."""
    settings, context = _context()
    ensure_sample_corpus(context, quiet)
    if settings.discord_token is None:
        err.print(
            "DISCORD_TOKEN is not set, so the Discord bot is not started "
            "(see README: Running the Discord bot). Opening the local console instead."
        )
        from bot.console import run_console

        run_console(context, guild_id=None)
        return
    from bot.__main__ import run_bot

    run_bot(context)


def ensure_sample_corpus(context: AppContext, quiet: bool) -> None:
    """Fill an empty database with the sample articles that ship with newsbot."""
    from ingest.db import session_scope
    from ingest.pipeline import ingest_paths
    from ingest.sample import SAMPLE_CORPUS
    from ingest.store import corpus_stats

    with session_scope(context.engine) as session:
        empty = corpus_stats(session).articles == 0
    if empty:
        err.print("Empty database: ingesting the sample corpus.")
        with progress_bar("Reading articles", "articles", quiet, err) as report:
            ingest_paths(context.engine, [SAMPLE_CORPUS], "sample", GLOBAL_GUILD, report)
    _sync_index(context, quiet)


def main() -> None:  # pragma: no cover - console script entry
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
