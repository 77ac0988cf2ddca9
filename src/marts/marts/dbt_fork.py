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
import functools
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import dagster_dbt.core.dbt_cli_invocation as dbt_cli_invocation
from dagster_dbt import DbtProject

from marts.project import connection_key, invocation_target, parse_key
from shared import forked

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
    """While it lasts, dagster-dbt starts dbt for `project_dir` as a fork of this process
    (`shared.forked`), if `prepare()` parsed it here (or in the process this one was forked from) as
    its files and the connection settings are now; from the main thread only, as `shared.forked`
    says why. dbt started meanwhile for another project starts as before.

    dagster-dbt starts dbt with `subprocess.Popen` in `DbtCliInvocation.run` and has no option for
    it; its module's `subprocess` is swapped for the duration."""
    project_dir = Path(project_dir)
    prepared = _prepared.get(project_dir)
    if prepared is None or prepared[0] != _key(project_dir):
        yield
        return
    manifest = prepared[1]

    def popen(args, *, env, cwd, **options):
        if Path(cwd) == project_dir:
            dbt = functools.partial(_run_dbt, args, manifest)
            return forked.start(args, dbt, env=env, cwd=cwd, **options)
        return subprocess.Popen(args, env=env, cwd=cwd, **options)

    dbt_cli_invocation.subprocess = SimpleNamespace(**{**vars(subprocess), "Popen": popen})
    try:
        yield
    finally:
        dbt_cli_invocation.subprocess = subprocess


def _key(project_dir: Path) -> tuple[str, str]:
    return parse_key(project_dir), connection_key()


def _run_dbt(args: Sequence[str], manifest: Any) -> int:
    """In the fork: the dbt command on the parsed manifest; the exit code the command would give."""
    from dbt.cli.main import dbtRunner

    result = dbtRunner(manifest=manifest).invoke(list(args[1:]))
    return 0 if result.success else 2 if result.exception is not None else 1
