"""`shared.forked`: a function run in a fork behaves as the program it stands for would as a new
process, and leaves what its parent holds alone."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from shared.forked import Forked, start


def _captured(target, **options) -> tuple[int, str]:
    process = start(["probe", "--flag"], target, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **options)
    assert isinstance(process, Forked)
    output = process.stdout.read().decode()
    return process.wait(timeout=30), output


def test_a_fork_has_the_environment_folder_argv_and_exit_of_the_program(tmp_path):
    def program() -> int:
        print(f"{sys.argv} {os.environ.get('ONLY')} {os.environ.get('HOME')} {os.getcwd()}")
        print("on stderr", file=sys.stderr)
        return 3

    code, output = _captured(program, env={"ONLY": "this"}, cwd=tmp_path)
    assert (code, output) == (3, f"['probe', '--flag'] this None {tmp_path}\non stderr\n")
    assert os.getcwd() != str(tmp_path)


def test_a_fork_ends_as_python_would():
    def raises() -> int:
        raise ValueError("broken")

    def exits(code):
        return lambda: sys.exit(code)

    def interrupted() -> int:
        raise KeyboardInterrupt

    code, output = _captured(raises, env={})
    assert code == 1
    assert "Traceback" in output
    assert "ValueError: broken" in output
    assert _captured(exits(None), env={})[0] == 0
    assert _captured(exits(4), env={})[0] == 4
    assert _captured(exits("a message"), env={}) == (1, "a message\n")
    assert _captured(interrupted, env={})[0] == -signal.SIGINT


def test_signals_reach_a_fork_as_a_new_interpreter_has_them(tmp_path):
    """The parent's Python handlers are not the fork's: SIGINT raises KeyboardInterrupt, SIGTERM ends
    it, an ignored signal stays ignored."""
    ready = tmp_path / "ready"

    def waits() -> int:
        ready.touch()
        try:
            time.sleep(60)
        except KeyboardInterrupt:
            return 42
        return 0

    previous = {
        signum: signal.signal(signum, handler)
        for signum, handler in (
            (signal.SIGTERM, lambda *_: None),
            (signal.SIGINT, lambda *_: None),
            (signal.SIGUSR1, signal.SIG_IGN),
        )
    }
    try:
        for signum, expected in ((signal.SIGINT, 42), (signal.SIGTERM, -signal.SIGTERM)):
            ready.unlink(missing_ok=True)
            process = start(["waits"], waits, env={})
            deadline = time.monotonic() + 30
            while not ready.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            process.send_signal(signal.SIGUSR1)
            process.send_signal(signum)
            assert process.wait(timeout=30) == expected
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def test_wait_with_a_timeout_and_kill_as_popen():
    process = start(["sleeps"], lambda: time.sleep(60) or 0, env={})
    with pytest.raises(subprocess.TimeoutExpired):
        process.wait(timeout=0.2)
    assert process.poll() is None
    process.kill()
    assert process.wait(timeout=30) == -signal.SIGKILL
    assert process.poll() == -signal.SIGKILL
    process.send_signal(signal.SIGINT)  # ended: nothing to signal, as Popen


def test_off_the_main_thread_the_program_starts_as_a_new_process():
    started = []
    command = [sys.executable, "-c", "print('new')"]
    thread = threading.Thread(
        target=lambda: started.append(
            start(command, lambda: 0, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        )
    )
    thread.start()
    thread.join()
    (process,) = started
    assert isinstance(process, subprocess.Popen)
    assert process.communicate(timeout=30)[0] == b"new\n"


class _Resource:
    """Writes down each process that finalizes it."""

    def __init__(self, log):
        self.log = log

    def __del__(self):
        with self.log.open("a") as out:
            out.write(f"{os.getpid()}\n")


def test_a_fork_finalizes_nothing_it_inherited(tmp_path):
    """Neither garbage waiting for the collector nor the parent's own stdout (buffered, unflushed,
    replaced in the fork) is finalized by the fork: nothing is closed, flushed or said twice."""
    finalized = tmp_path / "finalized"
    gc.disable()  # the garbage stays until the fork has run
    cycle = [_Resource(finalized)]
    cycle.append(cycle)
    del cycle
    read, write = os.pipe()
    saved, sys.stdout = sys.stdout, open(write, "w")  # noqa: SIM115 (sys.stdout its only holder)
    print("written once", end="")
    try:
        process = start(["collects"], lambda: gc.collect() and 0, env={})
        code = process.wait(timeout=30)
    finally:
        stream, sys.stdout = sys.stdout, saved
        stream.close()
        gc.enable()
        gc.collect()
    assert code == 0
    assert os.read(read, 100) == b"written once"
    assert finalized.read_text() == f"{os.getpid()}\n"
