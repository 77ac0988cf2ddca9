"""TypeScript source figure, a ratio against a baseline measured side by side (alternating, medians):
the load of a JSON-stat dataset (`python -m ingest_raw.sources regional_cpi --input`: the loader and
the TypeScript reader whose rows it loads)
vs `psql \\copy` of the same rows as CSV into an equivalent table (same DDL, same Postgres), both
into an empty table: the shipped fixture (3,840 cells), then the same dataset with 100 times the regions.

Run: `uv run python bench/typescript_load.py [--runs N]` (node and `npm ci` needed; it builds dist/).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

from ingest import report, run, side_by_side

from devtools import typescript
from devtools.embedded_postgres import embedded_postgres, psql_path
from ingest_raw.catalog import REGIONAL_CPI
from ingest_raw.launcher import source_command
from ingest_raw.loader import create_table_sql
from shared import postgres

BASELINE_TABLE = "regional_cpi_psql"


def scaled(dataset: dict, factor: int) -> dict:
    """The dataset with `factor` times the regions (each region's cells repeated under new codes)."""
    regions = dataset["dimension"]["region"]["category"]
    codes = [f"{code}_{copy}" for copy in range(factor) for code in regions["index"]]
    labels = {f"{code}_{copy}": regions["label"][code] for copy in range(factor) for code in regions["index"]}
    region = {"category": {"index": codes, "label": labels}}
    return dataset | {
        "size": [len(codes), *dataset["size"][1:]],
        "dimension": dataset["dimension"] | {"region": region},
        "value": dataset["value"] * factor,
        "status": None,
    }


def bench(
    settings: postgres.WarehouseSettings, dataset_path: Path, csv_path: Path, runs: int, title: str
) -> None:
    project = typescript.PROJECT
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_PIPES")}
    env |= settings.to_env()
    program = [*source_command(REGIONAL_CPI), "--input", str(dataset_path)]
    psql_env = env | settings.libpq_env()
    psql = [psql_path(), "-X", "-q", "-v", "ON_ERROR_STOP=1"]

    def execute(*statements) -> None:
        with postgres.connect(settings, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)

    def empty_tables() -> None:
        execute(
            "drop table if exists raw.regional_cpi",
            f"drop table if exists raw.{BASELINE_TABLE}",
            create_table_sql(replace(REGIONAL_CPI, table=BASELINE_TABLE)),
        )

    # The same rows as CSV, exported from what the program loaded.
    empty_tables()
    subprocess.run(program, cwd=project, env=env, check=True, capture_output=True)
    subprocess.run(
        [*psql, "-c", f"\\copy raw.regional_cpi to '{csv_path}' with (format csv)"], env=psql_env, check=True
    )
    copy = [*psql, "-c", f"\\copy raw.{BASELINE_TABLE} from '{csv_path}' with (format csv)"]

    def load() -> None:
        subprocess.run(program, cwd=project, env=env, check=True, capture_output=True)

    measured, base = side_by_side(load, lambda: run(copy, psql_env), runs, empty_tables)
    report(title, "loader + TypeScript reader", measured, "psql \\copy", base, "same rows, empty table")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7, help="runs of each side")
    args = parser.parse_args()
    typescript.build()
    dataset = json.loads((typescript.PROJECT / REGIONAL_CPI.input).read_text())
    with tempfile.TemporaryDirectory(prefix="bench-typescript-") as scratch:
        folder = Path(scratch)
        big = folder / "regional_cpi_x100.json"
        big.write_text(json.dumps(scaled(dataset, 100)))
        with embedded_postgres(folder / "pgdata") as settings:
            fixture = typescript.PROJECT / REGIONAL_CPI.input
            bench(settings, fixture, folder / "fixture.csv", args.runs, "1. the fixture, 3,840 cells")
            bench(settings, big, folder / "x100.csv", args.runs, "2. 100 times the regions, 384,000 cells")


if __name__ == "__main__":
    main()
