"""What dev-local prints while it runs: one line per change, never Dagster's own logs.

While the locations load: a line when a location moves on (starting, importing, parsing dbt,
building definitions, serving, failed), read from the process tree of `dagster dev` and the
webserver. Then `ready`, timed from the command's start. After that: one line when a run starts,
one when it ends, and one when a run stays queued, naming the limit that holds it (the same limits
the run queue applies).
"""

from __future__ import annotations

import time
import urllib.error
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import psutil
import yaml

from devtools.locations import Location
from devtools.webserver import graphql, location_states

#: A run queued this long gets a line saying why (and again whenever the reason changes).
QUEUED_NOTICE_SECONDS = 10
#: ... and a run that no limit holds (the daemon's queue has not got to it yet) this long.
UNHELD_NOTICE_SECONDS = 60
#: While loading, a location whose phase has not changed is mentioned again this often.
STILL_LOADING_EVERY_SECONDS = 30
POLL_SECONDS = 1
IN_PROGRESS = ("STARTING", "STARTED", "CANCELING")
FINISHED = ("SUCCESS", "FAILURE", "CANCELED")

RUNS_QUERY = """
{ runsOrError(limit: 100) { __typename ... on Runs { results {
    runId status creationTime startTime endTime allPools
    tags { key value } assetSelection { path } } } }
  instance { runQueueConfig { maxConcurrentRuns tagConcurrencyLimitsYaml }
             poolConfig { defaultPoolLimit } } }
"""
POOL_QUERY = "query Pool($key: String) { instance { concurrencyLimit(concurrencyKey: $key) { limit } } }"


def command_start() -> float:
    """When the user's command started (epoch seconds): `uv run`'s start when it launched us."""
    me = psutil.Process()
    with_parent = [me]
    try:
        parent = me.parent()
        if parent is not None and parent.name() == "uv":
            with_parent.insert(0, parent)
    except psutil.Error:
        pass
    return with_parent[0].create_time()


@dataclass
class Reporter:
    url: str
    locations: list[Location]
    started: float  # epoch seconds, see command_start
    say: Callable[[str], None]
    phases: dict[str, str] = field(default_factory=dict)
    phase_since: dict[str, float] = field(default_factory=dict)
    runs: dict[str, str] = field(default_factory=dict)  # run id -> last status reported
    queued_reason: dict[str, str] = field(default_factory=dict)

    def elapsed(self) -> float:
        return time.time() - self.started

    # --- loading -------------------------------------------------------------------------------

    def watch_loading(self, dagster_pid: int, alive: Callable[[], bool]) -> bool:
        """Report each location's phase until every one is loaded; True when ready."""
        while alive():
            try:
                states = location_states(self.url)
            except (OSError, RuntimeError, ValueError):
                states = {}
            tree = _process_tree(dagster_pid)
            for location in self.locations:
                self._phase(location.name, location_phase(location, states.get(location.name), tree))
            names = {location.name for location in self.locations}
            if names <= states.keys() and all(state["status"] == "LOADED" for state in states.values()):
                loaded = ", ".join(sorted(name for name in names if not states[name]["error"]))
                loaded = loaded or "no location"
                self.say(f"ready in {self.elapsed():.0f} s: {self.url} ({loaded} loaded)")
                return True
            time.sleep(POLL_SECONDS)
        return False

    def _phase(self, name: str, phase: str) -> None:
        now = time.time()
        if phase == "importing" and self.phases.get(name) in ("parsing dbt", "building definitions"):
            phase = "building definitions"  # the code server, back from dbt parse
        if self.phases.get(name) != phase:
            self.phases[name] = phase
            self.phase_since[name] = now
            self.say(f"{self.elapsed():3.0f} s  {name}: {phase}")
        elif phase != "serving" and now - self.phase_since[name] >= STILL_LOADING_EVERY_SECONDS:
            self.phase_since[name] = now
            self.say(f"{self.elapsed():3.0f} s  {name}: still {phase}")

    # --- runs ----------------------------------------------------------------------------------

    def watch_runs(self, alive: Callable[[], bool], every: float = 2.0) -> None:
        """One line per run started and finished, and why a run stays queued, until `alive` fails."""
        known_before = True
        while alive():
            try:
                data = graphql(self.url, RUNS_QUERY)
            except (OSError, RuntimeError, ValueError, urllib.error.URLError):
                time.sleep(every)
                continue
            runs = data["runsOrError"].get("results") or []
            if known_before:  # runs of an earlier session: not news
                self.runs.update({run["runId"]: run["status"] for run in runs})
                known_before = False
            else:
                self.report_runs(runs, data["instance"])
            time.sleep(every)

    def report_runs(self, runs: list[dict], instance: dict) -> None:
        in_progress = [run for run in runs if run["status"] in IN_PROGRESS]
        for run in sorted(runs, key=lambda run: run["creationTime"]):
            run_id, status = run["runId"], run["status"]
            before = self.runs.get(run_id)
            if status == "QUEUED":
                waited = time.time() - run["creationTime"]
                reason = queue_reason(run, in_progress, instance, self._pool_limit)
                # A run no limit holds is about to start: worth a line only once it has waited long.
                notice = QUEUED_NOTICE_SECONDS if reason else UNHELD_NOTICE_SECONDS
                reason = reason or "no limit is full: waiting for the daemon's run queue (see its log)"
                if waited >= notice and self.queued_reason.get(run_id) != reason:
                    self.queued_reason[run_id] = reason
                    self.say(f"run {run_id[:8]} queued {waited:.0f} s: {reason}: {describe(run)}")
            # A run that started and ended between two looks gets its started line too.
            started = status in IN_PROGRESS[:2] or bool(run["startTime"])
            if started and before not in (*IN_PROGRESS, *FINISHED):
                queued = (run["startTime"] or time.time()) - run["creationTime"]
                self.say(f"run {run_id[:8]} started (queued {queued:.0f} s): {describe(run)}")
            if status in FINISHED and before not in FINISHED:
                took = (run["endTime"] or time.time()) - (run["startTime"] or run["creationTime"])
                ending = "" if status == "SUCCESS" else f"; see {self.url}/runs/{run_id}"
                self.say(f"run {run_id[:8]} {status} after {took:.0f} s: {describe(run)}{ending}")
            self.runs[run_id] = status

    def _pool_limit(self, pool: str, default: int | None) -> int | None:
        try:
            limit = graphql(self.url, POOL_QUERY, {"key": pool})["instance"]["concurrencyLimit"]["limit"]
        except (OSError, RuntimeError, ValueError, KeyError, TypeError):
            return default
        return default if limit is None else limit


