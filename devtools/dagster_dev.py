"""`python -m devtools.dagster_dev dev ...`: `dagster dev` (its code servers, webserver and
shutdown) with `shared.daemon` for its daemon, as the stack runs it, and its code servers started
together rather than one after another. dev-local starts this; its test checks that the daemon it
starts is ours."""

import threading

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
        # The registry's lock would serialise the starts: each origin is started once, by one thread.
        # A Ctrl-C while they load stops the wait at once (dev-local then ends the process group,
        # the code servers still loading included), as it stops Dagster's own wait for one.
        starts = [
            threading.Thread(
                target=self._grpc_server_registry._get_grpc_server_entry, args=[origin], daemon=True
            )
            for origin in self._origins
            if isinstance(origin, ManagedGrpcPythonEnvCodeLocationOrigin)
        ]
        for start in starts:
            start.start()
        for start in starts:
            start.join()
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
