"""Ingest under hostile input (issue 9), each a ratio against a good load measured side by side (medians):

1. flights (31 MB) with one stray quote at line 2: time to fail vs the good flights load;
2. weather (2.3 MB) with one stray quote at line 1001: time to fail vs the good weather load;
3. a valid 1.2 MB quoted field spanning 100k lines (airlines): load time vs 100k ordinary rows;
and peak RSS (the program's own, see devtools.peak_memory) on inputs streamed through a named pipe:
4. a 200 MB record, a 200 MB header line without a line end, a 60 MB valid record, a 60 MB bad value
   (with the error message's size), against a small ordinary load.

`--before DIR` also runs every case with the `ingest_raw` and `shared` packages of an older commit
(`git archive <commit> src/ingest_raw src/shared | tar -x -C DIR`, put first on PYTHONPATH), whose
program took `--before-input-flag` (default `--location`); runs are killed after `--cap` seconds.

Run: `uv run python bench/ingest_hostile.py [--runs N] [--before DIR] [--cap SECONDS]`.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import statistics
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from devtools import peak_memory
from devtools.embedded_postgres import embedded_postgres
from ingest_raw.catalog import FLIGHTS, WEATHER
from ingest_raw.launcher import LOADER
from ingest_raw.reader import resolve_package_location
from shared import postgres

MB = 1_000_000


def timed(command: list[str], env: dict[str, str], cap: float) -> tuple[float | None, int, int, int]:
    """(seconds or None when killed at `cap`, exit code, peak RSS bytes, stderr bytes)."""
    measured = peak_memory.run(command, env, timeout=cap)
    return measured.seconds, measured.returncode, measured.peak_rss_bytes, len(measured.stderr.encode())


@contextlib.contextmanager
def fifo(folder: Path, parts: Iterable[bytes]) -> Iterator[Path]:
    path = folder / f"stream-{time.monotonic_ns()}.csv"
    os.mkfifo(path)

    def pump() -> None:
        with contextlib.suppress(BrokenPipeError), open(path, "wb", buffering=0) as pipe:
            for part in parts:
                pipe.write(part)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
        thread.join(timeout=10)
        path.unlink()


def streamed(head: bytes, filler: bytes, size: int, tail: bytes = b"") -> Iterator[bytes]:
    yield head
    yield from itertools.repeat(filler, size // len(filler))
    yield tail


def with_stray_quote(data: bytes, line: int) -> bytes:
    lines = data.split(b"\n")
    lines[line - 1] = b'"' + lines[line - 1]
    return b"\n".join(lines)


def describe(seconds: float | None, cap: float) -> str:
    return f"> {cap:.0f} s (killed)" if seconds is None else f"{seconds:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--before", type=Path, help="folder holding src/ of an older commit")
    parser.add_argument("--before-input-flag", default="--location", help="that program's input option")
    parser.add_argument("--cap", type=float, default=180.0, help="seconds before a run is killed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as scratch_name:
        scratch = Path(scratch_name)
        with embedded_postgres(scratch / "pgdata") as settings:
            base_env = os.environ | settings.to_env()
            base_env.pop("DAGSTER_PIPES_CONTEXT", None)
            sides = {"now": base_env}
            if args.before:
                src = args.before.resolve() / "src"
                sides["before"] = base_env | {"PYTHONPATH": f"{src / 'ingest_raw'}:{src / 'shared'}"}

            def program(name: str, *extra: str, side: str = "now") -> list[str]:
                command = [*LOADER, name, *extra]
                flag = args.before_input_flag if side == "before" else "--input"
                return [flag if part == "--input" else part for part in command]

            def reset() -> None:
                with postgres.connect(settings, autocommit=True) as conn:
                    conn.execute("drop table if exists raw.flights, raw.weather, raw.airlines")

            with zipfile.ZipFile(resolve_package_location(FLIGHTS.input)) as archive:
                flights = archive.read("flights.csv")
            weather = Path(resolve_package_location(WEATHER.input)).read_bytes()
            field = "".join(f"line {n}\n" for n in range(100_000))
            files = {
                "flights_good": flights,
                "flights_quote": with_stray_quote(flights, 2),
                "weather_good": weather,
                "weather_quote": with_stray_quote(weather, 1001),
                "airlines_field": f'carrier,name\nAA,"{field}"\n'.encode(),
                "airlines_rows": (
                    "carrier,name\n" + "".join(f"C{n},line {n}\n" for n in range(100_000))
                ).encode(),
            }
            for name, data in files.items():
                (scratch / f"{name}.csv").write_bytes(data)

            def location(name: str) -> str:
                return str(scratch / f"{name}.csv")

            time_cases = [
                ("1. flights, stray quote at line 2: fail", "flights", "flights_quote", "flights_good"),
                ("2. weather, stray quote at line 1001: fail", "weather", "weather_quote", "weather_good"),
                (
                    "3. airlines, one 1.2 MB field of 100k lines: load",
                    "airlines",
                    "airlines_field",
                    "airlines_rows",
                ),
            ]
            for title, source, hostile, good in time_cases:
                extra = ("--partition", "2013-01-01") if source == "flights" else ()
                for side, env in sides.items():
                    measured, baseline = [], []
                    for _ in range(args.runs):
                        reset()
                        measured.append(
                            timed(
                                program(source, *extra, "--input", location(hostile), side=side),
                                env,
                                args.cap,
                            )
                        )
                        reset()
                        baseline.append(
                            timed(
                                program(source, *extra, "--input", location(good), side=side), env, args.cap
                            )
                        )
                        if measured[-1][0] is None:
                            break
                    slow = [m[0] for m in measured]
                    value = None if None in slow else statistics.median(slow)
                    base = statistics.median(b[0] for b in baseline)
                    ratio = "" if value is None else f"ratio {value / base:.2f}x"
                    codes = sorted({m[1] for m in measured})
                    print(
                        f"{title} [{side}]: {describe(value, args.cap)} (exit {codes}) "
                        f"vs good load {base:.2f} s {ratio}"
                    )

            memory_cases = [
                ("4a. 200 MB record", b"carrier,name\nAA,", 200 * MB, b"\n"),
                ("4b. 200 MB header line, no line end", b"carrier,", 200 * MB, b""),
                ("4c. 60 MB valid record", b"carrier,name\nAA,", 60 * MB, b"\n"),
            ]
            for side, env in sides.items():
                reset()
                small = timed(program("airlines"), env, args.cap)
                print(f"4. baseline: shipped airlines load [{side}]: peak RSS {small[2] / MB:.0f} MB")
                for title, head, size, tail in memory_cases:
                    reset()
                    with fifo(scratch, streamed(head, b"m" * MB, size, tail)) as path:
                        seconds, code, rss, message = timed(
                            program("airlines", "--input", str(path), side=side), env, args.cap
                        )
                    print(
                        f"{title} [{side}]: exit {code} in {describe(seconds, args.cap)}, "
                        f"peak RSS {rss / MB:.0f} MB ({rss / small[2]:.1f}x baseline), stderr {message} bytes"
                    )
                reset()
                head = (
                    b"origin,year,month,day,hour,temp,dewp,humid,wind_dir,wind_speed,wind_gust,precip,pressure,"
                    b"visib,time_hour\nEWR,2013,1,1,1,"
                )
                tail = b",26.06,59.37,270,10.35702,NA,0,1012,10,2013-01-01T06:00:00Z\n"
                with fifo(scratch, streamed(head, b"x" * MB, 60 * MB, tail)) as path:
                    seconds, code, rss, message = timed(
                        program("weather", "--input", str(path), side=side), env, args.cap
                    )
                print(
                    f"4d. 60 MB bad value [{side}]: exit {code} in {describe(seconds, args.cap)}, "
                    f"peak RSS {rss / MB:.0f} MB, error message {message} bytes"
                )


if __name__ == "__main__":
    main()
