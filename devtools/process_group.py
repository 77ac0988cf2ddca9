"""Long-running servers started in a process group of their own, stopped by that group, checked gone.

A server started from a non-interactive shell with `&` inherits SIGINT as ignored and may not stop on
SIGTERM either, so it outlives its parent. Started here, each server leads its own session, so one
signal reaches the server and every child it spawned (gRPC subprocesses, run workers), and nothing
is left behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil


class ProcessesLeftBehind(RuntimeError):
    pass


@dataclass
class Server:
    name: str
    process: subprocess.Popen
    log: Path

    @property
    def pgid(self) -> int:
        return self.process.pid  # leader of its own session: group id == pid

    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        if not self.log.is_file():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def start(name: str, command: Sequence[str], *, env: Mapping[str, str], cwd: Path, log: Path) -> Server:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(
            list(command),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(name=name, process=process, log=log)


def group_members(pgid: int) -> list[int]:
    """Pids still alive in process group `pgid` (zombies do not count)."""
    members = []
    for process in psutil.process_iter(["status"]):
        try:
            if process.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(process.pid) == pgid:
                members.append(process.pid)
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue
    return members


def stop(server: Server, timeout: float = 20.0) -> None:
    """SIGTERM the server's whole group, SIGKILL what is left after `timeout`; raise if any survive."""
    _signal_group(server.pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (server.running() or group_members(server.pgid)):
        time.sleep(0.1)
    if server.running() or group_members(server.pgid):
        _signal_group(server.pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.process.wait(timeout=5)
    deadline = time.monotonic() + 5
    while group_members(server.pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = group_members(server.pgid)
    if left or server.running():
        raise ProcessesLeftBehind(f"{server.name}: processes {left or [server.pgid]} survived SIGKILL")


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)
