"""How our long-running programs take a stop."""

import signal


def stop_on_signals() -> None:
    """SIGINT (Ctrl-C, Dagster's termination) and SIGTERM (a container's stop) raise KeyboardInterrupt,
    also where a parent left them ignored (`cmd &`), which a child would otherwise inherit."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
