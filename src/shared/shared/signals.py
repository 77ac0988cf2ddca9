"""How our long-running programs take a stop."""

import ctypes
import os
import signal
import sys
from collections.abc import Callable

#: The signals that ask a program to stop: SIGINT (Ctrl-C, Dagster's termination), SIGTERM (a
#: container's stop) and SIGHUP (its terminal closed, an ssh session lost).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def stop_signals() -> list[int]:
    """The stop signals this program takes: SIGINT and SIGTERM also where a parent left them ignored
    (`cmd &`), which a child would otherwise inherit; SIGHUP unless ignored on purpose (`nohup`). Left
    alone, a hangup would kill the program with no word of what it was doing."""
    return [s for s in STOP_SIGNALS if s != signal.SIGHUP or signal.getsignal(s) is not signal.SIG_IGN]


def stop_on_signals() -> None:
    """Every stop signal this program takes (`stop_signals`) raises KeyboardInterrupt."""
    for signum in stop_signals():
        signal.signal(signum, signal.default_int_handler)


#: prctl(2) option: the signal a process gets when the thread that started it ends.
_PR_SET_PDEATHSIG = 1


def die_with_this_process(signum: int) -> Callable[[], None]:
    """A child's preexec_fn, made in its parent: on Linux the child gets `signum` when this process
    ends, however it ends (kill -9, the OOM killer), and exits at once if it already has; elsewhere
    nothing. For children in a session of their own, which this process's signals do not reach."""
    parent = os.getpid()

    def arm() -> None:
        if sys.platform.startswith("linux"):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signum)
            if os.getppid() != parent:  # the parent died before the line above
                os._exit(1)

    return arm
