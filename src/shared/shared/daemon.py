"""`python -m shared.daemon run ...`: Dagster's daemon (`dagster-daemon run`, the same options), its
backfill loop every BACKFILL_INTERVAL_SECONDS instead of Dagster's fixed 30 s, and its asset daemon
looking at the automation sensors every ASSET_DAEMON_LOOP_SECONDS instead of 5 s, and its run queue
every RUN_QUEUE_INTERVAL_SECONDS.

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

The run queue is looked at every RUN_QUEUE_INTERVAL_SECONDS: the instance's
`dequeue_interval_seconds` takes whole seconds (1 in dagster.yaml, which Helm's daemon keeps), and
every run waits in the queue for the next pass, so half a second on average at 1 s. Half a second
is the finest the loop can do: it waits in steps of 0.5 s. An idle pass is one query.
"""

import dagster._daemon.asset_daemon as asset_daemon
import dagster._daemon.controller as controller
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

BACKFILL_INTERVAL_SECONDS = 2
ASSET_DAEMON_LOOP_SECONDS = 1
RUN_QUEUE_INTERVAL_SECONDS = 0.5


def shorten_loops() -> None:
    controller.DEFAULT_DAEMON_INTERVAL_SECONDS = BACKFILL_INTERVAL_SECONDS
    asset_daemon.MIN_INTERVAL_LOOP_SECONDS = ASSET_DAEMON_LOOP_SECONDS
    create = controller.create_daemon_of_type

    def create_daemon_of_type(daemon_type, instance):
        daemon = create(daemon_type, instance)
        if isinstance(daemon, QueuedRunCoordinatorDaemon):
            daemon.interval_seconds = min(daemon.interval_seconds, RUN_QUEUE_INTERVAL_SECONDS)
        return daemon

    controller.create_daemon_of_type = create_daemon_of_type


def main() -> None:
    shorten_loops()
    from dagster._daemon.cli import main as dagster_daemon

    dagster_daemon()


if __name__ == "__main__":
    main()
