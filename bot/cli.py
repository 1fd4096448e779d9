"""The ``newsbot`` command: ingest, sources, refresh, reindex, ask, stats, console, run."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from bot.context import AppContext, open_context
from bot.progress import progress_bar
from bot.settings import Settings, get_settings, misspelt_settings
from index.answer import Answer
from index.query import parse_since
from index.search import SearchFilters
from ingest.errors import InputError, NewsbotError
from ingest.models import GLOBAL_GUILD

log = logging.getLogger(__name__)

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class NewsbotCommands(TyperGroup):
    """Every command's domain error becomes one line on stderr and exit status 1.

    Commands catch the errors they expect; this is the edge for the rest (a database URL
    that cannot be used, a model that cannot load, an index that cannot be read).
    """

    def invoke(self, ctx: Any) -> Any:  # typer's own Context type is private
        try:
            return super().invoke(ctx)
        except NewsbotError as error:
            raise fail(str(error)) from None


app = typer.Typer(
    cls=NewsbotCommands,
    help="Answer questions about the news by quoting indexed articles, with citations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
Guild = Annotated[
    int | None, typer.Option("--guild", help="Discord server id (default: global sources).")
]


def _setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("httpx", "sentence_transformers", "transformers", "trafilatura", "faiss"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _context() -> tuple[Settings, AppContext]:
    try:
        settings = get_settings()
    except InputError as error:
        raise fail(str(error), code=2) from None
    for warning in misspelt_settings():
        err.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False)
    _setup_logging(settings)
    return settings, open_context(settings).__enter__()


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False)
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
            err.print(f"[yellow]skipped:[/yellow] {escape(problem)}", highlight=False)
        stored = result.result
        out.print(
            f"{escape(result.source_name)}: {stored.added} new, {stored.updated} updated, "
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
        # A bare date means the whole of that day: "as of" is its end.
        parsed = datetime.combine(date.fromisoformat(value[:10]), datetime.max.time())
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@app.command()
def ask(
    question: Annotated[str | None, typer.Argument(help="The question.")] = None,
    k: Annotated[int, typer.Option("--k", min=1, max=50, help="Passages to quote.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    questions: Annotated[
        Path | None,
        typer.Option(
            "--questions", help="File with one question per line; prints one JSON line each."
        ),
    ] = None,
    guild: Guild = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Answer as on this ISO date.")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Only articles published since then: 2025-03-01, last week, March 2025.",
        ),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option("--source", help="Only this source (its name) or outlet (e.g. Reuters)."),
    ] = None,
) -> None:
    """Quote the passages that answer a question (or say nothing relevant is indexed).

    The answer is the one /ask gives (the same service call): the same quotes, in order.
    """
    from bot.services.ask import AskService, page_as_json, paginate

    if (question is None) == (questions is None):
        raise fail("give either a QUESTION or --questions FILE", 2)
    _, context = _context()
    day = _parse_day(as_of, "--as-of")
    try:
        now = day or datetime.now(UTC)  # "--since 'last week'" counts back from it
        start = None if since is None else parse_since(since, now)
        # An unknown source fails once here, not on every question.
        context.retriever.narrowed(SearchFilters(guild_id=guild), source, start)
    except NewsbotError as error:
        raise fail(str(error), 2) from None
    asks = AskService(context, cooldown_seconds=0)

    def answered(line: str) -> Answer:
        return asks.answer_blocking(line, guild, source, start, k=k, as_of=day)

    def as_record(answer: Answer) -> dict[str, object]:
        return page_as_json(paginate(answer, k)[0])

    if questions is not None:
        if not questions.is_file():
            raise fail(f"no such file: {questions}", 2)
        # One object per line, blank lines included, so line N of the output answers line N.
        for line in questions.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = as_record(answered(line))
            except NewsbotError as error:
                record = {"question": line.strip(), "error": str(error)}
            print(json.dumps(record, ensure_ascii=False), flush=True)
        return
    assert question is not None
    try:
        reply = answered(question)
    except NewsbotError as error:
        raise fail(str(error), 2) from None
    if as_json:
        print(json.dumps(as_record(reply), ensure_ascii=False))
    else:
        print_answer(reply, out)


def print_answer(answer: Answer, console: Console) -> None:
    from bot.text import answer_as_text
    from ingest.sanitize import clean_text

    # Text stored before ingest sanitised it may still hold escape sequences.
    shown = clean_text(answer_as_text(answer))
    console.print(shown, highlight=False, markup=False, soft_wrap=True)


@app.command()
def stats() -> None:
    """Sources, articles, passages, index size and model."""
    from index.search import orphan_ids
    from index.segments import read_catalog_ids, read_manifest
    from ingest.db import session_scope
    from ingest.store import corpus_stats

    settings, context = _context()
    if len(orphan_ids(context.engine, read_catalog_ids(settings.index_dir))):
        # An interrupted removal left vectors of deleted passages: repair before counting.
        context.retriever.sync()
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
        out.print(f"search:   {manifest.describe()}")
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

    try:
        run_bot(context)
    except NewsbotError as error:
        raise fail(str(error)) from None


def ensure_sample_corpus(context: AppContext, quiet: bool) -> None:
    """Fill a database that never had a source with the sample articles that ship with newsbot."""
    from ingest.db import session_scope
    from ingest.pipeline import ingest_paths
    from ingest.sample import SAMPLE_CORPUS
    from ingest.sources import never_had_sources

    with session_scope(context.engine) as session:
        empty = never_had_sources(session)
    if empty:
        err.print("New database: ingesting the sample corpus.")
        with progress_bar("Reading articles", "articles", quiet, err) as report:
            ingest_paths(context.engine, [SAMPLE_CORPUS], "sample", GLOBAL_GUILD, report)
    _sync_index(context, quiet)


sources_app = typer.Typer(
    help="News sources: web feeds and pages, local files and folders.", no_args_is_help=True
)
app.add_typer(sources_app, name="sources")


@sources_app.command("add")
def sources_add(
    location: Annotated[
        str, typer.Argument(help="A feed or web page URL, or a local file or folder.")
    ],
    name: Annotated[str | None, typer.Option(help="Display name (default: host name).")] = None,
    guild: Guild = None,
) -> None:
    """Add a source; `newsbot refresh` fetches it (a web URL's first fetch finds its feed)."""
    from ingest.db import session_scope
    from ingest.sources import add_source, refuse_internal_address, validate_web_url

    settings, context = _context()
    owner = guild if guild is not None else GLOBAL_GUILD
    try:
        if "://" in location:
            url = validate_web_url(location)
            refuse_internal_address(url, settings.fetch_policy().allow_hosts)
        with session_scope(context.engine) as session:
            source = add_source(session, location, name, owner)
            source_id, label, kind, where = source.id, source.name, source.kind, source.location
    except NewsbotError as error:
        raise fail(str(error)) from None
    out.print(f"added source {source_id}: {label} ({kind}) {where}", highlight=False, markup=False)
    out.print(f"fetch it now with: newsbot refresh --source {source_id}", highlight=False)


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if moment else "never"


@sources_app.command("list")
def sources_list(guild: Guild = None) -> None:
    """Every source with its health: last success, last error, articles and passages."""
    from rich.table import Table

    from ingest.db import session_scope
    from ingest.sources import list_sources

    _, context = _context()
    with session_scope(context.engine) as session:
        sources = list_sources(session, guild)
    if not sources:
        out.print("no sources yet: add one with `newsbot sources add URL_OR_PATH`")
        return
    table = Table(show_lines=False)
    for column in ("id", "name", "kind", "location", "guild"):
        table.add_column(column, overflow="fold")
    table.add_column("last success", overflow="fold")
    table.add_column("last error", overflow="fold", style="red")
    table.add_column("articles", justify="right")
    table.add_column("passages", justify="right")
    for source in sources:
        error = f"{_when(source.last_error_at)}: {source.last_error}" if source.last_error else ""
        table.add_row(
            str(source.id),
            escape(source.name),
            source.kind,
            escape(source.location),
            "global" if source.guild_id == GLOBAL_GUILD else str(source.guild_id),
            _when(source.last_success_at),
            escape(error),
            str(source.articles),
            str(source.passages),
        )
    out.print(table, highlight=False)


@sources_app.command("remove")
def sources_remove(
    source_id: Annotated[int, typer.Argument(help="The source id (see `sources list`).")],
    quiet: Quiet = False,
) -> None:
    """Delete a source with its articles and passages, and drop them from the index."""
    from ingest.db import session_scope
    from ingest.sources import remove_source

    _, context = _context()
    try:
        with session_scope(context.engine) as session:
            removed = remove_source(session, source_id)
    except NewsbotError as error:
        raise fail(str(error)) from None
    out.print(
        f"removed source {source_id}: {escape(removed.name)} "
        f"({removed.articles} articles, {removed.passages} passages)",
        highlight=False,
    )
    _sync_index(context, quiet)


@app.command()
def refresh(
    source: Annotated[
        list[int] | None,
        typer.Option("--source", help="Refresh only this source id, due or not (repeatable)."),
    ] = None,
    everything: Annotated[
        bool, typer.Option("--all", help="Refresh every source, due or not.")
    ] = False,
    quiet: Quiet = False,
) -> None:
    """Fetch the sources that are due (feeds, pages, local folders), then embed new passages."""
    import asyncio
    from datetime import timedelta

    from ingest.fetch import SafeFetcher
    from ingest.refresh import RefreshOutcome, refresh_sources

    settings, context = _context()
    try:
        policy = settings.fetch_policy()
    except NewsbotError as error:
        raise fail(str(error)) from None

    async def run(report: Callable[[int, int], None]) -> list[RefreshOutcome]:
        async with SafeFetcher(policy) as fetcher:
            return await refresh_sources(
                context.engine,
                fetcher,
                source_ids=source or None,
                force=everything,
                progress=report,
                interval=timedelta(minutes=settings.refresh_minutes),
                deadline_seconds=settings.source_deadline_seconds,
            )

    try:
        with progress_bar("Refreshing sources", "sources", quiet, err) as report:
            outcomes = asyncio.run(run(report))
    except NewsbotError as error:
        raise fail(str(error)) from None
    waiting = [o for o in outcomes if o.status == "skipped" and o.error is None]
    for outcome in outcomes:
        if outcome in waiting:
            continue
        line = outcome.summary()
        if outcome.status == "error":
            err.print(line, style="red", markup=False, highlight=False, soft_wrap=True)
        else:
            out.print(line, highlight=False, markup=False, soft_wrap=True)
        for problem in outcome.problems:
            err.print(f"  skipped: {problem}", markup=False, highlight=False, soft_wrap=True)
    if waiting:
        soonest = min(o.next_fetch_at for o in waiting if o.next_fetch_at is not None)
        out.print(
            f"{len(waiting)} sources not due yet (next at {_when(soonest)} UTC); "
            "use --all to refresh them now",
            highlight=False,
        )
    if len(waiting) == len(outcomes):
        out.print("nothing to refresh")
    elif any(o.added or o.updated or o.passages_added or o.passages_removed for o in outcomes):
        _sync_index(context, quiet)
    else:
        out.print("index: unchanged")
    if any(o.status == "error" for o in outcomes):
        raise typer.Exit(1)


def main() -> None:  # pragma: no cover - console script entry
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
