"""What a code server pays to load each location, against the bare imports it cannot avoid.

    uv run python bench/import_cost.py [--runs 7] [--sources 500]

1. ingest_raw with `--sources` declared sources (the shipped catalog's weather source, copied under
   new names): `import ingest_raw.definitions` vs `import dagster`, and the same import plus loading
   the lazy definitions (building every asset, check and schedule) vs `import dagster`.
2. marts: `import marts.definitions` plus loading its lazy definitions (manifest prepared) vs
   `import dagster, dagster_dbt`.

Each figure is timed inside a fresh process from before its first import, sides alternating;
medians are compared.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

CLOCK = "import time\nstarted = time.perf_counter()\n"
REPORT = "import json\nprint(json.dumps(times))\n"
DAGSTER = CLOCK + "import dagster\ntimes = {'import': time.perf_counter() - started}\n" + REPORT
DAGSTER_DBT = (
    CLOCK + "import dagster, dagster_dbt\ntimes = {'import': time.perf_counter() - started}\n" + REPORT
)
INGEST = (
    CLOCK
    + "import dataclasses\n"
    + "import ingest_raw.catalog as catalog\n"
    + "weather = catalog.SOURCES['weather']\n"
    + "catalog.SOURCES = {f's{i}': dataclasses.replace(weather, name=f's{i}', table=f's{i}')"
    + " for i in range(SOURCE_COUNT)}\n"
    + "import ingest_raw.definitions as module\n"
    + "imported = time.perf_counter() - started\n"
    + "assets = len(module.defs().assets)\n"
    + "times = {'import': imported, 'load': time.perf_counter() - started, 'assets': assets}\n"
    + REPORT
)
MARTS = (
    CLOCK
    + "import marts.definitions as module\n"
    + "imported = time.perf_counter() - started\n"
    + "module.defs()\n"
    + "times = {'import': imported, 'load': time.perf_counter() - started}\n"
    + REPORT
)


def _time(code: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=True
    )
    return json.loads(done.stdout.splitlines()[-1])


def _alternate(candidate: str, baseline: str, runs: int) -> tuple[list[dict], list[dict]]:
    _time(candidate), _time(baseline)  # warm the file cache and the bytecode for both
    pairs = [(_time(candidate), _time(baseline)) for _ in range(runs)]
    return [pair[0] for pair in pairs], [pair[1] for pair in pairs]


def _median(samples: list[dict], key: str) -> float:
    return statistics.median(sample[key] for sample in samples)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--sources", type=int, default=500)
    args = parser.parse_args()

    from marts.project import flights_project

    flights_project()  # the manifest exists before timing, as in an image
    ingest, dagster = _alternate(INGEST.replace("SOURCE_COUNT", str(args.sources)), DAGSTER, args.runs)
    marts, dagster_dbt = _alternate(MARTS, DAGSTER_DBT, args.runs)
    bare, bare_dbt = _median(dagster, "import"), _median(dagster_dbt, "import")
    print(f"medians of {args.runs} alternating fresh processes each")
    print(f"import dagster: {bare:.2f} s; import dagster, dagster_dbt: {bare_dbt:.2f} s")
    for label, seconds, baseline, goal in (
        (
            f"1a. import ingest_raw.definitions ({args.sources} sources)",
            _median(ingest, "import"),
            bare,
            1.15,
        ),
        (f"1b. the same + load ({ingest[0]['assets']} assets)", _median(ingest, "load"), bare, None),
        ("2. import marts.definitions + load", _median(marts, "load"), bare_dbt, 1.10),
    ):
        target = f" (goal <= {goal:.2f}x)" if goal else ""
        print(f"{label}: {seconds:.2f} s = {seconds / baseline:.2f}x{target}")


if __name__ == "__main__":
    main()