def location_phase(location: Location, state: dict | None, tree: list[psutil.Process]) -> str:
    """starting (no code server yet), importing, parsing dbt, serving, or failed: <error>."""
    if state and state["status"] == "LOADED":
        return f"failed: {_first_line(state['error'])}" if state["error"] else "serving"
    server = [proc for proc in tree if location.module in _cmdline(proc)]
    if not server:
        return "starting"
    below = [child for proc in server for child in _children(proc)]
    if any(_is_dbt_parse(_cmdline(proc)) for proc in below):
        return "parsing dbt"
    return "importing"


def queue_reason(
    run: dict, in_progress: list[dict], instance: dict, pool_limit: Callable[[str, int | None], int | None]
) -> str | None:
    """Which of the run queue's limits holds `run`: the instance's run limit, a tag limit, a pool, or
    None when none is full."""
    config = instance["runQueueConfig"]
    if len(in_progress) >= config["maxConcurrentRuns"]:
        return f"{len(in_progress)} of {config['maxConcurrentRuns']} runs in progress (max_concurrent_runs)"
    tags = _tags(run)
    for limit in yaml.safe_load(config.get("tagConcurrencyLimitsYaml") or "[]") or []:
        key, value = limit["key"], limit.get("value")
        if key not in tags:
            continue
        per_value = isinstance(value, dict) and value.get("applyLimitPerUniqueValue")
        if not (value is None or per_value or tags[key] == value):
            continue
        holders = [other for other in in_progress if key in _tags(other)]
        if per_value or value is not None:
            holders = [other for other in holders if _tags(other)[key] == tags[key]]
        if len(holders) >= limit["limit"]:
            return f"{len(holders)} runs with {key}={tags[key]} in progress (limit {limit['limit']})"
    default = (instance.get("poolConfig") or {}).get("defaultPoolLimit")
    for pool in run.get("allPools") or []:
        limit = pool_limit(pool, default)
        holders = [other for other in in_progress if pool in (other.get("allPools") or [])]
        if limit is not None and len(holders) >= limit:
            return f"pool {pool} in use by {len(holders)} of {limit} runs"
    return None


def describe(run: dict) -> str:
    """The run's assets (the first three) and partition(s), and its location."""
    keys = ["/".join(asset["path"]) for asset in run.get("assetSelection") or []]
    tags = _tags(run)
    what = ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
    if "dagster/partition" in tags:
        what += f" [{tags['dagster/partition']}]"
    elif "dagster/asset_partition_range_start" in tags:
        what += (
            f" [{tags['dagster/asset_partition_range_start']}…{tags['dagster/asset_partition_range_end']}]"
        )
    location = tags.get("dagster/code_location")
    return f"{what or 'a job'}" + (f" ({location})" if location else "")


def _tags(run: dict) -> dict[str, str]:
    return {tag["key"]: tag["value"] for tag in run.get("tags") or []}


def _first_line(text: str) -> str:
    return next((line for line in text.splitlines() if line.strip()), text).strip()


def _process_tree(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _children(proc: psutil.Process) -> Iterable[psutil.Process]:
    try:
        return proc.children(recursive=True)
    except psutil.Error:
        return []


def _cmdline(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:
        return ""


def _is_dbt_parse(cmdline: str) -> bool:
    words = cmdline.split()
    return "parse" in words and any(word.rsplit("/", 1)[-1] == "dbt" for word in words)
