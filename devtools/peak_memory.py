"""Run a command and report its own peak resident memory, for tests and benchmarks.

wait4's ru_maxrss counts what a child held before exec, i.e. a copy of its parent's pages: a child of a
test or benchmark process would show that process's size. So the command is started by a small Python
process of its own, which reports its children's peak (that process's own ~10 MB is the floor).
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO

_REPORTER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[2:])\n"
    "with open(sys.argv[1], 'w') as out:\n"
    "    out.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
    "sys.exit(code if code >= 0 else 128 - code)\n"
)


@dataclass(frozen=True)
class Measured:
    returncode: int
    stderr: str
    seconds: float | None  # None: killed at the timeout
    peak_rss_bytes: int


def run(
    command: list[str],
    env: Mapping[str, str],
    timeout: float,
    address_space: int | None = None,
    stdin: IO[bytes] | None = None,
) -> Measured:
    """Run `command` to its end (or kill it after `timeout` s), optionally under an address-space cap
    (RLIMIT_AS, bytes); its exit code is as a shell reports it (128 + N when killed by signal N)."""

    def cap() -> None:
        if address_space is not None:
            resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    with tempfile.TemporaryFile() as stderr, tempfile.NamedTemporaryFile("r") as peak:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-c", _REPORTER, peak.name, *command],
            env=env,
            stdin=stdin,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            preexec_fn=cap,
            start_new_session=True,
        )
        try:
            code = process.wait(timeout=timeout)
            seconds = time.perf_counter() - started
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            code, seconds = process.wait(), None
        stderr.seek(0)
        kilobytes = peak.read()
        return Measured(code, stderr.read().decode(errors="replace"), seconds, int(kilobytes or 0) * 1024)
