"""Load-contract figures (issue 19), each a ratio against the code before the load contract run side by
side on the same data and the same Postgres (its src/ingest_raw taken with `git archive`, its TypeScript
installed from its own lock and built):

1. regional_cpi load time: the new path (`python -m ingest_raw.sources regional_cpi`: the loader
   starting the JSON-stat reader) vs the TypeScript program loading by itself; the fixture (3,840
   cells) and 100 times its regions. Alternating, medians. Then the same as a run starts a load
   (`ingest_raw.launcher.start_loader` from a prepared process: a fork) vs the old program started
   by that process.
2. Peak resident memory (largest process of a load) for a CSV record of 64 MiB minus a few bytes made of
   commas (airlines), the Python loader vs the old one, both under a 3 GiB address-space cap.
3. Peak resident memory for JSON-stat datasets: a 60 MiB one (the largest under the default 64 MiB
   `max_record_bytes`, 10.5 million cells) and a 500 MB one, new path vs the old program.

With `--previous REF`, 1 is also timed against the new path as REF had it (its src/ingest_raw, its
TypeScript built; `shared` is this tree's): what a change to the new path gained.

Run: `uv run python bench/load_contract.py [--runs N] [--baseline REF] [--previous REF]` (node and npm
needed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ingest import report, side_by_side

from devtools import peak_memory, typescript
from devtools.embedded_postgres import embedded_postgres
from ingest_raw import launcher
from ingest_raw.catalog import REGIONAL_CPI
from shared import postgres

ROOT = Path(__file__).resolve().parents[1]
MIB = 1 << 20
CAP = 3 << 30
#: The last commit whose TypeScript program loaded by itself (the next one made it a reader).
BEFORE_THE_CONTRACT = "82ca763^"


def baseline_tree(ref: str, folder: Path) -> Path:
    """`ref`'s src/ingest_raw in `folder`, its TypeScript installed and built; returns the ingest_raw
    member folder."""
    archive = subprocess.run(
        ["git", "archive", ref, "src/ingest_raw"], cwd=ROOT, check=True, capture_output=True
    )
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    member = folder / "src" / "ingest_raw"
    project = member / "typescript"
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=project, check=True, capture_output=True)
    tsc = project / "node_modules" / "typescript" / "bin" / "tsc"
    subprocess.run(["node", str(tsc), "-p", "tsconfig.json"], cwd=project, check=True)
    return member


def jsonstat_file(path: Path, regions: int, value: bytes = b"101.9") -> Path:
    """A regional_cpi-shaped dataset with `regions` regions, written as it goes (no dataset in memory)."""
    fixture = json.loads((typescript.PROJECT / REGIONAL_CPI.input).read_text())
    codes = [f"R{index:06d}" for index in range(regions)]
    region = {"category": {"index": codes, "label": {code: f"Region {code}" for code in codes}}}
    head = fixture | {
        "size": [regions, *fixture["size"][1:]],
        "dimension": fixture["dimension"] | {"region": region},
    }
    head.pop("value")
    head.pop("status", None)
    cells = regions * fixture["size"][1] * fixture["size"][2]
    with path.open("wb") as out:
        out.write(json.dumps(head)[:-1].encode() + b', "value": [')
        block = (value + b",") * 100_000
        for _ in range((cells - 1) // 100_000):
            out.write(block)
        out.write((value + b",") * ((cells - 1) % 100_000) + value + b"]}")
    return path


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """This process's stdout and stderr to /dev/null (a fork's lines), as the other side's are."""
    saved = [os.dup(fd) for fd in (1, 2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in (1, 2):
            os.dup2(devnull, fd)
        yield
    finally:
        for fd, copy in zip((1, 2), saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)
        os.close(devnull)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each side (load time)")
    parser.add_argument("--baseline", default=BEFORE_THE_CONTRACT, help="git ref of the baseline")
    parser.add_argument("--previous", help="also time 1 against the new path of this git ref")
    args = parser.parse_args()
    typescript.build()
    with tempfile.TemporaryDirectory(prefix="bench-contract-") as scratch:
        folder = Path(scratch)
        base = baseline_tree(args.baseline, folder)
        if args.previous:
            (folder / "previous").mkdir()
        previous = args.previous and baseline_tree(args.previous, folder / "previous")
        with embedded_postgres(folder / "pgdata") as settings:
            # PYTHONDONTWRITEBYTECODE out: the loader starts from cached bytecode, as in the image.
            env = {
                k: v
                for k, v in os.environ.items()
                if not k.startswith("DAGSTER_PIPES") and k != "PYTHONDONTWRITEBYTECODE"
            } | settings.to_env()
            base_env = env | {"PYTHONPATH": str(base)}
            previous_env = previous and env | {
                "PYTHONPATH": str(previous),
                "INGEST_TYPESCRIPT_DIR": str(previous / "typescript"),
            }
            loader = list(launcher.LOADER)
            launcher.prepare()  # as the code server's forkserver prepares runs: a run's loads fork
            base_node = ["node", "dist/sources/regional_cpi.js"]

            def drop() -> None:
                with postgres.connect(settings, autocommit=True) as conn:
                    conn.execute("drop table if exists raw.regional_cpi")

            fixture = typescript.PROJECT / REGIONAL_CPI.input
            wider = jsonstat_file(folder / "x100.json", 1600)
            cases = (
                ("1a. regional_cpi, the fixture (3,840 cells)", fixture),
                ("1b. regional_cpi, 100 times the regions (384,000 cells)", wider),
            )
            for title, dataset in cases:
                new = [*loader, "regional_cpi", "--input", str(dataset)]
                old = [*base_node, "--input", str(dataset)]
                measured, baseline = side_by_side(
                    lambda new=new: subprocess.run(new, env=env, check=True, capture_output=True),
                    lambda old=old: subprocess.run(
                        old, cwd=base / "typescript", env=env, check=True, capture_output=True
                    ),
                    args.runs,
                    drop,
                )
                report(title, "loader + reader", measured, "old TypeScript program", baseline, "goal <= 1.0x")
                # As a run starts a load: the loader a fork of the run's process, the old program a new
                # process of it.
                loader_arguments = ["regional_cpi", "--input", str(dataset)]
                with quiet():
                    measured, baseline = side_by_side(
                        lambda arguments=loader_arguments: launcher.start_loader(arguments, env).wait(),
                        lambda old=old: subprocess.run(
                            old, cwd=base / "typescript", env=env, check=True, capture_output=True
                        ),
                        args.runs,
                        drop,
                    )
                report(
                    f"{title}, as a run starts it",
                    "loader (a fork of the run) + reader",
                    measured,
                    "old TypeScript program",
                    baseline,
                    "goal <= 1.0x",
                )
                if previous:
                    measured, baseline = side_by_side(
                        lambda new=new: subprocess.run(new, env=env, check=True, capture_output=True),
                        lambda new=new: subprocess.run(
                            new, env=previous_env, check=True, capture_output=True
                        ),
                        args.runs,
                        drop,
                    )
                    report(
                        f"{title}, against {args.previous}",
                        "now",
                        measured,
                        args.previous,
                        baseline,
                        "lower is better",
                    )

            record = folder / "record.csv"
            with record.open("wb") as out:
                out.write(b"carrier,name\n" + b"," * (64 * MIB - 64) + b"\n")
            new = peak_memory.run([*loader, "airlines", "--input", str(record)], env, 600, address_space=CAP)
            old = peak_memory.run(
                [*loader, "airlines", "--input", str(record)], base_env, 600, address_space=CAP
            )
            print_memory("2. a CSV record of 64 MiB of commas (airlines)", new, "old Python loader", old)

            for title, dataset in (
                ("3a. JSON-stat, 60 MiB (10.5 million cells)", jsonstat_file(folder / "60mib.json", 43_000)),
                ("3b. JSON-stat, 500 MB (87 million cells)", jsonstat_file(folder / "500mb.json", 360_000)),
            ):
                drop()
                new = peak_memory.run([*loader, "regional_cpi", "--input", str(dataset)], env, 900)
                drop()
                old_command = [
                    "sh",
                    "-c",
                    f"cd {base / 'typescript'} && exec node dist/sources/regional_cpi.js --input {dataset}",
                ]
                old = peak_memory.run(old_command, env, 900, address_space=None)
                print_memory(
                    f"{title}, {dataset.stat().st_size / MIB:.0f} MiB", new, "old TypeScript program", old
                )


def print_memory(title: str, new: peak_memory.Measured, baseline: str, old: peak_memory.Measured) -> None:
    def shown(measured: peak_memory.Measured) -> str:
        last = measured.stderr.strip().splitlines()[-1:] or [""]
        peak = measured.peak_rss_bytes / MIB
        return (
            f"{peak:.0f} MiB peak, exit {measured.returncode}, {measured.seconds or 0:.1f} s: {last[0][:160]}"
        )

    print(title)
    print(f"  new path: {shown(new)}\n  {baseline}: {shown(old)}")
    print(f"  ratio {new.peak_rss_bytes / old.peak_rss_bytes:.2f}x  (goal: bounded by a constant <= 256 MiB)")


if __name__ == "__main__":
    main()
