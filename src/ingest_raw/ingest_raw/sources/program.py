"""Command line and Pipes reporting around `ingest_raw.loader.load`."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from ingest_raw.catalog import SOURCES
from ingest_raw.checks import PREVIOUS_ROWS, ROWS_LOADED, ROWS_REJECTED
from ingest_raw.declarations import DECLARATION_EXTRA, DeclarationError, Source, describe_partitions
from ingest_raw.errors import EXIT_INTERRUPTED, EXIT_PERMANENT, LoadError, interrupted_before_the_load
from ingest_raw.reader import open_source
from shared.postgres import WarehouseNotConfigured, WarehouseSettings
from shared.signals import STOP_SIGNALS, stop_on_signals

if TYPE_CHECKING:
    from ingest_raw.loader import LoadReport

#: Set by Dagster when it launches this program; its absence means "run standalone".
PIPES_CONTEXT_ENV = "DAGSTER_PIPES_CONTEXT"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m ingest_raw.sources",
        description="Load one source into the warehouse table raw.<table> (WAREHOUSE_* variables).",
    )
    parser.add_argument("source", help=f"the source to load: one of {', '.join(sorted(SOURCES))}")
    parser.add_argument(
        "--partition",
        action="append",
        default=[],
        help="load only this partition, e.g. 2013-01-01 (partitioned sources); repeat it to load several "
        "in one pass and one transaction",
    )
    parser.add_argument(
        "--input",
        help="read this path or http(s) URL instead of the declared input; - reads CSV rows (with a header "
        "naming the columns) from standard input, e.g. piped from a reader program",
    )
    parser.add_argument("--timeout", type=float, help="seconds an HTTP read may stall (default: declared)")
    parser.add_argument(
        "--lock-timeout",
        type=float,
        help="seconds to wait for another load of the same rows (default: declared)",
    )
    parser.add_argument("--max-record-bytes", type=int, help="longest record accepted (default: declared)")
    parser.add_argument(
        "--deadline", type=float, help="seconds a download may take in all (default: declared)"
    )
    return parser.parse_args(argv)


def declared_source(args: argparse.Namespace, pipes) -> Source:
    """The declaration Dagster handed over (Pipes extras), else the catalog's, with the limits given on
    the command line."""
    source = _declaration(args.source, pipes)
    if args.input is not None and not args.input.strip():  # e.g. --input "$UNSET": not the declared input
        raise DeclarationError(f"source {source.name!r}: --input is empty; give a path, an http(s) URL or -")
    if args.lock_timeout is not None:
        source = replace(source, lock_timeout_seconds=args.lock_timeout)
    if args.max_record_bytes is not None:
        source = replace(source, max_record_bytes=args.max_record_bytes)
    if args.deadline is not None:
        source = replace(source, deadline_seconds=args.deadline)
    if args.timeout is not None:
        source = replace(source, timeout_seconds=args.timeout)
    return source


def run(argv: Sequence[str]) -> int:
    """The program, as `python -m ingest_raw.sources` and a fork of a process that has it imported
    (`ingest_raw.launcher`) run it: every stop signal raises KeyboardInterrupt; one before the load
    began ends it with exit 130."""
    stop_on_signals()
    try:
        return main(argv)
    except KeyboardInterrupt:
        return interrupted_before_the_load()


def main(argv: Sequence[str]) -> int:
    """Run one load; the stop signals raise KeyboardInterrupt (set up by `run`, by `__main__` before
    its imports)."""
    args = parse_args(argv)
    with _pipes() as pipes:
        report = None
        try:
            try:
                source = declared_source(args, pipes)
                settings = WarehouseSettings.from_env()
                with open_source(source, args.input) as stream:
                    # psycopg and the loader are imported while the reader program starts.
                    from ingest_raw.loader import load

                    _quiet_psycopg()

                    report = load(source, settings, stream, partition_keys=args.partition)
            except (LoadError, WarehouseNotConfigured, DeclarationError) as error:
                code = error.exit_code if isinstance(error, LoadError) else EXIT_PERMANENT
                named = isinstance(error, DeclarationError)  # a declaration's errors name it already
                message = one_line(str(error) if named else f"source {args.source!r}: {error}")
                print(f"ingest error: {message}", file=sys.stderr, flush=True)
                if pipes:
                    pipes.report_custom_message({"error": message, "exit_code": code})
                return code
            _ignore_stops()
        except KeyboardInterrupt:
            if report is None:
                print(f"ingest: {args.source} interrupted, rolled back", file=sys.stderr, flush=True)
                return EXIT_INTERRUPTED
            report = replace(report, interrupted_after_commit=True)
            _ignore_stops()
        if report.interrupted_after_commit:
            print(
                f"ingest: {source.name} interrupted while committing; the commit had gone through",
                file=sys.stderr,
                flush=True,
            )
        print(_summary(report), file=sys.stderr, flush=True)
        if pipes:
            report_to_dagster(pipes, source, report)
    return 0


def _quiet_psycopg() -> None:
    """psycopg logs what it ignores while failing ("error ignored terminating <psycopg.Copy>…"); with no
    handler configured Python prints it on stderr beside the one error line. The error says it all."""
    import logging

    logging.getLogger("psycopg").addHandler(logging.NullHandler())


def one_line(message: str) -> str:
    """The error on one line: libpq, urllib and servers write messages over several lines (a lost
    connection's "server closed the connection unexpectedly\\n\\tThis probably means…")."""
    return " ".join(message.split())


def _declaration(name: str, pipes) -> Source:
    """The declaration Dagster handed over (Pipes extras), else the catalog's."""
    if pipes is not None and DECLARATION_EXTRA in pipes.extras:
        source = Source.from_dict(pipes.extras[DECLARATION_EXTRA])
    elif name in SOURCES:
        source = SOURCES[name]
    else:
        raise DeclarationError(
            f"no source {name!r} in the catalog; expected one of {', '.join(sorted(SOURCES))}"
        )
    if source.name != name:
        raise DeclarationError(
            f"asked for source {name!r} but the declaration handed over is {source.name!r}"
        )
    return source


def _ignore_stops() -> None:
    """The load is done: a stop asked for now waits the few milliseconds the report takes."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


@contextlib.contextmanager
def _pipes():
    """The Pipes context under Dagster, else None (the mock context Pipes offers cannot hold values)."""
    if PIPES_CONTEXT_ENV not in os.environ:
        yield None
        return
    from dagster_pipes import open_dagster_pipes

    with open_dagster_pipes() as pipes:
        yield pipes


def _summary(report: LoadReport) -> str:
    scope = f" partition {describe_partitions(report.partition_keys)}" if report.partition_keys else ""
    rejected = f", {report.rows_rejected} rejected" if report.rows_rejected else ""
    return (
        f"ingest: loaded {report.table}{scope}: {report.rows_loaded} rows{rejected} "
        f"(previously {report.previous_rows}) from {report.input} in {report.seconds:.2f} s, "
        f"sha256 {report.checksum[:12]}"
    )


def _partition_metadata(report: LoadReport) -> dict:
    """What a partitioned load read and wrote (Dagster records it on each partition of the run). The
    input is one file for every partition (a CSV has no index to seek a month in), so the whole of it
    is read once and the other partitions' rows skipped; `input_scope` says so with the counts."""
    if not report.partition_keys:
        return {}
    scope = (
        f"the whole input (one file holding every partition): {report.input_lines:,} lines read"
        f" for {report.rows_loaded:,} rows of partition {describe_partitions(report.partition_keys)}"
    )
    return {
        "partition_rows": {"raw_value": dict(report.partition_rows), "type": "json"},
        "input_scope": {"raw_value": scope, "type": "text"},
    }


def report_to_dagster(pipes, source: Source, report: LoadReport) -> None:
    key_columns = set(source.primary_key)
    schema = {
        "columns": [
            {
                "name": column.name,
                "type": column.type,
                "description": column.description or None,
                "constraints": {"nullable": column.name not in key_columns, "unique": False},
            }
            for column in source.columns
        ]
    }
    pipes.report_asset_materialization(
        metadata={
            # The table's rows, also for one partition: what a reader of raw.<table> finds.
            "dagster/row_count": {"raw_value": report.table_rows, "type": "int"},
            **_partition_metadata(report),
            "dagster/column_schema": {"raw_value": schema, "type": "table_schema"},
            "dagster/table_name": {"raw_value": report.table, "type": "text"},
            ROWS_LOADED: {"raw_value": report.rows_loaded, "type": "int"},
            ROWS_REJECTED: {"raw_value": report.rows_rejected, "type": "int"},
            "rejected_rows_sample": {"raw_value": "\n".join(report.rejections), "type": "text"},
            PREVIOUS_ROWS: {"raw_value": report.previous_rows, "type": "int"},
            "input_lines": {"raw_value": report.input_lines, "type": "int"},
            "bytes_read": {"raw_value": report.bytes_read, "type": "int"},
            "content_bytes": {"raw_value": report.content_bytes, "type": "int"},
            "load_seconds": {"raw_value": round(report.seconds, 3), "type": "float"},
            "input_sha256": {"raw_value": report.checksum, "type": "text"},
            "input": {"raw_value": report.input, "type": "text"},
        },
        data_version=report.checksum,
    )
