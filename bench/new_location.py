"""new-location: seconds from the command to check-defs green, and the files it writes.

    uv run python bench/new_location.py [--runs 3]

In a copy of the working tree (its own venv, the shared uv cache), each round runs, alternately:
`uv run new-location bench_reports` (validate, write every file, uv lock, uv sync, check-defs --only;
timed until it exits green), then the baseline `uv run check-defs --only bench_reports` alone (the
check a hand-made location needs at the end too), then `uv run remove-location bench_reports`
(not timed). Medians are compared.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from devtools.paths import workspace_root
from devtools.repo_copy import copy_env, copy_working_tree

NAME = "bench_reports"
TIMEOUT_SECONDS = 900


def _run(copy: Path, *command: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        command, cwd=copy, env=copy_env(), capture_output=True, text=True, timeout=TIMEOUT_SECONDS
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return seconds, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-new-location-") as scratch:
        copy = Path(scratch)
        copy_working_tree(workspace_root(), copy)
        _run(copy, "uv", "sync", "--frozen")
        created, checked, written = [], [], set()
        for round_number in range(1, args.runs + 1):
            seconds, output = _run(copy, "uv", "run", "new-location", NAME)
            created.append(seconds)
            written.add(int(re.search(r"(\d+) files written", output)[1]))
            seconds, _ = _run(copy, "uv", "run", "check-defs", "--only", NAME)
            checked.append(seconds)
            _run(copy, "uv", "run", "remove-location", NAME)
            print(f"round {round_number}: new-location {created[-1]:.1f} s, check-defs {checked[-1]:.1f} s")
    new, base = statistics.median(created), statistics.median(checked)
    print(f"new-location to check-defs green: {new:.1f} s (median of {args.runs})")
    print(f"baseline check-defs --only alone: {base:.1f} s (median of {args.runs})")
    print(f"ratio: {new / base:.2f}x; files written: {', '.join(map(str, sorted(written)))}")


if __name__ == "__main__":
    main()
