"""dbt started as a fork of a process that has already parsed the project, not as a new interpreter.

Each dbt invocation dagster-dbt starts (`dbt build ...` in a subprocess) first imports dbt and its
adapter (1.7 s of a 4.1 s build of one view, quiet) and loads the project from its partial-parse
state (1.4 s more) before its first model; the main job runs three in a row, one per layer of
models. The code server's forkserver (`shared.code_server`) calls the location's `prepare_runs()`
once, which calls `prepare()` here: dbt imported and the project parsed into a manifest held in
memory. A run forked from that forkserver starts each invocation as a fork of itself running
`dbtRunner(manifest=...)` with the same arguments, environment and working folder, its output on a
pipe: to dagster-dbt the same events, exit code (0, 1 for failed nodes, 2 for an error) and
SIGINT on termination.

Only while the project's files and connection settings are as they were parsed: after an edit (the
location not yet reloaded), in a run not forked from a prepared forkserver (a run in a container of its own,
`dagster asset materialize`) or where `prepare()` failed, dbt starts as a new interpreter."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import dagster_dbt.core.dbt_cli_invocation as dbt_cli_invocation
from dagster_dbt import DbtProject

from marts.project import connection_key, invocation_target, parse_key

#: Per project folder: the keys of what was parsed (its files, the connection) and the manifest.
_prepared: dict[Path, tuple[tuple[str, str], Any]] = {}


def prepare(project: DbtProject) -> None:
    """Import dbt and parse the project in this process, as dagster-dbt's invocations would (from
    the project folder, from its partial-parse state); a failed parse leaves dbt to start as before."""
    from dbt.cli.main import dbtRunner

    project_dir = Path(project.project_dir)
    key = _key(project_dir)
    with invocation_target(project, "prepare") as target, contextlib.chdir(project_dir):
        flags = ["--target-path", str(target), "--log-path", str(target), "--no-send-anonymous-usage-stats"]
        result = dbtRunner().invoke(["parse", "--quiet", *flags])
    if result.success:
        _prepared[project_dir] = (key, result.result)


@contextlib.contextmanager
def forking(project_dir: Path) -> Iterator[None]:
    """While it lasts, dagster-dbt starts dbt for `project_dir` as a fork of this process, if
    `prepare()` parsed it here (or in the process this one was forked from) as its files and the
    connection settings are now.

    Only from the main thread, where a run executes its op, and only for this project: a fork
    copies only the thread that forks, and what other threads' frames alone hold is freed in it, a
    database connection saying goodbye to its server for the parent (Dagster's other threads in a
    run, termination and the event queue, hold none). dbt started meanwhile from another thread, or
    for another project, starts as before.

    dagster-dbt starts dbt with `subprocess.Popen` in `DbtCliInvocation.run` and has no option for
    it; its module's `subprocess` is swapped for the duration."""
    project_dir = Path(project_dir)
    prepared = _prepared.get(project_dir)
    if prepared is None or prepared[0] != _key(project_dir):
        yield
        return
    manifest = prepared[1]

    def popen(args, *, env, cwd, **options):
        if threading.current_thread() is threading.main_thread() and Path(cwd) == project_dir:
            return ForkedDbt(args, env, cwd, manifest)
        return subprocess.Popen(args, env=env, cwd=cwd, **options)

    dbt_cli_invocation.subprocess = SimpleNamespace(**{**vars(subprocess), "Popen": popen})
    try:
        yield
    finally:
        dbt_cli_invocation.subprocess = subprocess


def _key(project_dir: Path) -> tuple[str, str]:
    return parse_key(project_dir), connection_key()


class ForkedDbt:
    """The part of `subprocess.Popen` dagster-dbt uses, for a dbt invocation run by a fork of this
    process: `args`, `pid`, `stdout` (dbt's output and errors), `returncode`, `wait`, `send_signal`."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str], cwd: Path, manifest: Any):
        read, write = os.pipe()
        self.args = list(args)
        self._process = multiprocessing.get_context("fork").Process(
            target=_run_dbt, args=(self.args, dict(env), cwd, manifest, read, write), name="dbt"
        )
        try:
            self._process.start()
        finally:
            os.close(write)
        self.pid = self._process.pid
        self.stdout = open(read, "rb")  # noqa: SIM115 (dagster-dbt reads and closes it)

    @property
    def returncode(self) -> int | None:
        return self._process.exitcode

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired(self.args, timeout)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, sig)


def _run_dbt(args: list[str], env: dict[str, str], cwd: Path, manifest: Any, read: int, write: int) -> None:
    """In the fork: dbt's output to the pipe, the invocation's environment and folder, signals as
    a new process has them; exits with the code the dbt command would."""
    os.close(read)
    os.dup2(write, 1)
    os.dup2(write, 2)
    os.close(write)
    # New streams on the pipe: this process's were the run's (captured, and shared with its threads).
    sys.stdout = sys.__stdout__ = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = sys.__stderr__ = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.argv = list(args)  # what dbt records as its invocation command

    from dbt.cli.main import dbtRunner

    result = dbtRunner(manifest=manifest).invoke(args[1:])
    sys.stdout.flush()
    sys.exit(0 if result.success else 2 if result.exception is not None else 1)
