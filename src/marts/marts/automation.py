"""When dbt models rebuild: after their inputs change, once, never while an input is in flight."""

from collections.abc import Iterable

import dagster as dg

#: The daily backstop for whole-table models, in case an update was missed (UTC).
DAILY_BACKSTOP_CRON = "0 6 * * *"


def follow_inputs(
    *, daily_backstop: bool, not_triggered_by: Iterable[dg.AssetKey] = ()
) -> dg.AutomationCondition:
    """Like `eager()`, but for every partition rather than the latest time window only (flights are
    2013: the latest window would be December forever), optionally also on a daily cron tick.

    Deps in `not_triggered_by` must exist before the model builds but do not trigger a rebuild when
    they update (a monthly model is not rebuilt for all twelve months when a dimension changes)."""
    condition = dg.AutomationCondition
    ignored = list(not_triggered_by)
    updated = condition.any_deps_updated()
    if ignored:
        updated = updated.ignore(dg.AssetSelection.assets(*ignored))
    # Also build what is missing although its inputs were loaded before this condition first ran;
    # once a build failed, wait for an input to change rather than retry on every tick.
    never_built = (condition.missing() & ~condition.execution_failed()).with_label("missing, not failed")
    trigger = never_built | updated
    if daily_backstop:
        trigger = trigger | condition.cron_tick_passed(DAILY_BACKSTOP_CRON)
    label = "follow_inputs" + (" or daily backstop" if daily_backstop else "")
    return (
        trigger.since_last_handled()
        & ~condition.any_deps_missing()
        & ~condition.any_deps_in_progress()
        & ~condition.in_progress()
    ).with_label(label)


def when_missing() -> dg.AutomationCondition:
    """For a view that only monthly models read: a view shows its inputs' rows as they are, and its
    readers follow the raw months themselves, so it is built once (and again after a failure only
    when asked), never for a data update."""
    condition = dg.AutomationCondition
    never_built = condition.missing() & ~condition.execution_failed()
    return (
        never_built.since_last_handled()
        & ~condition.any_deps_missing()
        & ~condition.any_deps_in_progress()
        & ~condition.in_progress()
    ).with_label("when missing")
