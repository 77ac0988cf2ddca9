"""`python -m devtools.dagster_dev dev ...`: `dagster dev` (its code servers, webserver and
shutdown) with `shared.daemon` for its daemon, as the stack runs it, and its code servers started
together rather than one after another. dev-local starts this; its test checks that the daemon it
starts is ours."""

from concurrent.futures import ThreadPoolExecutor

import dagster._cli.dev as dagster_dev
from dagster._cli import main as dagster
from dagster._cli.proxy_server_manager import ProxyServerManager
from dagster._core.remote_origin import ManagedGrpcPythonEnvCodeLocationOrigin

from shared import code_server

DAGSTER_DAEMON = ["-m", "dagster._daemon"]
OUR_DAEMON = ["-m", "shared.daemon"]


def _start_code_servers_together(initialize):
    """`dagster dev` starts one location's code server, waits until it has loaded, then starts the
    next: the locations load one after another, and the webserver starts after the last. Here they
    all start at once; Dagster's own step then finds each one started and watches it as before."""

    def start_all(self: ProxyServerManager) -> None:
        registry = self._grpc_server_registry
        managed = [o for o in self._origins if isinstance(o, ManagedGrpcPythonEnvCodeLocationOrigin)]
        if managed:
            # The registry's lock would serialise the starts; each origin is started once, by one thread.
            with ThreadPoolExecutor(len(managed)) as pool:
                list(pool.map(registry._get_grpc_server_entry, managed))
        initialize(self)

    return start_all


def main() -> None:
    spawn = dagster_dev.open_ipc_subprocess

    def open_subprocess(command, **kwargs):
        if command[1:3] == DAGSTER_DAEMON:
            command = [command[0], *OUR_DAEMON, *command[3:]]
        return spawn(command, **kwargs)

    dagster_dev.open_ipc_subprocess = open_subprocess
    ProxyServerManager._initialize_endpoints = _start_code_servers_together(
        ProxyServerManager._initialize_endpoints
    )
    code_server.use_forkserver()
    dagster()


if __name__ == "__main__":
    main()
