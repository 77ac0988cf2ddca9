"""The daemon's idle CPU with freshness evaluation and the alerts watcher vs without them.

    uv run python bench/alerts_idle.py [--seconds 120] [--warmup 60]

Two sides run side by side (same load), each a `dagster-daemon run` on both shipped locations (their
freshness policies loaded) with an instance of its own:
- with: freshness evaluation on (Dagster's default) plus `python -m shared.alerts` polling every 30 s;
- without: `freshness: {enabled: false}` in dagster.yaml and no watcher.
After the warm-up (code servers loaded), the CPU seconds of each side's whole process tree (daemon,
its code servers, the watcher) over the window are compared.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
import psutil
import yaml

from devtools.dev_local import INSTANCE_CONFIG, workspace_file
from devtools.locations import discover
from devtools.paths import workspace_root

BIN = Path(sys.executable).parent


def _tree_cpu(processes: list[subprocess.Popen]) -> float:
    total = 0.0
    for process in processes:
        try:
            root = psutil.Process(process.pid)
            for member in [root, *root.children(recursive=True)]:
                times = member.cpu_times()
                total += times.user + times.system + times.children_user + times.children_system
        except psutil.NoSuchProcess:
            pass
    return total


def _side(folder: Path, freshness: bool) -> list[subprocess.Popen]:
    home = folder / ("with" if freshness else "without")
    home.mkdir()
    config = {key: value for key, value in INSTANCE_CONFIG.items() if key != "run_coordinator"}
    config["freshness"] = {"enabled": freshness}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    with dg.DagsterInstance.from_config(str(home)):  # storage created once, before two processes race
        pass
    locations = discover(workspace_root())
    workspace = workspace_file(home, locations, locations)
    env = os.environ | {"DAGSTER_HOME": str(home)}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "start_new_session": True}
    started = [subprocess.Popen([BIN / "dagster-daemon", "run", "-w", str(workspace)], env=env, **quiet)]
    if freshness:
        started.append(subprocess.Popen([sys.executable, "-m", "shared.alerts"], env=env, **quiet))
    return started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--warmup", type=float, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-alerts-") as folder:
        sides = {"with": _side(Path(folder), True), "without": _side(Path(folder), False)}
        try:
            time.sleep(args.warmup)
            before = {name: _tree_cpu(processes) for name, processes in sides.items()}
            time.sleep(args.seconds)
            after = {name: _tree_cpu(processes) for name, processes in sides.items()}
        finally:
            for processes in sides.values():
                for process in processes:
                    os.killpg(process.pid, signal.SIGTERM)
                    process.wait(30)
    used = {name: after[name] - before[name] for name in sides}
    print(f"load average {os.getloadavg()[0]:.1f}; window {args.seconds:.0f} s after {args.warmup:.0f} s")
    for name, seconds in used.items():
        print(f"{name:>8}: {seconds:.2f} CPU s ({100 * seconds / args.seconds:.1f}% of a core)")
    print(f"ratio with/without: {used['with'] / used['without']:.2f}x")


if __name__ == "__main__":
    main()
