"""Domain errors: each carries a one-line message fit to show a user as is."""


class NewsbotError(Exception):
    """Base of every error that the CLI, console and bot turn into a clear message."""


class InputError(NewsbotError):
    """The user's input (a path, a file, a question) cannot be used."""


class FetchError(NewsbotError):
    """A web source could not be fetched safely; the message says why."""


def first_line(error: BaseException, limit: int = 300) -> str:
    """A library exception's message fit for a one-line error: its first line, bounded."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
