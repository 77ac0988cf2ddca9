"""A program started as a fork of this process that has its code imported already, instead of as a new
interpreter importing it again: `start` returns what `subprocess.Popen` would, or a `Forked` with the
part of Popen's interface callers use.

Used where a run starts the same Python program again and again: a source's loader
(`ingest_raw.launcher`) and dbt (`marts.dbt_fork`); a new interpreter pays Python's start and the
program's imports (psycopg for the loader, 0.1 s of a 0.2 s load; dbt, 1.7 s) every time.

Only from the main thread, where a run executes its ops: a fork copies only the thread that forks,
and the main thread's frames, which a fork from another thread would drop, hold what the process
lives on (a run's connections among them). Nothing the fork inherited is finalized in it (frozen
out of the collector, the streams held, `os._exit` at the end): an inherited connection or file is
never closed, flushed or said goodbye to by the fork for its parent."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NoReturn

#: Exit code of a fork whose function raised (as Python's, for an uncaught exception).
EXIT_UNCAUGHT = 1


def start(args: Sequence[str], target: Callable[[], int], **options) -> Forked | subprocess.Popen:
    """`Forked(args, target, **options)`: `target()` in a fork of this process, as if `args` had
    been started; `subprocess.Popen(args, **options)` off the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return subprocess.Popen(args, **options)
    return Forked(args, target, **options)


class Forked:
    """A fork running `target()` as if `args` had been started with `env` in `cwd`, its return value
    the exit code. `stdout` is None (this process's) or PIPE, `stderr` None or STDOUT: what the
    callers here ask of Popen. It has Popen's `args`, `pid`, `stdout` (the pipe's end, when asked
    for), `returncode`, `poll`, `wait`, `send_signal` and `kill`."""

    def __init__(
        self,
        args: Sequence[str],
        target: Callable[[], int],
        *,
        env: Mapping[str, str],
        cwd: Path | str | None = None,
        stdout: int | None = None,
        stderr: int | None = None,
    ):
        if stdout not in (None, subprocess.PIPE) or stderr not in (None, subprocess.STDOUT):
            raise ValueError("a fork writes to this process's stdout or to a pipe, stderr there or beside")
        pipe, stderr_too = stdout == subprocess.PIPE, stderr == subprocess.STDOUT
        self.args = list(args)
        self.returncode: int | None = None
        self.stdout = None
        read, write = os.pipe() if pipe else (None, None)
        self.pid = os.fork()
        if self.pid == 0:
            try:
                _in_fork(self.args, target, dict(env), cwd, read, write, stderr_too)
            finally:
                os._exit(EXIT_UNCAUGHT)
        if pipe:
            os.close(write)
            self.stdout = open(read, "rb")  # noqa: SIM115 (the caller reads and closes it)

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is not None:
            return self.returncode
        if timeout is None:
            self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
            return self.returncode
        deadline = time.monotonic() + timeout
        delay = 0.0005
        while self.poll() is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(self.args, timeout)
            time.sleep(min(delay, left))
            delay = min(delay * 2, 0.05)  # as Popen.wait
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _in_fork(
    args: list[str],
    target: Callable[[], int],
    env: dict[str, str],
    cwd: Path | str | None,
    read: int | None,
    write: int | None,
    stderr_too: bool,
) -> NoReturn:
    """In the fork: the streams, signals, folder, environment and argv a new interpreter would have;
    then `target()`, and exit with what it returned."""
    gc.freeze()  # this process's objects, never collected here: no finalizer of theirs runs
    # Held until the exit: the streams this process wrote to (a run's captured ones, shared with its
    # threads), freed here, would write their buffers again and close the descriptors.
    inherited = (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)  # noqa: F841
    if write is not None:
        os.close(read)
        os.dup2(write, 1)
        if stderr_too:
            os.dup2(write, 2)
        os.close(write)
    sys.stdout = sys.__stdout__ = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = sys.__stderr__ = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    signal.set_wakeup_fd(-1)
    for signum in signal.valid_signals():  # handlers this process installed; ignored ones stay so
        if callable(signal.getsignal(signum)):
            signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if cwd is not None:
        os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.argv = list(args)
    code, interrupted = EXIT_UNCAUGHT, False
    try:
        code = target()
    except SystemExit as exit:
        if exit.code is None or isinstance(exit.code, int):
            code = exit.code or 0
        else:
            print(exit.code, file=sys.stderr)
    except BaseException as error:
        traceback.print_exc()
        interrupted = isinstance(error, KeyboardInterrupt)
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        if interrupted:  # as Python ends on an uncaught KeyboardInterrupt: by SIGINT
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        os._exit(code)
