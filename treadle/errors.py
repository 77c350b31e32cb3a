"""Errors a user can act on. The CLI prints them as one line and exits 2."""

from __future__ import annotations

import argparse
from typing import NoReturn


class TreadleError(Exception):
    """Bad usage or bad input: printed as one line, exit code 2, never a traceback."""


class InputError(TreadleError):
    """A file could not be read: says which file, which line, and what was expected."""

    def __init__(self, path: str, line: int | None, message: str):
        self.path = path
        self.line = line
        self.detail = message
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}")


class MalformedEvent(InputError):
    """A checker cannot read an event of the history it was given. ``position`` is the event's
    place in the list the checker got (0-based); ``treadle check`` turns it into the file's
    line, exploration into a violation of "well-formed history" (the nodes recorded it)."""

    def __init__(self, position: int, message: str):
        super().__init__("history", None, message)
        self.position = position


class TraceMismatch(TreadleError):
    """A trace does not fit the system that is asked to replay it."""


class Nondeterminism(TreadleError):
    """Node code behaved differently on two runs of the same choices."""


class UsageError(TreadleError):
    """A command line that cannot be parsed (the CLI prints it as one line, exit 2)."""


def one_line_parser(prog: str, **kwargs: object) -> argparse.ArgumentParser:
    """An argparse parser whose errors are a :class:`UsageError` (one line, exit 2) instead of
    a usage block: for the subcommands that parse their own arguments (``treadle prove X``)."""

    class _OneLine(argparse.ArgumentParser):
        def error(self, message: str) -> NoReturn:
            raise UsageError(f"{message} (see {self.prog} --help)")

    return _OneLine(prog=prog, **kwargs)  # type: ignore[arg-type]
