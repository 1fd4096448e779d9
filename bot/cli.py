"""The ``newsbot`` command: ingest, sources, refresh, reindex, ask, stats, console, run.

Glue, as in pipx's ``main.py``: each command parses its options, opens the process's resources
(``_opened``, the one place), calls one service and prints what it returns.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Coroutine, Iterator
from contextlib import AsyncExitStack, ExitStack, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from bot.progress import progress_bar, progress_bars
from bot.resources import Resources, resources_on
from bot.services import Services
from bot.services.sources import changed_anything
from bot.settings import Settings, get_settings, misspelt_settings
from index.answer import Answer
from index.query import parse_since
from index.search import SearchFilters, SyncReport
from index.updates import BUILT, COMPARED, FROM_LOG
from ingest.dates import parse_as_of
from ingest.errors import InputError, NewsbotError
from ingest.models import GLOBAL_GUILD

if TYPE_CHECKING:
    import procrastinate

log = logging.getLogger(__name__)
T = TypeVar("T")

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
    # A line per job, chores every few seconds included: debug detail, not news.
    if settings.log_level != "DEBUG":
        logging.getLogger("procrastinate").setLevel(logging.WARNING)


def _settings() -> Settings:
    try:
        settings = get_settings()
    except InputError as error:
        raise fail(str(error), code=2) from None
    for warning in misspelt_settings():
        err.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False)
    _setup_logging(settings)
    return settings


@dataclass(frozen=True)
class Opened:
    """What a command works with: the process's resources, the services on them, and the
    event loop they live on (blocking work runs between its runs, in the main thread)."""

    settings: Settings
    resources: Resources
    services: Services
    runner: asyncio.Runner

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(work)


@contextmanager
def _opened() -> Iterator[Opened]:
    """The settings, then the resources (``bot/resources.py``), closed when the command ends."""
    settings = _settings()
    with asyncio.Runner() as runner, resources_on(runner, settings) as resources:
        # One person at the terminal: no cooldown between questions.
        services = Services.create(resources, cooldown_seconds=0)
        yield Opened(settings, resources, services, runner)


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

    owner = guild if guild is not None else GLOBAL_GUILD
    with _opened() as opened:
        try:
            with progress_bar("Reading articles", "articles", quiet, err) as report:
                result = ingest_paths(opened.resources.engine, paths, source, owner, report)
            for problem in result.problems:
                err.print(f"[yellow]skipped:[/yellow] {escape(problem)}", highlight=False)
            stored = result.result
            out.print(
                f"{escape(result.source_name)}: {stored.added} new, {stored.updated} updated, "
                f"{stored.unchanged} unchanged, {stored.duplicates} duplicate articles; "
                f"{stored.passages_added} passages added, {stored.passages_removed} removed"
            )
            _sync_index(opened.resources, quiet)
        except NewsbotError as error:
            raise fail(str(error)) from None
    if result.problems:
        raise typer.Exit(1)


def _sync_index(resources: Resources, quiet: bool, rebuild: bool = False) -> None:
    if resources.settings.queued:
        _queue_embedding(resources)
    retriever = resources.retriever
    with progress_bar("Embedding passages", "passages", quiet, err) as report:
        result = retriever.rebuild(report) if rebuild else retriever.sync(report)
    _print_index(result)


HOW_FOUND = {
    FROM_LOG: "from the change log",
    COMPARED: "compared with the database",
    BUILT: "built from the database",
}


def _print_index(result: SyncReport) -> None:
    out.print(
        f"index: {result.total} passages ({result.added} added, {result.removed} removed, "
        f"{result.embedded} embedded) in {result.seconds:.1f}s, {HOW_FOUND[result.found_by]}"
    )


def _queue_embedding(resources: Resources) -> None:
    """With workers, new passages are theirs to embed: queue that; the index takes what is done."""
    from bot.jobs.queue import defer_embedding, open_queue

    async def queue() -> None:
        async with open_queue(resources.settings, resources.engine) as jobs:
            await defer_embedding(jobs)

    asyncio.run(queue())
    err.print("new passages are queued for the workers to embed (NEWSBOT_JOBS=queue)")


@app.command()
def worker() -> None:
    """Run queued jobs: fetch sources, embed passages (NEWSBOT_JOBS=queue, PostgreSQL)."""
    from bot.jobs.queue import check_queue_settings
    from bot.worker import run_worker

    settings = _settings()
    if not settings.queued:
        raise fail(
            "newsbot worker runs queued jobs: set NEWSBOT_JOBS=queue and a PostgreSQL "
            "NEWSBOT_DATABASE_URL (README: Running on several machines)"
        )
    check_queue_settings(settings)
    with suppress(KeyboardInterrupt):
        asyncio.run(run_worker(settings))


@contextmanager
def _queue(opened: Opened) -> Iterator[procrastinate.App]:
    """The job queue (``NEWSBOT_JOBS=queue``), open on the command's event loop."""
    from bot.jobs.queue import open_queue

    stack = AsyncExitStack()
    settings, engine = opened.settings, opened.resources.engine
    queue = opened.run(stack.enter_async_context(open_queue(settings, engine)))
    try:
        yield queue
    finally:
        opened.run(stack.aclose())


