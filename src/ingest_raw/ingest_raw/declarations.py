"""What a source is: a small declaration that the factory turns into an asset and the source program loads.

Free of Dagster (source programs import it) and of I/O (definitions import it): checking a declaration
only looks at its strings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from shared.freshness import Freshness, FreshnessError

#: Postgres types a column may be declared with; anything else is rejected when definitions load.
COLUMN_TYPES = frozenset(
    {
        "text",
        "smallint",
        "integer",
        "bigint",
        "double precision",
        "numeric",
        "boolean",
        "date",
        "timestamp",
        "timestamptz",
    }
)

#: The warehouse schema every source loads into.
SCHEMA = "raw"
#: The Pipes extra holding the declaration (`Source.to_dict()`): a program loads exactly what was declared.
DECLARATION_EXTRA = "source"

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")
#: A Kubernetes CPU or memory quantity: 500m, 1, 1.5, 512Mi, 2Gi.
_QUANTITY = re.compile(r"\d+(\.\d+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?")


def is_url(location: str) -> bool:
    """An http(s) URL (the scheme in any case, as URLs allow), which is downloaded, not opened."""
    return location[:8].lower().startswith(("http://", "https://"))


class DeclarationError(ValueError):
    """A source declaration that cannot be loaded safely."""


def check_identifier(source: str, what: str, name: str) -> str:
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        raise DeclarationError(
            f"source {source!r}: unsafe identifier {name!r} for {what}: use 1-63 lowercase letters, "
            f"digits and underscores, not starting with a digit"
        )
    return name


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str = ""


@dataclass(frozen=True)
class CsvFormat:
    """How to read the input. Compression follows the input's suffix (.zip with one member, .gz).

    Unquoted fields equal to one of `null_markers` are NULL; a quoted field is always a value, so a real
    string "NA" can still be written quoted. The empty marker "" makes empty unquoted fields NULL.
    """

    delimiter: str = ","
    quote: str = '"'
    null_markers: tuple[str, ...] = ("",)
    encoding: str = "UTF8"


@dataclass(frozen=True)
class JsonStatFormat:
    """A JSON-stat 2.0 dataset: one row per cell, a column per dimension (its category codes), optional
    `<dimension>_label` columns, `value` and optional `status`. Parsed by a reader program, which
    writes the rows the loader loads."""


@dataclass(frozen=True)
class Program:
    """A reader program: it reads and parses the input and writes CSV rows on its standard output, which
    the loader (`python -m ingest_raw.sources`) loads. `command` (argv, no shell) runs in the TypeScript
    project folder with `--input LOCATION --timeout SECONDS` added and the declaration in the
    INGEST_SOURCE variable (see docs/load-contract.md); `kind` is shown on the asset (e.g. "typescript")."""

    command: tuple[str, ...]
    kind: str


@dataclass(frozen=True)
class MonthlyPartition:
    """One partition per month from `start` (included) to `end` (excluded), keys "YYYY-MM-01"; the rows of
    a partition are those whose `year_column` and `month_column` hold that month."""

    year_column: str
    month_column: str
    start: str
    end: str

    @property
    def columns(self) -> tuple[str, str]:
        return (self.year_column, self.month_column)

    def values(self, partition_key: str) -> tuple[int, int]:
        match = re.fullmatch(r"(\d{4})-(0[1-9]|1[0-2])-01", partition_key)
        if not match:
            raise DeclarationError(f"partition key {partition_key!r} is not a month start like 2013-01-01")
        if not self.start <= partition_key < self.end:
            raise DeclarationError(
                f"partition key {partition_key!r} is outside the declared partitions, {self.start} "
                f"(included) to {self.end} (excluded)"
            )
        return int(match[1]), int(match[2])


def describe_partitions(partition_keys: Sequence[str]) -> str:
    """ "2013-03-01", or "2013-01-01 … 2013-12-01 (12 partitions)" for several."""
    if len(partition_keys) == 1:
        return partition_keys[0]
    return f"{partition_keys[0]} … {partition_keys[-1]} ({len(partition_keys)} partitions)"


@dataclass(frozen=True)
class RunResources:
    """CPU and memory for a run of one source where runs get a container of their own and the
    orchestrator reserves room for it (Kubernetes: the run pod's requests and limits). Quantities
    as Kubernetes writes them: "500m", "2", "512Mi", "4Gi"."""

    cpu_request: str
    memory_request: str
    cpu_limit: str
    memory_limit: str

    def check(self, source: str) -> None:
        for what, quantity in vars(self).items():
            if not isinstance(quantity, str) or not _QUANTITY.fullmatch(quantity):
                raise DeclarationError(
                    f"source {source!r}: run_resources {what} {quantity!r} is not a Kubernetes quantity "
                    f"such as 500m, 2, 512Mi or 4Gi"
                )


#: The longest wait a declaration may ask for: 2^31 - 1 ms, the longest timer a reader program in
#: JavaScript can set (a longer one fires at once: a download "timed out" before it began).
MAX_SECONDS = 2_147_483.0


@dataclass(frozen=True)
class Source:
    """One source table. `input` is an absolute path, an http(s) URL or `package:<module>/<file>` (a
    data file shipped inside an installed package, found without importing it); a reader program's
    may be relative to its project folder."""

    name: str
    input: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    table: str = ""
    description: str = ""
    format: CsvFormat | JsonStatFormat = field(default_factory=CsvFormat)
    partition: MonthlyPartition | None = None
    allow_empty: bool = False
    #: Rows with a value of the wrong type that the load may skip (and report) instead of failing.
    #: Needs Postgres 17+ (COPY ON_ERROR ignore); 0 means any bad row fails the load.
    max_rejected_rows: int = 0
    #: Largest accepted relative change of the row count against the previous load (0.5 = ±50%).
    max_row_count_change: float = 0.5
    owners: tuple[str, ...] = ()
    #: Cron schedule that keeps the table fresh (created stopped); None for no schedule.
    cron_schedule: str | None = None
    #: Seconds an HTTP read may stall before the load fails as transient.
    timeout_seconds: float = 60.0
    #: Seconds a whole download (or a reader program) may take before the load fails as transient.
    deadline_seconds: float = 1800.0
    #: Hosts an HTTP redirect may lead to besides the input's own (http and https only).
    redirect_hosts: tuple[str, ...] = ()
    #: Longest record (line, or lines of one quoted field) accepted; bounds the memory a load may use.
    max_record_bytes: int = 64 << 20
    #: Seconds a load waits for another load of the same rows (or any lock it needs) before it fails as
    #: transient, naming who holds it; the retry policy then takes over.
    lock_timeout_seconds: float = 60.0
    #: The reader program whose rows the loader loads; None when the loader reads the (CSV) input itself.
    program: Program | None = None
    #: Room a run of this source needs beyond the deployment's default run resources; None for the
    #: default (its location's `resources` in deploy/helm/values.yaml).
    run_resources: RunResources | None = None
    #: How fresh the table must be (a maximum lag or a daily deadline); Dagster evaluates it and the
    #: alerts watcher reports it. None for no freshness policy.
    freshness: Freshness | None = None

    def __post_init__(self) -> None:
        check_identifier(self.name, "source name", self.name)
        object.__setattr__(self, "table", self.table or self.name)
        check_identifier(self.name, "table", self.table)
        if not self.columns:
            raise DeclarationError(f"source {self.name!r}: no columns declared")
        names = [check_identifier(self.name, "column", column.name) for column in self.columns]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise DeclarationError(f"source {self.name!r}: column(s) declared twice: {', '.join(duplicates)}")
        for column in self.columns:
            if column.type not in COLUMN_TYPES:
                raise DeclarationError(
                    f"source {self.name!r}: column {column.name!r} has type {column.type!r}; "
                    f"expected one of {', '.join(sorted(COLUMN_TYPES))}"
                )
        referenced = {
            "primary key": self.primary_key,
            "partition": self.partition.columns if self.partition else (),
        }
        for what, columns in referenced.items():
            unknown = [name for name in columns if name not in names]
            if unknown:
                raise DeclarationError(
                    f"source {self.name!r}: {what} names undeclared column(s) {', '.join(map(repr, unknown))}"
                )
        if isinstance(self.format, CsvFormat) and (
            len(self.format.delimiter) != 1 or len(self.format.quote) != 1
        ):
            raise DeclarationError(f"source {self.name!r}: delimiter and quote must be one character each")
        waits = (self.lock_timeout_seconds, self.timeout_seconds, self.deadline_seconds)
        if self.max_record_bytes < 1 or not all(0 < seconds <= MAX_SECONDS for seconds in waits):  # NaN too
            raise DeclarationError(
                f"source {self.name!r}: max_record_bytes, lock_timeout_seconds, timeout_seconds and "
                f"deadline_seconds must be > 0, the seconds at most {MAX_SECONDS:,.0f} (about 24.8 days); "
                f"got {self.max_record_bytes}, {', '.join(f'{seconds:g}' for seconds in waits)}"
            )
        if isinstance(self.format, JsonStatFormat) and self.program is None:
            raise DeclarationError(
                f"source {self.name!r}: JSON-stat is read by a program of its own; declare one"
            )
        if self.program is not None and not self.program.command:
            raise DeclarationError(f"source {self.name!r}: the program has an empty command")
        if not self.input:
            raise DeclarationError(f"source {self.name!r}: no input")
        if self.program is None and not (is_url(self.input) or self.input.startswith(("package:", "/"))):
            raise DeclarationError(
                f"source {self.name!r}: input {self.input!r} is a relative path, which names one folder to"
                " the command line and another to dev-local's code servers: give an absolute path, an"
                " http(s) URL or package:<module>/<file>"
            )
        if self.run_resources is not None:
            self.run_resources.check(self.name)
        if self.freshness is not None:
            try:
                self.freshness.check(f"source {self.name!r}")
            except FreshnessError as error:
                raise DeclarationError(str(error)) from error

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    def column(self, name: str) -> Column:
        return next(column for column in self.columns if column.name == name)

    def to_dict(self) -> dict[str, Any]:
        """The declaration as JSON values: what the launcher hands a source program (Pipes extras)."""
        values = asdict(self) | {"format": {"kind": _format_kind(self.format), **asdict(self.format)}}
        return json.loads(json.dumps(values))  # tuples become lists, as the program receives them

    @classmethod
    def from_dict(cls, data: Any) -> Source:
        """The inverse of `to_dict`; anything else raises DeclarationError naming what is wrong."""
        try:
            values = {item.name: data[item.name] for item in fields(cls) if item.name in data}
            unknown = sorted(set(data) - {item.name for item in fields(cls)})
            if unknown:
                raise DeclarationError(f"unknown field(s) {', '.join(unknown)}")
            values["columns"] = tuple(Column(**column) for column in data["columns"])
            for name in ("primary_key", "owners", "redirect_hosts"):
                if name in values:
                    values[name] = tuple(values[name])
            if "format" in values:
                spec = dict(values["format"])
                kind = spec.pop("kind")
                if kind not in ("csv", "json-stat"):
                    raise DeclarationError(f"unknown format kind {kind!r}; expected csv or json-stat")
                values["format"] = (
                    CsvFormat(**spec | {"null_markers": tuple(spec.get("null_markers", ("",)))})
                    if kind == "csv"
                    else JsonStatFormat(**spec)
                )
            if values.get("partition") is not None:
                values["partition"] = MonthlyPartition(**values["partition"])
            if values.get("run_resources") is not None:
                values["run_resources"] = RunResources(**values["run_resources"])
            if values.get("freshness") is not None:
                declared = {key: value for key, value in values["freshness"].items() if value is not None}
                values["freshness"] = Freshness.from_dict(declared, f"source {data['name']!r}")
            if values.get("program") is not None:
                program = values["program"]
                values["program"] = Program(tuple(program["command"]), program["kind"])
            return cls(**values)
        except DeclarationError:
            raise
        except FreshnessError as error:
            raise DeclarationError(str(error)) from error
        except (KeyError, TypeError, AttributeError) as error:
            raise DeclarationError(
                f"not a source declaration: {error!r} in {json.dumps(data)[:200]}"
            ) from error


def _format_kind(fmt: CsvFormat | JsonStatFormat) -> str:
    return "csv" if isinstance(fmt, CsvFormat) else "json-stat"
