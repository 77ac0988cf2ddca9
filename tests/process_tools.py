"""Helpers for tests that start real processes: find the ones left behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time

import psutil


def processes_mentioning(text: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if any(text in part for part in process.info["cmdline"] or []):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def descendants(pid: int) -> list[str]:
    """The command lines of every process below `pid`."""
    found = []
    for process in psutil.Process(pid).children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            found.append(" ".join(process.cmdline()))
    return found


def wait_until_gone(text: str, timeout: float) -> list[psutil.Process]:
    """Processes whose command line still mentions `text` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while (left := processes_mentioning(text)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def stops_as_from_a_terminal() -> None:
    """`preexec_fn` of a child that Ctrl-C and its terminal closing stop, as one started from a
    terminal, even when the tests themselves were started with SIGINT ignored (`cmd &` in a script)
    or SIGHUP ignored (`nohup`): our programs keep an inherited ignore of SIGHUP, and Dagster's
    commands give SIGTERM the handler SIGINT has, so an inherited ignore would make them ignore
    SIGTERM too."""
    for signum in (signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def stop_group(process: subprocess.Popen, signum: int, timeout: float = 60) -> None:
    """Send `signum` to the process group `process` leads and wait for it; if it has not ended within
    `timeout`, kill the group (nothing a test started outlives it) and raise."""
    os.killpg(process.pid, signum)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise


def kill_tree(process: subprocess.Popen) -> None:
    """SIGKILL `process` and every process below it, sessions of their own included."""
    below = psutil.Process(process.pid).children(recursive=True)
    for each in [psutil.Process(process.pid), *below]:
        with contextlib.suppress(psutil.NoSuchProcess):
            each.kill()
    process.wait()