@app.command()
def reindex(quiet: Quiet = False) -> None:
    """Rebuild the index from the database and swap it in atomically (with workers: a worker
    embeds what has no vector yet, then every bot rebuilds its index)."""
    with _opened() as opened:
        if not opened.settings.queued:
            _sync_index(opened.resources, quiet, rebuild=True)
            return
        from bot.services.queued import run_reindex_job

        err.print("reindex queued for the workers (NEWSBOT_JOBS=queue)")
        with (
            _queue(opened) as queue,
            progress_bar("Embedding passages (worker)", "passages", quiet, err) as report,
        ):
            outcome = opened.run(run_reindex_job(queue, opened.resources.engine, report))
    out.print(
        f"reindex done by a worker: {outcome['embedded']} passages embedded, "
        f"{outcome['pruned']} unused vectors dropped; every bot rebuilds its index from the "
        "database now"
    )


def _parse_day(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    parsed = parse_as_of(value)
    if parsed is None:
        raise fail(f"{option} must be an ISO date such as 2022-06-17")
    return parsed


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
    from bot.services.ask import page_as_json, paginate

    if (question is None) == (questions is None):
        raise fail("give either a QUESTION or --questions FILE", 2)
    day = _parse_day(as_of, "--as-of")
    with _opened() as opened:
        try:
            now = day or datetime.now(UTC)  # "--since 'last week'" counts back from it
            start = None if since is None else parse_since(since, now)
            # An unknown source fails once here, not on every question.
            opened.resources.retriever.narrowed(SearchFilters(guild_id=guild), source, start)
        except NewsbotError as error:
            raise fail(str(error), 2) from None
        asks = opened.services.ask

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
    with _opened() as opened:
        shown = opened.services.about.stats_blocking()
    counts, manifest = shown.counts, shown.manifest
    out.print(f"sources:  {counts.sources}")
    out.print(f"articles: {counts.articles}")
    out.print(f"passages: {counts.passages}")
    if manifest is None:
        out.print("index:    not built yet (run `newsbot reindex`)")
    else:
        out.print(f"index:    {manifest.count} vectors, version {manifest.version}")
        out.print(f"search:   {manifest.describe()}")
        out.print(f"model:    {manifest.model} ({manifest.dimension} dimensions)")
    out.print(f"database: {shown.database}")


@app.command()
def console(guild: Guild = None) -> None:
    """A local prompt that answers questions as the bot would."""
    from bot.console import run_console

    with _opened() as opened:
        run_console(opened.runner, opened.services, guild_id=guild)


@app.command()
def run(quiet: Quiet = False) -> None:
    """Start the bot (the console without a token); the first run ingests the sample corpus."""
    from bot.jobs.queue import check_queue_settings

    with _opened() as opened:
        check_queue_settings(opened.settings)
        ensure_sample_corpus(opened.resources, quiet)
        if opened.settings.discord_token is None:
            err.print(
                "DISCORD_TOKEN is not set, so the Discord bot is not started "
                "(see README: Running the Discord bot). Opening the local console instead."
            )
            from bot.console import run_console

            run_console(opened.runner, opened.services, guild_id=None)
            return
        from bot.__main__ import run_bot

        try:
            run_bot(opened.runner, opened.resources)
        except NewsbotError as error:
            raise fail(str(error)) from None


def ensure_sample_corpus(resources: Resources, quiet: bool) -> None:
    """Fill a database that never had a source with the sample articles that ship with newsbot."""
    from bot.services.sources import SourceService
    from ingest.pipeline import ingest_paths
    from ingest.sample import SAMPLE_CORPUS

    if SourceService(resources).never_had_sources():
        err.print("New database: ingesting the sample corpus.")
        with progress_bar("Reading articles", "articles", quiet, err) as report:
            ingest_paths(resources.engine, [SAMPLE_CORPUS], "sample", GLOBAL_GUILD, report)
    if resources.settings.queued and resources.settings.discord_token is not None:
        return  # the bot queues their embedding and follows the workers (bot/app.py)
    _sync_index(resources, quiet)


sources_app = typer.Typer(
    help="News sources: web feeds and pages, local files and folders.", no_args_is_help=True
)
app.add_typer(sources_app, name="sources")
feedback_app = typer.Typer(help="Members' votes on the bot's answers.", no_args_is_help=True)
app.add_typer(feedback_app, name="feedback")


@feedback_app.command("export")
def feedback_export(
    file: Annotated[Path, typer.Argument(help="The JSONL file to write (replaced).")],
    guild: Annotated[int | None, typer.Option("--guild", help="Only this server's votes.")] = None,
) -> None:
    """Write every vote, with its question and ranked quotes, one JSON object per line."""
    with _opened() as opened:
        try:
            written = opened.services.feedback.export_blocking(file, guild)
        except OSError as error:
            raise fail(f"cannot write {file}: {error.strerror or error}") from None
    out.print(f"{written:,} votes written to {escape(str(file))}", highlight=False)


@sources_app.command("add")
def sources_add(
    location: Annotated[
        str, typer.Argument(help="A feed or web page URL, or a local file or folder.")
    ],
    name: Annotated[str | None, typer.Option(help="Display name (default: host name).")] = None,
    guild: Guild = None,
) -> None:
    """Add a source; `newsbot refresh` fetches it (a web URL's first fetch finds its feed)."""
    owner = guild if guild is not None else GLOBAL_GUILD
    with _opened() as opened:
        try:
            source = opened.services.sources.add_location_blocking(location, name, owner)
        except NewsbotError as error:
            raise fail(str(error)) from None
    out.print(
        f"added source {source.id}: {source.name} ({source.kind}) {source.location}",
        highlight=False,
        markup=False,
    )
    out.print(f"fetch it now with: newsbot refresh --source {source.id}", highlight=False)


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if moment else "never"


@sources_app.command("list")
def sources_list(guild: Guild = None) -> None:
    """Every source with its health: last success, last error, articles and passages."""
    from rich.table import Table

    with _opened() as opened:
        sources = opened.services.sources.visible_blocking(guild)
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
    with _opened() as opened:
        try:
            removed = opened.services.sources.remove_blocking(source_id, None)
        except NewsbotError as error:
            raise fail(str(error)) from None
        out.print(
            f"removed source {source_id}: {escape(removed.name)} "
            f"({removed.articles} articles, {removed.passages} passages)",
            highlight=False,
        )
        if not opened.settings.queued:
            _sync_index(opened.resources, quiet)
        elif removed.passages:
            from bot.jobs.queue import SYNC, notify_index

            notify_index(opened.resources.engine, SYNC)
            out.print("every bot drops its passages from its index now")


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
    """Fetch the sources that are due (feeds, pages, local folders), then embed new passages
    (with workers: queued for them, each source's progress shown until they are done)."""
    steps = [("Refreshing sources", "sources"), ("Embedding passages", "passages")]
    with _opened() as opened, ExitStack() as stack:
        sources = opened.services.sources
        queued = opened.settings.queued
        if queued:
            from bot.services.queued import QueuedSourceService

            # The bots take the workers' passages in themselves: no index here to update.
            sources = QueuedSourceService(
                opened.resources, stack.enter_context(_queue(opened)), None
            )
            err.print("refreshes queued for the workers (NEWSBOT_JOBS=queue)")
        try:
            with progress_bars(steps, quiet, err) as (fetching, embedding):
                report = opened.run(
                    sources.refresh_sources(
                        source or None, force=everything, progress=fetching, indexing=embedding
                    )
                )
        except NewsbotError as error:
            raise fail(str(error)) from None
    outcomes = report.outcomes
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
    elif queued and changed_anything(outcomes):
        out.print("index: the workers embedded the new passages; every bot takes them in now")
    elif report.index is not None:
        _print_index(report.index)
    else:
        out.print("index: unchanged")
    if any(o.status == "error" for o in outcomes):
        raise typer.Exit(1)


@app.command("migrate-to")
def migrate_to(
    url: Annotated[
        str, typer.Argument(help="The new database, e.g. postgresql+psycopg://user@host/newsbot")
    ],
    replace: Annotated[
        bool, typer.Option("--replace", help="Delete what the target's newsbot tables hold first.")
    ] = False,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Rows read and written at a time.")
    ] = 2000,
    quiet: Quiet = False,
) -> None:
    """Copy this deployment's database (NEWSBOT_DATABASE_URL, by default the SQLite file in the
    data directory) into another, e.g. PostgreSQL: every table, ids kept, vectors included.

    The target is brought to the current schema first and must be empty (or --replace); this
    database is only read. Then point NEWSBOT_DATABASE_URL at the target.
    """
    from ingest.database_copy import check_copyable, copy_database, tables
    from ingest.db import open_database

    settings = _settings()
    current = settings.resolved_database_url
    if current.startswith("sqlite:///") and not Path(current.removeprefix("sqlite:///")).is_file():
        raise fail(f"there is no database to move at {current.removeprefix('sqlite:///')}")
    source = open_database(current, migrate=False)
    try:
        target = open_database(url)
        try:
            check_copyable(source, target, replace)  # before the bars: a refusal is one line
            names = [table.name for table in tables()]
            steps = [(f"Copying {name}", "rows") for name in names]
            with progress_bars(steps, quiet, err) as bars:
                by_name = dict(zip(names, bars, strict=True))
                report = copy_database(
                    source,
                    target,
                    replace=replace,
                    batch_size=batch_size,
                    progress=lambda table, done, total: by_name[table](done, total),
                )
            shown = target.url.render_as_string(hide_password=True)
        finally:
            target.dispose()
    finally:
        source.dispose()
    copied = ", ".join(f"{name} {rows:,}" for name, rows in report.rows.items() if rows)
    out.print(f"copied {report.total:,} rows into {escape(shown)} ({copied})", highlight=False)
    out.print(
        "now set NEWSBOT_DATABASE_URL to it; the index is rebuilt from the copied vectors, "
        "embedding nothing",
        highlight=False,
    )


def main() -> None:  # pragma: no cover - console script entry
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
