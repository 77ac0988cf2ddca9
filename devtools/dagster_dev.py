"""`python -m devtools.dagster_dev dev ...`: `dagster dev` (its code servers, webserver and
shutdown) with `shared.daemon` for its daemon, as the stack runs it. dev-local starts this; its test
checks that the daemon it starts is ours."""

import dagster._cli.dev as dagster_dev
from dagster._cli import main as dagster

from shared import code_server

DAGSTER_DAEMON = ["-m", "dagster._daemon"]
OUR_DAEMON = ["-m", "shared.daemon"]


def main() -> None:
    spawn = dagster_dev.open_ipc_subprocess

    def open_subprocess(command, **kwargs):
        if command[1:3] == DAGSTER_DAEMON:
            command = [command[0], *OUR_DAEMON, *command[3:]]
        return spawn(command, **kwargs)

    dagster_dev.open_ipc_subprocess = open_subprocess
    code_server.use_forkserver()
    dagster()


if __name__ == "__main__":
    main()
