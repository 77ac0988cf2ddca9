"""`python -m shared.daemon run ...`: Dagster's daemon (`dagster-daemon run`, the same options),
its backfill loop every BACKFILL_INTERVAL_SECONDS instead of Dagster's fixed 30 s.

A backfill waits for that loop twice: to launch its runs, and to be marked done; until then
automation builds no model downstream of it (a backfill still targeting an input is an input in
flight). On the main job that is four waits of up to 30 s each: the click's backfill of the raw
assets and automation's backfill of the `fct_flights` months, each launched and then closed.
Dagster has no setting for it (dagster-io/dagster#11649): the backfill loop reads
`dagster._daemon.controller.DEFAULT_DAEMON_INTERVAL_SECONDS` each time it starts, and only the
backfill loop reads it when automation runs as sensors, as ours does. An idle loop is one query.
"""

import dagster._daemon.controller as controller

BACKFILL_INTERVAL_SECONDS = 2


def shorten_backfill_loop() -> None:
    controller.DEFAULT_DAEMON_INTERVAL_SECONDS = BACKFILL_INTERVAL_SECONDS


def main() -> None:
    shorten_backfill_loop()
    from dagster._daemon.cli import main as dagster_daemon

    dagster_daemon()


if __name__ == "__main__":
    main()
