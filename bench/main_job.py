"""The README's main job, timed: a fresh `uv run dev-local`, "Materialize all" on the raw assets, then
the marts built by automation alone, until every asset (and every month) is materialized.

    uv run python bench/main_job.py [--rounds N] [--load N] [--timeout 1200]

Does through GraphQL what the UI does: waits for the locations to load, launches the backfill that
"Materialize all" launches for the raw group (every raw asset, all 12 flights months), then only
watches. Prints seconds from launch of dev-local to every asset materialized, the raw backfill's end,
the runs and how many failed, and the latency budget read from each run's event log: per run, the
wait for the daemon tick that created it (the backfill daemon's or the automation sensor's), the
queue, the run worker's start, each step's start and compute, and the run's end; per asset, when it
was materialized; and the critical path from the click to the last run.

Baseline, side by side: a plain script doing the same work in one process, on a fresh embedded
Postgres: every source program (flights with its 12 months), then one `dbt build` of every model
(its partial-parse state warmed once, as the location's is). Rounds alternate the two sides; the
ratio is click -> every asset materialized over the plain script's time. `--load N` runs N
CPU-bound processes beside it the whole time (a busy machine). The machine's load average is printed
at the start and the end of each round: other work on it counts too.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the main job's test harness
from devtools import typescript
from devtools.embedded_postgres import embedded_postgres
from devtools.paths import LOCAL_HOME_ENV
from devtools.ports import free_port
from devtools.webserver import graphql, wait_until_loaded
from ingest_raw.catalog import SOURCES
from ingest_raw.launcher import source_command
from marts.assets import WINDOW_ENV
from marts.project import PROJECT_DIR
from shared.partitions import FLIGHTS_MONTHLY
from shared.postgres import WarehouseSettings
from tests.main_job import RAW_GROUP, is_done, launch_raw_backfill, materializable_assets

BIN = Path(sys.executable).parent
POLL_SECONDS = 1
WHOLE_RANGE = dict(zip(WINDOW_ENV, ("2013-01-01", "2014-01-01"), strict=True))

RUNS_QUERY = """
{ runsOrError { __typename ... on Runs { results {
    runId status creationTime startTime endTime tags { key value } assetSelection { path } } } } }
"""
EVENTS_QUERY = """
query Events($runId: ID!, $cursor: String) {
  logsForRun(runId: $runId, afterCursor: $cursor, limit: 1000) { __typename
    ... on EventConnection { cursor hasMore events { __typename
      ... on MessageEvent { timestamp eventType stepKey } } } } }
