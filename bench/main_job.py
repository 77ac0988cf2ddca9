"""The README's main job, timed: a fresh `uv run dev-local`, "Materialize all" on the raw assets, then
the marts built by automation alone, until every asset (and every month) is materialized.

    uv run python bench/main_job.py [--load N] [--timeout 1200]

Does through GraphQL what the UI does: waits for the locations to load, launches the backfill that
"Materialize all" launches for the raw group (every raw asset, all 12 flights months), then only
watches. Prints seconds from launch of dev-local to every asset materialized, the raw backfill's end,
the runs and how many failed, and how long automation's runs waited from creation to start.
`--load N` runs N CPU-bound processes beside it the whole time (a busy machine). The machine's load
average is printed at the start and the end: other work on it counts too.
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

from devtools.paths import LOCAL_HOME_ENV
from devtools.ports import free_port
from devtools.webserver import graphql, wait_until_loaded
from shared.postgres import WarehouseSettings

BIN = Path(sys.executable).parent
POLL_SECONDS = 3
RAW_GROUP = "raw"

ASSETS_QUERY = """
{ assetNodes { assetKey { path } groupName isMaterializable isPartitioned
    partitionStats { numMaterialized numPartitions }
    assetMaterializations(limit: 1) { timestamp } } }
"""
BACKFILL_MUTATION = """
mutation Backfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on UnauthorizedError { message }
  }
}
"""
RUNS_QUERY = """
{ runsOrError { __typename ... on Runs { results {
    runId status creationTime startTime endTime tags { key value } assetSelection { path } } } } }
"""


def _assets(url: str) -> list[dict]:
    return [node for node in graphql(url, ASSETS_QUERY)["assetNodes"] if node["isMaterializable"]]


def _done(node: dict) -> bool:
    if node["isPartitioned"]:
        stats = node["partitionStats"]
        return stats["numPartitions"] > 0 and stats["numMaterialized"] == stats["numPartitions"]
    return bool(node["assetMaterializations"])


def _runs(url: str) -> list[dict]:
    runs = graphql(url, RUNS_QUERY)["runsOrError"]["results"]
    for run in runs:
        run["tags"] = {tag["key"]: tag["value"] for tag in run["tags"]}
    return runs


def _launch_raw_backfill(url: str, raw_keys: list[list[str]]) -> str:
    params = {"assetSelection": [{"path": key} for key in raw_keys], "allPartitions": True}
    result = graphql(url, BACKFILL_MUTATION, {"params": params})["launchPartitionBackfill"]
    if result["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(f"backfill not launched: {result}")
    return result["backfillId"]


def _burners(count: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def run_main_job(timeout: float, load: int) -> dict:
    clean_env = {k: v for k, v in os.environ.items() if k not in WarehouseSettings.ENVIRONMENT.values()}
    burners = _burners(load)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-main-job-") as scratch:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = open(Path(scratch) / "dev-local.log", "w")  # noqa: SIM115 (closed below)
        started, started_at = time.monotonic(), time.time()
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
            nodes = _assets(url)
            raw_keys = [node["assetKey"]["path"] for node in nodes if node["groupName"] == RAW_GROUP]
            backfill = _launch_raw_backfill(url, raw_keys)
            raw_done = None
            while time.monotonic() - started < timeout:
                nodes = _assets(url)
                if raw_done is None and all(_done(n) for n in nodes if n["groupName"] == RAW_GROUP):
                    raw_done = time.monotonic() - started
                if all(_done(node) for node in nodes):
                    break
                time.sleep(POLL_SECONDS)
            finished = time.monotonic() - started
            missing = ["/".join(n["assetKey"]["path"]) for n in nodes if not _done(n)]
            runs = _runs(url)
        finally:
            os.killpg(dev_local.pid, signal.SIGINT)
            dev_local.wait(timeout=120)
            log.close()
            for burner in burners:
                burner.kill()
                burner.wait()
    automation = [run for run in runs if run["tags"].get("dagster/backfill") != backfill]
    waits = [run["startTime"] - run["creationTime"] for run in automation if run["startTime"]]
    statuses = [run["status"] for run in runs]
    return {
        "loaded_s": loaded,
        "raw_done_s": raw_done,
        "all_done_s": None if missing else finished,
        "missing": missing,
        "assets": len(nodes),
        "runs": len(runs),
        "failed": statuses.count("FAILURE"),
        "unfinished": sum(status not in ("SUCCESS", "FAILURE", "CANCELED") for status in statuses),
        "automation_runs": len(automation),
        "wait_median_s": statistics.median(waits) if waits else None,
        "wait_max_s": max(waits) if waits else None,
        "timeline": _timeline(runs, backfill, started_at),
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }


def _timeline(runs: list[dict], backfill: str, started_at: float) -> list[str]:
    """One line per run, oldest first: seconds after dev-local's launch when it was created, started
    and ended, what launched it and what it built."""
    lines = []
    for run in sorted(runs, key=lambda run: run["creationTime"]):
        times = [run["creationTime"], run["startTime"], run["endTime"]]
        created, start, end = (f"{t - started_at:6.0f}" if t else "     -" for t in times)
        kind = "backfill  " if run["tags"].get("dagster/backfill") == backfill else "automation"
        tags = run["tags"]
        window = tags.get("dagster/asset_partition_range_start") or tags.get("dagster/partition")
        if window and tags.get("dagster/asset_partition_range_end") not in (None, window):
            window += f"..{tags['dagster/asset_partition_range_end']}"
        assets = ", ".join("/".join(key["path"]) for key in run["assetSelection"] or [])
        partitions = f" [{window}]" if window else ""
        lines.append(f"{created} {start} {end}  {kind} {run['status']:<8} {assets}{partitions}")
    return lines


def _seconds(value: float | None) -> str:
    return "not reached" if value is None else f"{value:.0f} s"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--load", type=int, default=0, help="CPU-bound processes to run beside it")
    parser.add_argument("--timeout", type=float, default=1200, help="give up after this many seconds")
    args = parser.parse_args()
    result = run_main_job(args.timeout, args.load)
    print(
        f"machine: {os.cpu_count()} cores; load average {result['load_before']:.1f} at the start,"
        f" {result['load_after']:.1f} at the end; {args.load} CPU-bound processes beside"
    )
    print(
        f"locations loaded: {_seconds(result['loaded_s'])};"
        f" raw backfill done: {_seconds(result['raw_done_s'])}"
    )
    print(
        f"all {result['assets']} assets materialized: {_seconds(result['all_done_s'])}"
        + (f" (missing: {', '.join(result['missing'])})" if result["missing"] else "")
    )
    print(f"runs: {result['runs']}, failed: {result['failed']}, unfinished: {result['unfinished']}")
    print(
        f"automation runs: {result['automation_runs']}; creation -> start median"
        f" {_seconds(result['wait_median_s'])}, max {_seconds(result['wait_max_s'])}"
    )
    print("runs (s after launch: created, started, ended):")
    for line in result["timeline"]:
        print(f"  {line}")
    if result["all_done_s"] is not None:
        print(f"vs before this change (1011 s, quiet): {result['all_done_s'] / 1011:.2f}x; goal <= 180 s")


if __name__ == "__main__":
    main()
