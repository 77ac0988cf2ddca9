"""`python -m shared.code_server ...`: Dagster's CLI (`dagster code-server start`, `dagster api grpc`,
the same options) whose code servers start each run from a forkserver that has already loaded the
location, instead of from a new interpreter.

A code server launches each run in a process of its own, started with
`multiprocessing.get_context("spawn")` (hard-coded in `dagster._grpc.server.DagsterApiServer`): every
run first pays Python's start, `import dagster` and the location's definitions (for marts also
dagster-dbt, which imports dbt-core), 1.5-3.5 s before its first step. Here the server starts a
forkserver as soon as it has loaded its definitions; the forkserver loads them once more, the way
the server did, and each run's process is a fork of it. The run still reconstructs its job from the
location's code (now already imported) and talks to the server the same way: termination, the
event queue and the run's exit are Dagster's own.

The code servers Dagster starts itself (the child `dagster code-server start` runs, the ones
`dagster dev` starts) are started through this module too, so the setting follows them. A code
server whose definitions failed to load keeps Dagster's spawn. A location's module may define
`prepare_runs()`: the forkserver calls it once, after loading the definitions, so every run starts
with what it prepared (ingest_raw: the loader imported, `ingest_raw.launcher`; marts: dbt imported
and its project parsed, `marts.dbt_fork`).

A run forked here also keeps its Postgres connections: Dagster's Postgres storages open a new
connection for every read and write (no pool, for processes that hold many instances), about 40 for
a run of one step, each a TCP connection and a password exchange on the stack. A run's instance
instead holds one connection per storage while the run lasts, as the webserver's does
(`optimize_for_webserver`), with no statement timeout."""

import contextlib
import multiprocessing
import os
import sys
from multiprocessing import forkserver

import dagster._grpc.server as grpc_server
from dagster._core.definitions.definitions_load_context import DefinitionsLoadContext, DefinitionsLoadType
from dagster._core.instance import DagsterInstance, InstanceRef
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._serdes import deserialize_value, serialize_value

MODULE = "shared.code_server"
#: The location module's function the forkserver calls once it has loaded the definitions.
PREPARE = "prepare_runs"
#: How a code server tells its forkserver what to load: the serialized LoadableTargetOrigin, set
#: only while the forkserver starts.
ORIGIN_ENV = "SHARED_CODE_SERVER_ORIGIN"
#: A run's pooled connections: renewed after an hour; up to this many more at once (its threads).
POOL_RECYCLE_SECONDS = 3600
POOL_MAX_OVERFLOW = 20


def _entry_point(executable_path: str) -> list[str]:
    return [executable_path, "-m", MODULE]


def _start_runs_from_a_forkserver(init):
    def start(self, *args, **kwargs) -> None:
        init(self, *args, **kwargs)
        origin = kwargs.get("loadable_target_origin")
        if origin is None or self._loaded_repositories is None:
            return
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([MODULE])
        os.environ[ORIGIN_ENV] = serialize_value(origin)
        try:
            forkserver.ensure_running()
        finally:
            del os.environ[ORIGIN_ENV]
        self._mp_ctx = context

    return start


def use_forkserver() -> None:
    """In this process: code servers start runs from a forkserver, and the code servers it starts
    are started through this module."""
    grpc_server.get_python_environment_entry_point = _entry_point
    grpc_server.DagsterApiServer.__init__ = _start_runs_from_a_forkserver(
        grpc_server.DagsterApiServer.__init__
    )


def _load_in_forkserver(serialized_origin: str) -> None:
    """Load the location as its code server did, so that runs fork with it imported. A failure
    here is left to the run, which loads the definitions again and reports what went wrong."""
    # Loading installs a server's load context for the whole process; scoped() removes it again, so
    # that a forked run reconstructs its definitions as a run does.
    initialization = DefinitionsLoadContext(DefinitionsLoadType.INITIALIZATION)
    with contextlib.suppress(Exception), DefinitionsLoadContext.scoped(initialization):
        origin = deserialize_value(serialized_origin, LoadableTargetOrigin)
        grpc_server.LoadedRepositories(origin, None, grpc_server.DEFAULT_DAGSTER_ENTRY_POINT, None)
        module = sys.modules.get(origin.module_name or origin.package_name or "")
        prepare_runs = getattr(module, PREPARE, None)
        if callable(prepare_runs):
            prepare_runs()


def _runs_keep_their_connections() -> None:
    """In the forkserver, so in every run forked from it: the run's instance (the one Dagster makes
    from the run's instance ref) holds its storages' connections instead of one per query."""
    from_ref = DagsterInstance.from_ref

    def pooled(instance_ref: InstanceRef) -> DagsterInstance:
        instance = from_ref(instance_ref)
        instance.optimize_for_webserver(
            statement_timeout=0, pool_recycle=POOL_RECYCLE_SECONDS, max_overflow=POOL_MAX_OVERFLOW
        )
        return instance

    DagsterInstance.from_ref = staticmethod(pooled)


def main() -> None:
    use_forkserver()
    from dagster._cli import main as dagster

    dagster()


if __name__ == "__main__":
    main()
elif ORIGIN_ENV in os.environ:
    _load_in_forkserver(os.environ.pop(ORIGIN_ENV))
    _runs_keep_their_connections()
