"""Helpers for tests that start real processes: free ports and orphan detection."""

from __future__ import annotations

import os
import socket
import time

import psutil

from shared import postgres


def child_env(settings: dict[str, str], **extra: str) -> dict[str, str]:
    """The environment a subprocess gets: ours, plus the warehouse handed over as WAREHOUSE_*."""
    return os.environ | postgres.warehouse_env(settings) | extra


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def processes_mentioning(text: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if any(text in part for part in process.info["cmdline"] or []):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def wait_until_gone(text: str, timeout: float) -> list[psutil.Process]:
    """Processes whose command line still mentions `text` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while (left := processes_mentioning(text)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left
