"""``newsbot console``: try the bot's answers locally, without Discord."""

from __future__ import annotations

import logging

from rich.console import Console

from bot.context import AppContext
from bot.text import answer_as_text
from index.search import SearchFilters
from ingest.errors import NewsbotError

log = logging.getLogger(__name__)

HELP = """Type a question, or a command:
  /ask QUESTION   quote the passages that answer it
  /reindex        rebuild the index
  /stats          what is indexed
  /quit           leave"""


def run_console(context: AppContext, guild_id: int | None, console: Console | None = None) -> None:
    console = console or Console()
    console.print("newsbot console — ask about the indexed news. /help for commands.")
    filters = SearchFilters(guild_id=guild_id)
    while True:
        try:
            line = console.input("[bold cyan]newsbot>[/bold cyan] ").strip()
        except (EOFError, KeyboardInterrupt):
            console.print()
            return
        if not line:
            continue
        command, _, rest = line.partition(" ") if line.startswith("/") else ("/ask", "", line)
        try:
            if command in ("/quit", "/exit"):
                return
            if command == "/help":
                console.print(HELP)
            elif command == "/ask":
                answer = context.answerer.answer(
                    rest, k=context.settings.answer_passages, filters=filters
                )
                console.print(answer_as_text(answer), markup=False, highlight=False)
            elif command == "/reindex":
                result = context.retriever.rebuild()
                console.print(f"index rebuilt: {result.total} passages in {result.seconds:.1f}s")
            elif command == "/stats":
                console.print(f"{context.retriever.searchable_count(filters)} passages indexed")
            else:
                console.print(f"unknown command {command}; /help lists them")
        except NewsbotError as error:
            console.print(f"[red]error:[/red] {error}")
