"""Ingest figures, each a ratio against a baseline measured side by side in the same run (medians):

1. the full flights load (336,776 rows) by the source program vs `psql \\copy` of the same CSV into an
   equivalent table (same DDL, same Postgres), both into an empty table and replacing existing rows;
2. the same load launched through Dagster (Pipes) vs the source program standalone;
3. `import ingest_raw.definitions` vs bare `import dagster`.

Run: `uv run python bench/ingest.py [--runs N] [--import-runs N] [--only loads|import]`.
The load figures start their own embedded Postgres in a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import dagster as dg

from devtools.embedded_postgres import embedded_postgres, psql_path
from ingest_raw.catalog import FLIGHTS
from ingest_raw.factory import source_asset
from ingest_raw.launcher import LOADER
from ingest_raw.loader import create_table_sql
from ingest_raw.reader import resolve_package_location
from shared import postgres
from shared.resources import PostgresWarehouse

BASELINE_TABLE = "flights_psql"


def seconds(action: Callable[[], None]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def side_by_side(
    measured: Callable[[], None], baseline: Callable[[], None], runs: int, reset: Callable[[], None]
) -> tuple[float, float]:
    """Medians of `measured` and `baseline`, alternated run by run (so load on the shared machine hits
    both alike), with `reset` before each."""
    timings: tuple[list[float], list[float]] = ([], [])
    for _ in range(runs):
        for action, bucket in ((measured, timings[0]), (baseline, timings[1])):
            reset()
            bucket.append(seconds(action))
    return statistics.median(timings[0]), statistics.median(timings[1])


def run(command: list[str], env: dict[str, str]) -> None:
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def report(title: str, measured: str, value: float, baseline: str, base: float, goal: str) -> None:
    print(title)
    print(f"  {measured}: {value:.3f} s\n  {baseline}: {base:.3f} s\n  ratio {value / base:.2f}x  ({goal})")


def bench_loads(settings: postgres.WarehouseSettings, csv_path: Path, runs: int) -> None:
    env = os.environ | settings.to_env()
    env.pop("DAGSTER_PIPES_CONTEXT", None)
    program = [*LOADER, "flights", "--input", str(csv_path)]
    shipped_zip = [*LOADER, "flights"]
    psql_env = env | settings.libpq_env()
    copy = f"\\copy raw.{BASELINE_TABLE} from '{csv_path}' with (format csv, header true, null 'NA')"
    psql = [psql_path(), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
    psql_copy = [*psql, "-c", copy]
    psql_refresh = [*psql, "-1", "-c", f"delete from raw.{BASELINE_TABLE}", "-c", copy]

    def execute(*statements) -> None:
        with postgres.connect(settings, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)

    def empty_tables() -> None:
        execute(
            "drop table if exists raw.flights",
            f"drop table if exists raw.{BASELINE_TABLE}",
            create_table_sql(replace(FLIGHTS, table=BASELINE_TABLE)),
        )

    def vacuumed_tables() -> None:
        execute("vacuum raw.flights", f"vacuum raw.{BASELINE_TABLE}")

    first = side_by_side(lambda: run(program, env), lambda: run(psql_copy, psql_env), runs, empty_tables)
    report(
        "1a. full flights load into an empty table",
        "source program",
        first[0],
        "psql \\copy",
        first[1],
        "goal <= 1.5x",
    )
    zipped = side_by_side(lambda: run(shipped_zip, env), lambda: run(psql_copy, psql_env), runs, empty_tables)
    report(
        "1b. the same, the source program reading the shipped flights.csv.zip",
        "source program",
        zipped[0],
        "psql \\copy (plain CSV)",
        zipped[1],
        "decompression included",
    )
    empty_tables()
    run(program, env)
    run(psql_copy, psql_env)
    refresh = side_by_side(
        lambda: run(program, env), lambda: run(psql_refresh, psql_env), runs, vacuumed_tables
    )
    report(
        "1c. full flights load replacing the previous rows (one transaction)",
        "source program",
        refresh[0],
        "psql delete + \\copy",
        refresh[1],
        "goal <= 1.5x",
    )

    asset = source_asset(replace(FLIGHTS, input=str(csv_path), partition=None))
    os.environ.update(settings.to_env())  # the resource reads WAREHOUSE_* when the run uses it
    resources = {"warehouse": PostgresWarehouse()}

    def through_dagster() -> None:
        assert dg.materialize([asset], resources=resources).success

    launched = side_by_side(through_dagster, lambda: run(program, env), runs, empty_tables)
    report(
        "2. full flights load launched through Dagster (Pipes, in-process run)",
        "through Dagster",
        launched[0],
        "standalone",
        launched[1],
        "cost of the launch",
    )


def bench_import(runs: int) -> None:
    def importing(module: str) -> Callable[[], None]:
        return lambda: run([sys.executable, "-c", f"import {module}"], dict(os.environ))

    importing("ingest_raw.definitions")()  # warm the file cache for both
    definitions, bare = side_by_side(
        importing("ingest_raw.definitions"), importing("dagster"), runs, lambda: None
    )
    report(
        "3. import cost",
        "import ingest_raw.definitions",
        definitions,
        "import dagster",
        bare,
        "goal <= 1.15x",
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="runs of each side of a load figure")
    parser.add_argument("--import-runs", type=int, default=11, help="runs of each side of the import figure")
    parser.add_argument("--only", choices=["loads", "import"], help="measure only these figures")
    args = parser.parse_args()
    if args.only != "import":
        with tempfile.TemporaryDirectory(prefix="bench-ingest-") as scratch:
            csv_path = Path(scratch) / "flights.csv"
            with zipfile.ZipFile(resolve_package_location(FLIGHTS.input)) as archive:
                csv_path.write_bytes(archive.read("flights.csv"))
            with embedded_postgres(Path(scratch) / "pgdata") as settings:
                bench_loads(settings, csv_path, args.runs)
    if args.only != "loads":
        bench_import(args.import_runs)


if __name__ == "__main__":
    main()
