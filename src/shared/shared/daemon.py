"""`python -m shared.daemon run ...`: Dagster's daemon (`dagster-daemon run`, the same options), its
backfill loop every BACKFILL_INTERVAL_SECONDS instead of Dagster's fixed 30 s, and its asset daemon
looking at the automation sensors every ASSET_DAEMON_LOOP_SECONDS instead of 5 s.

A backfill waits for the backfill loop twice: to launch its runs, and to be marked done; until then
automation builds no model downstream of it (a backfill still targeting an input is an input in
flight). On the main job that is four waits of up to 30 s each: the click's backfill of the raw
assets and automation's backfill of the `fct_flights` months, each launched and then closed.
Dagster has no setting for it (dagster-io/dagster#11649): the backfill loop reads
`dagster._daemon.controller.DEFAULT_DAEMON_INTERVAL_SECONDS` each time it starts, and only the
backfill loop reads it when automation runs as sensors, as ours does. An idle loop is one query.

The asset daemon evaluates an automation sensor on a pass of its loop once the sensor's interval
has passed since its last tick started. With the loop and the interval both 5 s, a tick that
started a moment late is not due on the next pass, so the sensor ran every 10 s as often as every
5 s. Passing every second, it runs every 5 to 6 s; a pass with no tick due reads one state per
sensor. The loop reads `dagster._daemon.asset_daemon.MIN_INTERVAL_LOOP_SECONDS` after each pass.
"""

import dagster._daemon.asset_daemon as asset_daemon
import dagster._daemon.controller as controller

BACKFILL_INTERVAL_SECONDS = 2
ASSET_DAEMON_LOOP_SECONDS = 1


def shorten_loops() -> None:
    controller.DEFAULT_DAEMON_INTERVAL_SECONDS = BACKFILL_INTERVAL_SECONDS
    asset_daemon.MIN_INTERVAL_LOOP_SECONDS = ASSET_DAEMON_LOOP_SECONDS


def main() -> None:
    shorten_loops()
    from dagster._daemon.cli import main as dagster_daemon

    dagster_daemon()


if __name__ == "__main__":
    main()
