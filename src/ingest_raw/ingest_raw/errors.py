"""Errors of a load, split by what a retry could change, with the exit codes a source program uses."""

from __future__ import annotations

import sys

#: Exit codes of a source program (sysexits.h where one fits): a scheduler may retry all but 65.
EXIT_PERMANENT = 65
EXIT_SOFTWARE = 70  # EX_SOFTWARE: a reader program's own bug (a retry gives the same)
EXIT_OUT_OF_MEMORY = 71  # EX_OSERR: the machine, not the data; the table keeps its previous rows
EXIT_TRANSIENT = 75
EXIT_OUTCOME_UNKNOWN = 76  # the commit was under way when it was cut off and nobody could tell its outcome
EXIT_INTERRUPTED = 130
EXIT_MEANINGS = {
    EXIT_PERMANENT: "permanent failure",
    EXIT_OUT_OF_MEMORY: "out of memory",
    EXIT_TRANSIENT: "transient failure",
    EXIT_OUTCOME_UNKNOWN: "cut off while committing; outcome unknown",
    EXIT_INTERRUPTED: "interrupted and rolled back",
}


def interrupted_before_the_load() -> int:
    """A stop before the load began (Python starting, the arguments, the Pipes context): nothing
    changed. Says so; the exit code."""
    print("ingest: interrupted before the load started; nothing changed", file=sys.stderr, flush=True)
    return EXIT_INTERRUPTED


#: Longest piece of input data (a value, a key, a server message) quoted in an error.
QUOTE_LIMIT = 300
#: Longest error message as a whole.
MESSAGE_LIMIT = 2000


def shorten(text: str, limit: int = QUOTE_LIMIT) -> str:
    """`text`, or its first `limit` characters saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters not shown)"


class LoadError(Exception):
    """A load that did not happen; the table keeps its previous contents. The source program names the
    source in front of the message."""

    exit_code = EXIT_PERMANENT

    def __init__(self, message: str):
        super().__init__(shorten(message, MESSAGE_LIMIT))


class PermanentLoadError(LoadError):
    """Bad data, a missing file, HTTP 4xx: retrying the same input gives the same failure."""


class TransientLoadError(LoadError):
    """HTTP 5xx, timeouts, dropped connections, a lock held too long: worth retrying later."""

    exit_code = EXIT_TRANSIENT


class OutOfMemoryLoadError(LoadError):
    """The process ran out of memory: a fault of the machine, never of the data; retrying may pass."""

    exit_code = EXIT_OUT_OF_MEMORY


class CommitOutcomeUnknown(LoadError):
    """The commit was cut off and the warehouse could not say whether it happened. Either way the table
    holds the previous or the new rows, never part; re-running the load is safe."""

    exit_code = EXIT_OUTCOME_UNKNOWN


def is_permanent_exit(code: int) -> bool:
    """Only a declared permanent failure fails fast; a crash or a kill may well pass on a retry."""
    return code == EXIT_PERMANENT
