"""When dbt models rebuild: after their raw inputs change, once, never while an input is in flight."""

import dagster as dg

#: The daily backstop for whole-table models, in case an update was missed (UTC).
DAILY_BACKSTOP_CRON = "0 6 * * *"


def follow_inputs(*, daily_backstop: bool) -> dg.AutomationCondition:
    """Like `eager()` but for every partition, not only the latest time window (flights are 2013: the
    latest window would be December forever), optionally also on a daily cron tick."""
    condition = dg.AutomationCondition
    trigger = condition.any_deps_updated()
    if daily_backstop:
        trigger = trigger | condition.cron_tick_passed(DAILY_BACKSTOP_CRON)
    return (
        trigger.since_last_handled()
        & ~condition.any_deps_missing()
        & ~condition.any_deps_in_progress()
        & ~condition.in_progress()
    ).with_label("follow_inputs" + (" with daily backstop" if daily_backstop else ""))
