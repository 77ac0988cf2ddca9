"""How our long-running programs take a stop."""

import signal

#: The signals that ask a program to stop: SIGINT (Ctrl-C, Dagster's termination), SIGTERM (a
#: container's stop) and SIGHUP (its terminal closed, an ssh session lost).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def stop_on_signals() -> None:
    """Every stop signal raises KeyboardInterrupt, SIGINT and SIGTERM also where a parent left them
    ignored (`cmd &`), which a child would otherwise inherit; SIGHUP unless ignored on purpose
    (`nohup`). Left alone, a hangup would kill the program with no word of what it was doing."""
    for signum in STOP_SIGNALS:
        if signum != signal.SIGHUP or signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, signal.default_int_handler)
