"""Answers and reports as plain text, for the terminal and the console.

The sentences that Discord shows as well (progress, refusals, source summaries) live here too,
so both front ends say the same thing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time

from bot import limits
from bot.services.about import About
from bot.services.ask import AnswerPage, Scope
from bot.services.check import CheckResult
from bot.services.feedback import VoteShare
from bot.services.reindex import ReindexProgress
from bot.services.sources import RefreshReport
from index.answer import Answer, Quote
from index.search import SyncReport
from ingest.sources import Removed, SourceStatus

NOT_FOUND = "I couldn't find this in the indexed news."
NOTHING_ELSE = "No other indexed article speaks to this message."
# The last page of a paged answer says so: every passage that cleared the quote bars is shown.
NO_MORE = " · no more relevant passages"
# How much of the earlier question a follow-up's answer repeats (a question has up to 500):
# a reminder, not a transcript, and a Discord embed must stay within limits.EMBED_TOTAL.
EARLIER_CHARS = 200

USAGE = (
    "Ask with /ask, or mention me with a question. I answer only by quoting the indexed "
    "articles, word for word, with outlet, title, date and link, and say so when they don't "
    "cover it. Server admins add sources with /source add; moderators rebuild the index "
    "with /reindex."
)


def day(moment: datetime | None) -> str:
    return moment.date().isoformat() if moment else "undated"


def citation(quote: Quote) -> str:
    parts = [quote.source, quote.title, day(quote.published_at)]
    if quote.url:
        parts.append(quote.url)
    return " · ".join(parts)


def quotes_as_text(quotes: list[Quote], first_number: int = 1) -> str:
    blocks = []
    for number, quote in enumerate(quotes, start=first_number):
        blocks.append(f"[{number}] {citation(quote)}\n{block_quote(quote.text)}")
    return "\n\n".join(blocks)


def block_quote(passage: str) -> str:
    return "\n".join("> " + line if line else ">" for line in passage.splitlines())


def answer_as_text(answer: Answer) -> str:
    if answer.abstained:
        lines = [NOT_FOUND]
        if answer.closest:
            lines.append(
                "Closest articles: " + "; ".join(dict.fromkeys(q.title for q in answer.closest))
            )
        return "\n".join(lines)
    return f"{quotes_as_text(answer.passages)}\n\n{searched_text(answer)}"


def page_as_text(page: AnswerPage) -> str:
    if page.answer.abstained:
        return read_with_line(page) + answer_as_text(page.answer)
    searched = searched_text(page.answer, page.scope)
    text = f"{read_with_line(page)}{quotes_as_text(page.quotes, page.first_number)}\n\n{searched}"
    if not page.is_last:
        text += "\n/more shows more passages."
    elif page.count > 1:
        text += "\n" + NO_MORE.removeprefix(" · ").capitalize() + "."
    return text


def check_as_text(result: CheckResult, page: AnswerPage) -> str:
    """A checked message: the article it links to (if indexed) first, then the answer (or,
    when nothing else answers, that nothing else does)."""
    answer = page_as_text(page)
    if result.linked is None:
        return answer
    linked = result.linked
    if page.answer.abstained:
        answer = NOTHING_ELSE
    return f"The linked article: {citation(linked)}\n{block_quote(linked.text)}\n\n{answer}"


def read_with_line(page: AnswerPage) -> str:
    """A first line when a follow-up was searched together with the earlier question."""
    if page.read_with is None:
        return ""
    return f"Read with the earlier question: “{limits.truncate(page.read_with, EARLIER_CHARS)}”\n"


def passages(count: int) -> str:
    """ "1 passage", "1,234 passages"."""
    return f"{count:,} passage" + ("" if count == 1 else "s")


def scope_words(scope: Scope, source_chars: int = 60) -> str:
    """ " from Reuters since 1 March 2025": what a question was limited to, or ""."""
    words = ""
    if scope.source:
        words += f" from {limits.truncate(scope.source, source_chars)}"
    if scope.since:
        since = scope.since.astimezone(UTC)
        words += f" since {since.day} {since:%B %Y}"
        if since.time() != time.min:
            words += f" {since:%H:%M} UTC"
    return words


def searched_text(answer: Answer, scope: Scope | None = None) -> str:
    within = scope_words(scope) if scope is not None else ""
    return f"({passages(answer.searched)} searched{within})"


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def reindex_progress_text(progress: ReindexProgress) -> str:
    if progress.total is None:
        return "Reindexing: reading the stored passages…"
    if progress.total == 0:
        return "Reindexing: every passage is already embedded; saving the new index…"
    text = (
        f"Reindexing: {progress.done:,} / {progress.total:,} passages embedded "
        f"({progress.percent}%)"
    )
    if progress.eta is not None and progress.done < progress.total:
        text += f", about {duration(progress.eta)} left"
    return text + "."


def reindex_done_text(report: SyncReport) -> str:
    return (
        f"Reindex done: {report.total:,} passages in the index ({report.embedded:,} embedded, "
        f"the rest from the cache) in {duration(report.seconds)}."
    )


def source_health(
    source: SourceStatus,
    when: Callable[[datetime], str] = day,
    error: Callable[[str], str] = str,
) -> str:
    """How a source is doing: local files, or when it was last fetched, and its last error."""
    if source.kind == "local":
        health = "local files"
    elif source.last_success_at:
        health = f"fetched {when(source.last_success_at)}"
    else:
        health = "never fetched"
    if source.last_error:
        health += f" · last error: {error(source.last_error)}"
    return health


def source_line(source: SourceStatus) -> str:
    owner = " (global)" if source.guild_id == 0 else ""
    return (
        f"#{source.id} {source.name}{owner} — {source.location} — {source.articles:,} articles, "
        f"{source.passages:,} passages — {source_health(source)}"
    )


def sources_as_text(sources: list[SourceStatus]) -> str:
    if not sources:
        return "No sources yet. Add one with /source add URL."
    return "\n".join(source_line(s) for s in sources)


def added_text(source: SourceStatus) -> str:
    return (
        f"Added source #{source.id} {source.name} ({source.location}). "
        "/source refresh fetches it now; otherwise it is fetched at the next scheduled refresh."
    )


def removed_text(removed: Removed) -> str:
    return (
        f"Removed {removed.name} with its {removed.articles:,} articles and "
        f"{removed.passages:,} passages; answers no longer quote them."
    )


def about_as_text(about: About) -> str:
    refreshed = day(about.last_refresh) if about.last_refresh else "never"
    built = day(about.index_built) if about.index_built else "not built yet"
    return (
        f"Indexed: {about.sources:,} sources, {about.articles:,} articles, "
        f"{about.passages:,} passages. Last refresh: {refreshed}. Index built: {built}.\n"
        f"Helpful votes: {vote_share(about.votes)}.\n{USAGE}"
    )


def vote_share(votes: VoteShare) -> str:
    """ "75% of 12 votes in the last 30 days", or that there were none."""
    if votes.share is None:
        return f"no votes in the last {votes.days} days"
    return f"{votes.share:.0%} of {votes.total:,} votes in the last {votes.days} days"


def refreshed_text(report: RefreshReport) -> str:
    if not report.outcomes:
        return "No web sources to refresh. Add one with /source add URL."
    lines = [outcome.summary() for outcome in report.outcomes]
    if report.index is not None:
        lines.append(
            f"Index: {report.index.added:,} passages added, {report.index.removed:,} removed."
        )
    return "\n".join(lines)
