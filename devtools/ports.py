"""Local TCP ports: pick a free one, refuse a busy one by name."""

from __future__ import annotations

import socket


class PortInUse(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ensure_free(port: int, what: str) -> None:
    """Raise PortInUse naming `what` when a server listens on `port` (TIME_WAIT leftovers don't count,
    as servers bind with SO_REUSEADDR)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            raise PortInUse(f"port {port} for {what} is in use ({error.strerror})") from None