"""
#: A run's life as its event log tells it, in order; each phase ends at the first event of its type
#: (the queue writes no event when it dequeues: launching is RUN_STARTING).
RUN_PHASES = (("queued until launched", "RUN_STARTING"), ("run worker start", "RUN_START"))
FINISHED = ("SUCCESS", "FAILURE", "CANCELED")


def _runs(url: str, events: bool = True) -> list[dict]:
    runs = graphql(url, RUNS_QUERY)["runsOrError"]["results"]
    for run in runs:
        run["tags"] = {tag["key"]: tag["value"] for tag in run["tags"]}
        run["events"] = _events(url, run["runId"]) if events else []
    return runs


def _events(url: str, run_id: str) -> list[tuple[str, str | None, float]]:
    """(event type, step key, seconds since the epoch) of every event of a run."""
    events, cursor = [], None
    while True:
        page = graphql(url, EVENTS_QUERY, {"runId": run_id, "cursor": cursor})["logsForRun"]
        events += [
            (event["eventType"], event["stepKey"], int(event["timestamp"]) / 1000)
            for event in page["events"]
            if event.get("eventType")
        ]
        if not page["hasMore"]:
            return events
        cursor = page["cursor"]


def _burners(count: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def run_main_job(timeout: float) -> dict:
    clean_env = {k: v for k, v in os.environ.items() if k not in WarehouseSettings.ENVIRONMENT.values()}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-main-job-") as scratch:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = open(Path(scratch) / "dev-local.log", "w")  # noqa: SIM115 (closed below)
        started = time.monotonic()
        dev_local = subprocess.Popen(
            [str(BIN / "dev-local"), "--port", str(port)],
            env=clean_env | {LOCAL_HOME_ENV: str(Path(scratch) / "home")},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until_loaded(url, timeout=timeout)
            loaded = time.monotonic() - started
            nodes = materializable_assets(url)
            raw_keys = [node["assetKey"]["path"] for node in nodes if node["groupName"] == RAW_GROUP]
            clicked, clicked_at = time.monotonic(), time.time()
            backfill = launch_raw_backfill(url, raw_keys)
            raw_done = None
            while time.monotonic() - started < timeout:
                nodes = materializable_assets(url)
                if raw_done is None and all(is_done(n) for n in nodes if n["groupName"] == RAW_GROUP):
                    raw_done = time.monotonic() - clicked
                if all(is_done(node) for node in nodes):
                    break
                time.sleep(POLL_SECONDS)
            finished = time.monotonic() - clicked
            missing = ["/".join(n["assetKey"]["path"]) for n in nodes if not is_done(n)]
            # The last run's closing events come after its last materialization: wait for them.
            while any(r["status"] not in FINISHED for r in _runs(url, events=False)):
                if time.monotonic() - started > timeout:
                    break
                time.sleep(POLL_SECONDS)
            runs = _runs(url)
        finally:
            os.killpg(dev_local.pid, signal.SIGINT)
            dev_local.wait(timeout=120)
            log.close()
    statuses = [run["status"] for run in runs]
    return {
        "loaded_s": loaded,
        "raw_done_s": raw_done,
        "all_done_s": None if missing else finished,
        "missing": missing,
        "assets": len(nodes),
        "runs": len(runs),
        "failed": statuses.count("FAILURE"),
        "unfinished": sum(status not in FINISHED for status in statuses),
        "budget": budget(runs, nodes, backfill, clicked_at),
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }


def run_plain(scratch: Path) -> float:
    """Seconds for every source program and one `dbt build`, one after the other, on a fresh warehouse."""
    with embedded_postgres(scratch / f"pgdata-{time.monotonic_ns()}") as settings:
        env = os.environ | settings.to_env() | {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
        dbt = [str(BIN / "dbt"), "--quiet"]
        options = ["--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR)]
        options += ["--target-path", str(scratch / "target"), "--log-path", str(scratch / "dbt-logs")]
        _check([*dbt, "parse", *options], env)  # as the location's prepared manifest: not timed
        started = time.monotonic()
        for source in SOURCES.values():
            months = FLIGHTS_MONTHLY.get_partition_keys() if source.partition else ()
            cwd = typescript.build() if source.program else None
            _check(source_command(source, months), env, cwd)
        _check([*dbt, "build", *options], env | WHOLE_RANGE)
        return time.monotonic() - started


def _check(command: list[str], env: dict[str, str], cwd: Path | None = None) -> None:
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=900)
    if result.returncode:
        output = result.stdout[-2000:] + result.stderr[-2000:]
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}): {output}")


def budget(runs: list[dict], nodes: list[dict], backfill: str, clicked_at: float) -> dict:
    """Where the time went after the click, from the runs' event logs (seconds after the click)."""
    rows = {}
    for run in runs:
        tags = run["tags"]
        if tags.get("dagster/backfill") == backfill:
            trigger, tick = clicked_at, "backfill daemon tick (the click's backfill)"
        else:
            ended_before = [
                r["endTime"] for r in runs if r["endTime"] and r["endTime"] <= run["creationTime"]
            ]
            trigger = max(ended_before, default=clicked_at)
            tick = (
                "backfill daemon tick (automation's backfill)"
                if "dagster/backfill" in tags
                else "automation sensor tick"
            )
        rows[run["runId"]] = {
            "run": run,
            "trigger": trigger,
            "label": _label(run),
            "phases": _phases(run, trigger, tick),
        }
    last = max(
        (row for row in rows.values() if row["run"]["endTime"]),
        key=lambda row: row["run"]["endTime"],
        default=None,
    )
    path = []
    while last is not None:
        path.insert(0, last)
        last = next(
            (row for row in rows.values() if row["run"]["endTime"] == last["trigger"] and row is not last),
            None,
        )
    assets = sorted(
        (
            float(node["assetMaterializations"][0]["timestamp"]) / 1000 - clicked_at,
            "/".join(node["assetKey"]["path"]),
        )
        for node in nodes
        if node["assetMaterializations"]
    )
    return {
        "runs": sorted(rows.values(), key=lambda row: row["run"]["creationTime"]),
        "path": path,
        "assets": assets,
        "clicked_at": clicked_at,
    }


