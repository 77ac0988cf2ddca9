"""Marts figures, each a ratio against a baseline measured side by side in the same run (medians):

1. every dbt model and test materialized through Dagster (dagster-dbt, in a warm process, as a run
   worker executes its step) vs plain `dbt build` of the same selections, same database: the monthly
   models for all of 2013, then the whole-table models;
2. the same through a fresh process per run (`dagster asset materialize`, as a launched run starts)
   vs the same plain `dbt build`s;
3. `import marts.definitions` plus loading its lazy definitions vs `import dagster, dagster_dbt`.

Run: `uv run python bench/dbt_overhead.py [--runs N]`. Starts its own embedded Postgres in a temporary
folder and loads raw with the ingest source programs.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from devtools import typescript
from devtools.embedded_postgres import embedded_postgres
from ingest_raw.catalog import SOURCES
from ingest_raw.launcher import source_command
from marts.assets import WINDOW_ENV
from marts.build import build_definitions
from marts.project import PROJECT_DIR, flights_project
from shared import postgres

BIN = Path(sys.executable).parent
WHOLE_YEAR = dict(zip(WINDOW_ENV, ("2013-01-01", "2014-01-01"), strict=True))
MONTHLY_KEYS = "marts/fct_flights"
PARTITION_RANGE = "2013-01-01...2013-12-01"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
IMPORT_PROBES = {
    "marts": "import marts.definitions as m; m.defs()",
    "baseline": "import dagster, dagster_dbt",
}


def seconds(action: Callable[[], None]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def alternate(cases: dict[str, Callable[[], float]], runs: int) -> dict[str, float]:
    """Median of each case's figure; cases alternate run by run so load on the shared machine hits
    all of them alike."""
    values: dict[str, list[float]] = {name: [] for name in cases}
    for index in range(runs):
        for name in list(cases) if index % 2 == 0 else list(reversed(cases)):
            values[name].append(cases[name]())
    return {name: statistics.median(figures) for name, figures in values.items()}


def timed(action: Callable[[], None]) -> Callable[[], float]:
    return lambda: seconds(action)


def run(command: list[str], env: dict[str, str], cwd: Path | None = None) -> None:
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


def report(title: str, measured: float, baseline: float, labels: tuple[str, str]) -> None:
    figures = f"{labels[0]}: {measured:.2f} s   {labels[1]}: {baseline:.2f} s"
    print(f"{title}\n  {figures}   ratio {measured / baseline:.2f}x")


def import_seconds(probe: str, env: dict[str, str]) -> float:
    code = f"import time; t = time.perf_counter(); {probe}; print(time.perf_counter() - t)"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    if result.returncode != 0:
        raise SystemExit(f"import probe failed: {result.stderr[-3000:]}")
    return float(result.stdout.strip().splitlines()[-1])


def use_postgres_instance(home: Path, settings: postgres.WarehouseSettings) -> None:
    """Dagster's storage in Postgres, as in production (compose), on the same server: a database of
    its own. SQLite storage would add its own per-event cost to the Dagster side."""
    with postgres.connect(settings.replace(dbname="postgres"), autocommit=True) as admin:
        admin.execute("create database dagster")
    url = f"postgresql+psycopg2://{settings.user}@/dagster?host={settings.host}&port={settings.port}"
    home.mkdir()
    config = f"storage:\n  postgres:\n    postgres_url: '{url}'\ntelemetry:\n  enabled: false\n"
    (home / "dagster.yaml").write_text(config)


def build_figures(runs: int) -> dict[str, float]:
    """Median seconds of plain dbt, Dagster in a warm process, Dagster in a fresh process per run."""
    with (
        tempfile.TemporaryDirectory(prefix="bench-marts-") as scratch,
        embedded_postgres(Path(scratch) / "pgdata") as settings,
    ):
        env = os.environ | settings.to_env()
        env |= {
            "DAGSTER_HOME": str(Path(scratch) / "dagster_home"),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DBT_LOG_PATH": str(Path(scratch) / "dbt-logs"),  # nothing written inside the package
        }
        use_postgres_instance(Path(env["DAGSTER_HOME"]), settings)
        os.environ.update(env)
        print("loading raw with the ingest source programs ...", flush=True)
        for source in SOURCES.values():
            run(source_command(source), env, cwd=typescript.build() if source.program else None)
        print("preparing the dbt project (parsed only if its files changed) ...", flush=True)
        project = flights_project()

        dbt = [
            str(BIN / "dbt"),
            "build",
            "--project-dir",
            str(PROJECT_DIR),
            "--profiles-dir",
            str(PROJECT_DIR),
        ]
        # Each selection keeps its own target folder, so plain dbt reuses its partial parse run after
        # run (the location seeds each invocation's fresh folder with the prepared state).
        target = Path(scratch) / "target"
        plain_monthly = [*dbt, "--select", "tag:monthly", "--target-path", str(target / "bench-monthly")]
        plain_whole = [*dbt, "--exclude", "tag:monthly", "--target-path", str(target / "bench-whole")]
        defs = build_definitions(project)
        monthly = [assets for assets in defs.assets if assets.partitions_def is not None]
        whole = [assets for assets in defs.assets if assets.partitions_def is None]
        whole_keys = ",".join(key.to_user_string() for assets in whole for key in assets.keys)
        range_tags = {
            "dagster/asset_partition_range_start": "2013-01-01",
            "dagster/asset_partition_range_end": "2013-12-01",
        }
        instance = dg.DagsterInstance.get()
        cli = [str(BIN / "dagster"), "asset", "materialize", "-m", "marts.definitions"]

        def plain() -> None:
            run(plain_monthly, env | WHOLE_YEAR)  # the window the Dagster side's range run sets
            run(plain_whole, env)

        def in_process() -> None:
            for assets, tags in ((monthly, range_tags), (whole, {})):
                with contextlib.redirect_stdout(io.StringIO()):  # dbt's own output, as a run captures it
                    result = dg.materialize(
                        assets, instance=instance, resources=defs.resources, tags=tags, run_config=QUIET
                    )
                if not result.success:
                    raise SystemExit("a Dagster materialization failed")

        def fresh_process() -> None:
            run([*cli, "--select", MONTHLY_KEYS, "--partition-range", PARTITION_RANGE], env)
            run([*cli, "--select", whole_keys], env)

        print(
            "warming up (creates every table, so all timed builds take the incremental path) ...", flush=True
        )
        run([*dbt, "--target-path", str(target / "warm-up")], env)
        plain()
        return alternate(
            {"plain": timed(plain), "in_process": timed(in_process), "fresh_process": timed(fresh_process)},
            runs,
        )


def import_figure(runs: int) -> dict[str, float]:
    """Median import seconds, each in a fresh interpreter. With bytecode caching on, as in the images
    (compile-bytecode): with PYTHONDONTWRITEBYTECODE set, compiling sources would dominate."""
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    for probe in IMPORT_PROBES.values():
        import_seconds(probe, env)  # writes the bytecode caches once
    return alternate(
        {name: functools.partial(import_seconds, probe, env) for name, probe in IMPORT_PROBES.items()}, runs
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--imports-only", action="store_true", help="only figure 3 (no warehouse needed)")
    args = parser.parse_args()

    print(f"medians of {args.runs} runs each, alternated")
    if not args.imports_only:
        medians = build_figures(args.runs)
        report(
            "1. all dbt assets: Dagster (warm process) vs plain dbt build",
            medians["in_process"],
            medians["plain"],
            ("dagster", "dbt"),
        )
        report(
            "2. all dbt assets: Dagster (fresh process per run) vs plain dbt build",
            medians["fresh_process"],
            medians["plain"],
            ("dagster", "dbt"),
        )
    imports = import_figure(max(args.runs, 5))
    report(
        "3. import marts.definitions + load defs vs import dagster, dagster_dbt",
        imports["marts"],
        imports["baseline"],
        ("marts", "baseline"),
    )


if __name__ == "__main__":
    main()
