"""Errors of a load, split by what a retry could change, with the exit codes a source program uses."""

from __future__ import annotations

#: Exit codes of a source program (sysexits.h): a scheduler may retry 75, never 65.
EXIT_PERMANENT = 65
EXIT_TRANSIENT = 75
EXIT_INTERRUPTED = 130


class LoadError(Exception):
    """A load that did not happen; the table keeps its previous contents."""

    transient = False

    @property
    def exit_code(self) -> int:
        return EXIT_TRANSIENT if self.transient else EXIT_PERMANENT


class PermanentLoadError(LoadError):
    """Bad data, a missing file, HTTP 4xx: retrying the same input gives the same failure."""


class TransientLoadError(LoadError):
    """HTTP 5xx, timeouts, dropped connections: worth retrying later."""

    transient = True


def is_permanent_exit(code: int) -> bool:
    """Only a declared permanent failure fails fast; a crash or a kill may well pass on a retry."""
    return code == EXIT_PERMANENT
