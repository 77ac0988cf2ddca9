"""Run a source program under Dagster Pipes and turn its exit into results or a classified failure.

Built on `open_pipes_session`, the building block of PipesSubprocessClient, because the client hides the
exit code inside an error message: here a permanent failure (exit 65) fails fast with the program's own
error text, and anything else stays retryable (`factory.retried`). A run terminated while the
program was committing records what happened: the materialization when the commit went through.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence

import dagster as dg

from ingest_raw.checks import evaluate
from ingest_raw.declarations import DECLARATION_EXTRA, Source
from ingest_raw.errors import EXIT_MEANINGS, is_permanent_exit
from shared import forked

#: The loader, as a program of its own: `python -m ingest_raw.sources SOURCE [OPTIONS]`.
LOADER = (sys.executable, "-m", "ingest_raw.sources")
#: Seconds the source program gets to roll back after SIGINT before it is killed.
TERMINATION_GRACE_SECONDS = 10.0


def source_arguments(source: Source, partition_keys: Sequence[str] = ()) -> list[str]:
    """The loader's arguments: the source and, for a run of a partition range (a backfill), every key of
    it, loaded in one pass."""
    return [source.name, *(argument for key in partition_keys for argument in ("--partition", key))]


def source_command(source: Source, partition_keys: Sequence[str] = ()) -> list[str]:
    """argv of the loader as a program of its own (it starts the source's reader program itself, if
    one is declared)."""
    return [*LOADER, *source_arguments(source, partition_keys)]


def prepare() -> None:
    """Import the loader here, once: each load started afterwards is a fork with nothing to import.
    The code server's forkserver does it before any run (`prepare_runs`), a run elsewhere at its
    first load."""
    import ingest_raw.loader  # psycopg: the most of a new interpreter's start
    import ingest_raw.sources.program  # noqa: F401


def start_loader(arguments: Sequence[str], env: Mapping[str, str]) -> forked.Forked | subprocess.Popen:
    """`python -m ingest_raw.sources ARGUMENTS` with `env` (no shell: SIGINT reaches it), started as a
    fork of this process (`shared.forked`): a new interpreter's start and imports were half the time
    of a small load."""
    prepare()
    from ingest_raw.sources.program import run

    return forked.start([*LOADER, *arguments], functools.partial(run, list(arguments)), env=env)


def run_source_program(
    context: dg.AssetExecutionContext, source: Source, env: Mapping[str, str]
) -> Sequence[dg.PipesExecutionResult]:
    partitioned = context.has_partition_key or context.has_partition_key_range
    arguments = source_arguments(source, context.partition_keys if partitioned else ())
    with dg.open_pipes_session(
        context=context,
        context_injector=dg.PipesTempFileContextInjector(),
        message_reader=dg.PipesTempFileMessageReader(),
        extras={DECLARATION_EXTRA: source.to_dict()},
    ) as session:
        try:
            process = start_loader(arguments, {**os.environ, **env, **session.get_bootstrap_env_vars()})
        except OSError as error:
            raise dg.Failure(
                description=f"source {source.name!r}: cannot start {LOADER[0]!r}: {error.strerror}",
                allow_retries=False,
            ) from error
        try:
            code = process.wait()
        except dg.DagsterExecutionInterruptedError:
            context.log.info(f"run terminated: sending SIGINT to source program pid {process.pid}")
            code = _stop(process)
            if code != 0:
                context.log.warning(
                    _failure(source, process.args, code, session.get_custom_messages()).description
                )
                raise
            context.log.warning(
                f"source program {source.name!r} was stopped while committing and its commit went through: "
                f"recording the materialization"
            )
    if code != 0:
        raise _failure(source, process.args, code, session.get_custom_messages())
    return with_check_results(source, session.get_results())


def with_check_results(
    source: Source, results: Sequence[dg.PipesExecutionResult]
) -> list[dg.PipesExecutionResult]:
    """The program's results and, for its materialization, the declared checks evaluated on the facts
    it reported."""
    checked: list[dg.PipesExecutionResult] = list(results)
    for result in results:
        if not isinstance(result, dg.MaterializeResult):
            continue
        facts = {key: getattr(value, "value", value) for key, value in (result.metadata or {}).items()}
        for outcome in evaluate(source, facts):
            checked.append(
                dg.AssetCheckResult(
                    asset_key=result.asset_key,
                    check_name=outcome.check.name,
                    passed=outcome.passed,
                    severity=dg.AssetCheckSeverity.ERROR
                    if outcome.check.blocking
                    else dg.AssetCheckSeverity.WARN,
                    metadata=outcome.metadata,
                )
            )
    return checked


def _stop(process: forked.Forked | subprocess.Popen) -> int:
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=TERMINATION_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def _failure(source: Source, command: Sequence[str], code: int, messages: Sequence) -> dg.Failure:
    errors = [message["error"] for message in messages if isinstance(message, dict) and "error" in message]
    meaning = f" ({EXIT_MEANINGS[code]})" if code in EXIT_MEANINGS else ""
    description = errors[-1] if errors else f"source program {source.name!r} exited with code {code}{meaning}"
    return dg.Failure(
        description=description,
        metadata={"exit_code": code, "command": " ".join(command)},
        allow_retries=not is_permanent_exit(code),
    )
