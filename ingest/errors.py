"""Domain errors: each carries a one-line message fit to show a user as is."""


class NewsbotError(Exception):
    """Base of every error that the CLI, console and bot turn into a clear message."""


class InputError(NewsbotError):
    """The user's input (a path, a file, a question) cannot be used."""


class FetchError(NewsbotError):
    """A web source could not be fetched safely; the message says why."""