def _phases(run: dict, trigger: float, tick: str) -> list[tuple[str, float]]:
    """(phase, seconds) from the trigger to the run's end: the tick that created the run, the queue,
    the run worker's start, then per step its start (a step process, or nothing in-process) and its
    compute (the step's own events written meanwhile), and the run's end (closing events, exit)."""
    events = run["events"]
    first = {}
    for kind, step, at in events:
        first.setdefault((kind, step), at)
    phases = [(tick, run["creationTime"] - trigger)]
    mark = run["creationTime"]
    for name, kind in RUN_PHASES:
        at = first.get((kind, None))
        if at is not None:
            phases.append((name, at - mark))
            mark = at
    steps = sorted({step for _, step, _ in events if step}, key=lambda s: first.get(("STEP_START", s), 0))
    for step in steps:
        start, ends = (
            first.get(("STEP_START", step)),
            [at for kind, s, at in events if s == step and kind in ("STEP_SUCCESS", "STEP_FAILURE")],
        )
        if start is None or not ends:
            continue
        phases.append((f"{step}: step start", max(0.0, start - mark)))
        phases.append((f"{step}: compute + its events", max(ends) - start))
        mark = max(mark, max(ends))
    if run["endTime"]:
        phases.append(("run end (closing events, worker exit)", run["endTime"] - mark))
    return phases


def _label(run: dict) -> str:
    tags = run["tags"]
    window = tags.get("dagster/asset_partition_range_start") or tags.get("dagster/partition")
    if window and tags.get("dagster/asset_partition_range_end") not in (None, window):
        window += f"..{tags['dagster/asset_partition_range_end']}"
    assets = ", ".join("/".join(key["path"]) for key in run["assetSelection"] or [])
    return f"{run['status']} {assets}" + (f" [{window}]" if window else "")


def print_budget(result: dict) -> None:
    plan = result["budget"]
    at = plan["clicked_at"]
    print("runs (s after the click: created, started, ended), each with its budget:")
    for row in plan["runs"]:
        run = row["run"]
        times = [run["creationTime"], run["startTime"], run["endTime"]]
        print("  " + " ".join(f"{t - at:6.1f}" if t else "     -" for t in times) + f"  {row['label']}")
        for phase, seconds in row["phases"]:
            print(f"      {seconds:6.1f}  {phase}")
    print("assets (s after the click, when last materialized):")
    for seconds, key in plan["assets"]:
        print(f"  {seconds:6.1f}  {key}")
    print("critical path, click -> the last run's end:")
    totals: dict[str, float] = {}
    for row in plan["path"]:
        print(f"  run: {row['label']}")
        for phase, seconds in row["phases"]:
            kind = phase.split(": ")[-1]
            totals[kind] = totals.get(kind, 0.0) + seconds
            print(f"      {seconds:6.1f}  {phase}")
    print("  summed by kind: " + "; ".join(f"{kind} {seconds:.1f} s" for kind, seconds in totals.items()))


def _seconds(value: float | None) -> str:
    return "not reached" if value is None else f"{value:.1f} s"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=1, help="rounds, each: both sides, order alternating")
    parser.add_argument("--load", type=int, default=0, help="CPU-bound processes to run beside it")
    parser.add_argument("--timeout", type=float, default=1200, help="give up after this many seconds")
    args = parser.parse_args()
    burners = _burners(args.load)
    jobs, plains = [], []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-plain-") as scratch:
            for round_number in range(args.rounds):
                sides = ["job", "plain"] if round_number % 2 == 0 else ["plain", "job"]
                for side in sides:
                    print(
                        f"round {round_number + 1}: {side} (load average {os.getloadavg()[0]:.1f})",
                        flush=True,
                    )
                    if side == "plain":
                        plains.append(run_plain(Path(scratch)))
                        print(f"plain script: {plains[-1]:.1f} s", flush=True)
                    else:
                        jobs.append(run_main_job(args.timeout))
                        report(jobs[-1], args.load)
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    done = [job["all_done_s"] for job in jobs]
    job_seconds, plain_seconds = ", ".join(map(_seconds, done)), ", ".join(map(_seconds, plains))
    print(f"click -> every asset: {job_seconds}; plain script: {plain_seconds}")
    if None not in done:
        print(
            f"ratio (medians): {statistics.median(done):.1f} s / {statistics.median(plains):.1f} s ="
            f" {statistics.median(done) / statistics.median(plains):.2f}x; goal <= 2.5x"
        )


def report(result: dict, load: int) -> None:
    print(
        f"machine: {os.cpu_count()} cores; load average {result['load_before']:.1f} at the start,"
        f" {result['load_after']:.1f} at the end; {load} CPU-bound processes beside"
    )
    print(
        f"locations loaded: {_seconds(result['loaded_s'])} after launch;"
        f" raw done {_seconds(result['raw_done_s'])} after the click"
    )
    print(
        f"all {result['assets']} assets materialized: {_seconds(result['all_done_s'])} after the click"
        + (f" (missing: {', '.join(result['missing'])})" if result["missing"] else "")
    )
    print(f"runs: {result['runs']}, failed: {result['failed']}, unfinished: {result['unfinished']}")
    print_budget(result)


if __name__ == "__main__":
    main()
