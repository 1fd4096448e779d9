"""``newsbot console``: the bot's commands at a local prompt, answered as text.

The same services as the Discord commands do the work, so trying the bot here is trying the
bot. The console acts as the host: it sees every source and adds global ones.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shlex
from collections.abc import Callable

from rich.console import Console

from bot import text
from bot.console_follow import ConsoleFollows
from bot.services import Services
from bot.services.ask import AnswerPage, Conversation, paginate
from bot.services.check import read_claim
from bot.services.reindex import ReindexProgress, watch
from ingest.errors import InputError, NewsbotError
from ingest.sanitize import clean_text

log = logging.getLogger(__name__)

HELP = """Type a question, or a command:
  /ask QUESTION [source:NAME] [since:DATE]
                             quote the passages that answer it, as /ask does in Discord;
                             a follow-up ("And the ferry?") is read with the question
                             before, as in a Discord thread
  /more                      the next passages of the last answer
  /reindex                   rebuild the index
  /source add URL [NAME]     add a web source
  /source list               the sources and their health
  /source remove ID          remove a source with its articles
  /source refresh            fetch the web sources now
  /check TEXT                what the news says about a message (paste it, links too)
  /follow add TOPIC [source:NAME]
                             print new articles about TOPIC as /source refresh stores
                             them; /follow list | remove ID | pause ID | resume ID
  /about                     what is indexed
  /quit                      leave"""

PROGRESS_EVERY = 2.0


# Discord shows a command's options as "name:value"; the console reads them the same way.
OPTION = re.compile(r"\b(source|since):\s*(.*?)\s*(?=\b(?:source|since):|$)")


def _options(line: str) -> tuple[str, dict[str, str]]:
    """The question and its "source:"/"since:" options, from a typed /ask line."""
    options = {match.group(1): match.group(2) for match in OPTION.finditer(line)}
    return OPTION.sub(" ", line).strip(), {k: v for k, v in options.items() if v}


class ConsoleSession:
    """Runs one command line at a time and ``say``s the result."""

    def __init__(
        self,
        services: Services,
        guild_id: int | None,
        say: Callable[[str], None],
        progress_every: float = PROGRESS_EVERY,
    ) -> None:
        self.services = services
        self.guild_id = guild_id
        self.say = say
        self.progress_every = progress_every
        self.pages: list[AnswerPage] = []
        self.page = 0
        # The console is one conversation, like a Discord thread: what follow-ups lean on.
        self.earlier: Conversation | None = None
        self.follows = ConsoleFollows(services, guild_id, say)

    async def run_line(self, line: str) -> bool:
        """Run one line; False once the user asked to leave. Errors are said, never raised."""
        line = line.strip()
        if not line:
            return True
        command, _, rest = line.partition(" ") if line.startswith("/") else ("/ask", "", line)
        if command in ("/quit", "/exit"):
            return False
        try:
            await self.dispatch(command, rest.strip())
        except NewsbotError as error:
            self.say(f"error: {error}")
        except Exception:
            log.exception("console command %s failed", command)
            self.say("error: something went wrong (the log has the details)")
        return True

    async def dispatch(self, command: str, rest: str) -> None:
        if command == "/help":
            self.say(HELP)
        elif command == "/ask":
            await self.ask(rest)
        elif command == "/more":
            self.more()
        elif command == "/reindex":
            await self.reindex()
        elif command == "/source":
            await self.source(rest)
        elif command == "/check":
            await self.check(rest)
        elif command == "/follow":
            action, _, argument = rest.partition(" ")
            if action == "add":
                topic, options = _options(argument)
                await self.follows.add(topic, options.get("source"))
            else:
                await self.follows.run(action, argument.strip())
        elif command == "/about":
            self.say(text.about_as_text(await self.services.about.about(self.guild_id)))
        else:
            raise InputError(f"unknown command {command}; /help lists them")

    async def ask(self, line: str) -> None:
        asks = self.services.ask
        question, options = _options(line)
        scope = asks.scope(options.get("source"), options.get("since"))
        cleaned = asks.admit(question, user_id=0)
        if options:  # narrowed to a source or a date, the question stands on its own
            answer = await asks.answer(cleaned, self.guild_id, scope.source, scope.since)
            self.earlier, read_with = await asks.conversation_after(answer), None
        else:
            reply = await asks.answer_follow_up(cleaned, self.earlier, self.guild_id)
            answer, read_with = reply.answer, reply.read_with
            self.earlier = reply.conversation
        self.pages, self.page = paginate(answer, asks.per_page, scope, read_with), 0
        self.say(text.page_as_text(self.pages[0]))

    async def check(self, message: str) -> None:
        result = await self.services.check.check(read_claim(message), self.guild_id)
        self.pages, self.page = paginate(result.answer, self.services.ask.per_page), 0
        self.say(text.check_as_text(result, self.pages[0]))

    def more(self) -> None:
        if self.page + 1 >= len(self.pages):
            raise InputError("no more passages; ask another question")
        self.page += 1
        self.say(text.page_as_text(self.pages[self.page]))

    async def reindex(self) -> None:
        run = self.services.reindex.start()

        async def show(progress: ReindexProgress) -> None:
            self.say(text.reindex_progress_text(progress))

        report = await watch(run, show, self.progress_every)
        self.say(text.reindex_done_text(report))

    async def source(self, rest: str) -> None:
        sources = self.services.sources
        try:
            words = shlex.split(rest)
        except ValueError as error:
            raise InputError(f"cannot read that: {error}") from None
        action, arguments = (words[0], words[1:]) if words else ("", [])
        if action == "add" and arguments:
            name = " ".join(arguments[1:]) or None
            self.say(text.added_text(await sources.add(arguments[0], name, self.guild_id)))
        elif action == "list" and not arguments:
            self.say(text.sources_as_text(await sources.visible(self.guild_id)))
        elif action == "remove" and len(arguments) == 1 and arguments[0].lstrip("#").isdigit():
            removed = await sources.remove(int(arguments[0].lstrip("#")), self.guild_id)
            self.say(text.removed_text(removed))
        elif action == "refresh" and not arguments:
            self.say(text.refreshed_text(await sources.refresh(self.guild_id)))
        else:
            raise InputError("usage: /source add URL [NAME] | list | remove ID | refresh")


def run_console(
    runner: asyncio.Runner,
    services: Services,
    guild_id: int | None,
    console: Console | None = None,
) -> None:
    """Prompt until /quit or end of input, running each line on ``runner``, the loop the
    resources under ``services`` were opened on (the command line's, ``bot/cli.py``)."""
    console = console or Console()

    def say(message: str) -> None:
        # Text stored before ingest sanitised it may still hold escape sequences.
        console.print(clean_text(message), markup=False, highlight=False, soft_wrap=True)

    session = ConsoleSession(services, guild_id, say)
    console.print("newsbot console — ask about the indexed news. /help for commands.")
    _prompt(session, console, runner)


def _prompt(session: ConsoleSession, console: Console, runner: asyncio.Runner) -> None:
    """Read a line, run it on the event loop, until /quit, end of input or Ctrl+C."""
    while True:
        try:
            # Read with the loop stopped: inside asyncio.run, Ctrl+C only cancels the loop's
            # task, which a blocking input() never notices, and the next answer is lost.
            line = console.input("[bold cyan]newsbot>[/bold cyan] ")
        except EOFError:
            console.print()
            return
        except KeyboardInterrupt:
            console.print("\nbye")
            return
        try:
            if not runner.run(session.run_line(line)):
                return
        except KeyboardInterrupt:  # during a command: stop there too, as the README says
            console.print("\nbye")
            return
