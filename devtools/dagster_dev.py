"""`python -m devtools.dagster_dev dev ...`: `dagster dev` (its code servers, webserver and
shutdown) with `shared.daemon` for its daemon, as the stack runs it; its code servers started
together rather than one after another; and its webserver and daemon processes started at once, on
standby, rather than after the code servers have loaded. dev-local starts this; its tests check
that the daemon it starts is ours and that the locations load together."""

import json
import os
import runpy
import socket
import subprocess
import sys
import threading

MODULE = "devtools.dagster_dev"
STANDBY = "standby"
DAGSTER_DAEMON = ["-m", "dagster._daemon"]
OUR_DAEMON = ["-m", "shared.daemon"]
#: `python -m MODULE` commands of `dagster dev` started on standby, and what each imports meanwhile.
STANDBY_IMPORTS = {
    "dagster_webserver": ("dagster_webserver.cli", "dagster_webserver.webserver"),
    "shared.daemon": ("shared.daemon",),
}


class Standby:
    """A Python process, started at once, that imports what `python -m MODULE` needs and waits;
    asked, it becomes that command with the asker's arguments, environment, folder and inherited
    descriptors. Its imports (2 s for the webserver, 1.4 s for the daemon) then overlap the code
    servers' loading instead of following it."""

    def __init__(self, module: str):
        self.channel, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            self.process = subprocess.Popen(
                [sys.executable, "-m", MODULE, STANDBY, module, str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
            )

    def become(self, argv: list[str], pass_fds: tuple[int, ...] = ()) -> subprocess.Popen | None:
        """The standby, running `argv` now; None if it is gone (then start the command anew)."""
        handoff = {"argv": argv, "env": dict(os.environ), "cwd": os.getcwd(), "fds": list(pass_fds)}
        with self.channel:
            try:
                socket.send_fds(self.channel, [json.dumps(handoff).encode()], list(pass_fds))
            except OSError:
                self.process.wait()
                return None
        return self.process


def stand_by(module: str, fd: int) -> None:
    """The standby's side: import, wait for the handoff, run. `dagster dev` stopped before it asked
    (a Ctrl-C while the locations load, a failed start): end quietly."""
    try:
        for name in STANDBY_IMPORTS[module]:
            __import__(name)
        with socket.socket(fileno=fd) as channel:
            message, fds, _, _ = socket.recv_fds(channel, 1 << 20, 16)
    except KeyboardInterrupt:
        return
    if not message:
        return
    handoff = json.loads(message)
    for received, wanted in zip(fds, handoff["fds"], strict=True):
        if received != wanted:
            os.dup2(received, wanted)
            os.close(received)
    os.environ.clear()
    os.environ.update(handoff["env"])
    os.chdir(handoff["cwd"])
    sys.argv = [module, *handoff["argv"]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def _start_code_servers_together(initialize):
    """`dagster dev` starts one location's code server, waits until it has loaded, then starts the
    next: the locations load one after another, and the webserver starts after the last. Here they
    all start at once; Dagster's own step then finds each one started and watches it as before."""
    from dagster._core.remote_origin import ManagedGrpcPythonEnvCodeLocationOrigin

    def start_all(self) -> None:
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
    if sys.argv[1:2] == [STANDBY]:
        stand_by(sys.argv[2], int(sys.argv[3]))
        return
    # Started before Dagster is imported here, so that their imports run beside this one.
    standbys = {module: Standby(module) for module in STANDBY_IMPORTS}

    import dagster._cli.dev as dagster_dev
    from dagster._cli import main as dagster
    from dagster._cli.proxy_server_manager import ProxyServerManager

    from shared import code_server

    spawn = dagster_dev.open_ipc_subprocess

    def open_subprocess(command, **kwargs):
        if command[1:3] == DAGSTER_DAEMON:
            command = [command[0], *OUR_DAEMON, *command[3:]]
        standby = standbys.pop(command[2], None) if command[1] == "-m" else None
        if standby is not None and set(kwargs) <= {"pass_fds"}:
            started = standby.become(command[3:], **kwargs)
            if started is not None:
                return started
        return spawn(command, **kwargs)

    dagster_dev.open_ipc_subprocess = open_subprocess
    ProxyServerManager._initialize_endpoints = _start_code_servers_together(
        ProxyServerManager._initialize_endpoints
    )
    code_server.use_forkserver()
    dagster()


if __name__ == "__main__":
    main()
