"""The JSON-stat reader (src/ingest_raw/typescript) behind the one loader: what it refuses and where it
says the problem is, and regional_cpi through Dagster. The load contract itself is test_contract.py's."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from devtools import typescript
from ingest_raw.catalog import SOURCES
from ingest_raw.errors import EXIT_PERMANENT
from ingest_raw.reader import program_dir
from shared import postgres
from tests.ingest.ingest_helpers import (
    check_results,
    events_of,
    failure_message,
    fingerprint,
    materialize,
    run_source,
)

pytestmark = pytest.mark.skipif(typescript.node() is None, reason="node is not installed")

SOURCE = SOURCES["regional_cpi"]


@pytest.fixture(scope="module")
def dataset() -> dict:
    typescript.build()
    return json.loads((program_dir() / SOURCE.input).read_text())


def cases(dataset: dict, folder: Path) -> list[tuple[bytes, str]]:
    values = list(dataset["value"])
    text = json.dumps(dataset)
    wrong = dict(dataset, value=[*values[:5], "n/a", *values[6:]])
    return [
        (json.dumps(wrong).encode(), '"value" [5] is "n/a"; expected a number or null'),
        (json.dumps(dict(dataset, value=values[:-1])).encode(), "the dimension sizes multiply to"),
        (
            json.dumps(dict(dataset, status=[7] * len(values))).encode(),
            '"status" [0] is 7; expected a string',
        ),
        (b'{\n "version": "2.0",\n "value": [1e400]\n}', "line 3, column 12: number 1e400 is out of range"),
        (b'{\n "version": "2.0",\n "label": "caf\xe9"\n}', "line 3, column 15: not valid UTF-8 (byte 0xe9)"),
        (b'{"version": "2.0", "class": "dataset", "class": "x"}', 'key "class" appears twice'),
        (b'{\n "version": "2.0",\n "class": "dataset"\n "id": []\n}\n', "line 4, column 2: invalid JSON"),
        (text.replace('"R01": "Northern Coast"', '"R01": 5').encode(), 'the label of category "R01" is 5'),
        (b"[" * 100 + b"]" * 100, "line 1, column 65: nesting deeper than 64 levels"),
        # Half a UTF-16 pair is no character: written out it would load as U+FFFD, silently.
        (
            text.replace('"R01": "Northern Coast"', '"R01": "North\\ud800ern"').encode(),
            "is a lone surrogate (half of a UTF-16 pair)",
        ),
        (text.replace('"R01",', '"\\udc00R01",', 1).encode(), "is a lone surrogate"),
        (
            json.dumps(dict(dataset, status={"0": "p", str(len(values)): "p"})).encode(),
            f'"status" key "{len(values)}" is not a cell index below {len(values)}',
        ),
        (json.dumps(dict(dataset, status={"first": "p"})).encode(), '"status" key "first" is not a cell'),
        # A dimension whose column another already means would be dropped silently (a size of one
        # makes no duplicate key to tell).
        (extra_dimension(dataset, "value"), "column value would hold both the values and dimension value"),
        (extra_dimension(dataset, "REGION"), "column region would hold both dimension region and dimension"),
        (extra_dimension(dataset, "region_label"), "both the labels of dimension region and dimension"),
    ]


def extra_dimension(dataset: dict, name: str) -> bytes:
    """The dataset with one more dimension, of one category."""
    dimension = dict(dataset["dimension"], **{name: {"category": {"index": ["only"]}}})
    return json.dumps(
        dict(dataset, id=[*dataset["id"], name], size=[*dataset["size"], 1], dimension=dimension)
    ).encode()


def test_bad_datasets_fail_naming_the_place_and_keep_the_table(dataset, fresh_warehouse, tmp_path):
    assert run_source(fresh_warehouse, SOURCE.name).returncode == 0
    before = fingerprint(fresh_warehouse, SOURCE.table)
    for number, (content, message) in enumerate(cases(dataset, tmp_path)):
        path = tmp_path / f"case{number}.json"
        path.write_bytes(content)
        result = run_source(fresh_warehouse, SOURCE.name, "--input", str(path))
        assert result.returncode == EXIT_PERMANENT, result.stderr
        assert f"ingest error: source 'regional_cpi': {path}" in result.stderr
        assert message in result.stderr, result.stderr
    assert fingerprint(fresh_warehouse, SOURCE.table) == before


def test_escaped_characters_and_surrogate_pairs_load_as_themselves(dataset, fresh_warehouse, tmp_path):
    path = tmp_path / "escaped.json"
    text = json.dumps(dataset).replace('"R01": "Northern Coast"', '"R01": "North \\ud83d\\ude00 \\u00e9"')
    path.write_text(text)
    assert run_source(fresh_warehouse, SOURCE.name, "--input", str(path)).returncode == 0
    with postgres.connect(fresh_warehouse) as conn:
        query = "select distinct region_label from raw.regional_cpi where region = 'R01'"
        assert conn.execute(query).fetchall() == [("North \U0001f600 \u00e9",)]


@pytest.mark.parametrize("repeated", ["label", "status"])
def test_a_long_text_repeated_past_the_output_limit_is_refused_before_any_row(
    repeated, dataset, fresh_warehouse, tmp_path
):
    """1 MiB of label, or of status (quotes, doubled when written), on each of 512 rows: 512 MiB of CSV
    or more from a 1 MiB input, past 64 times the 4 MiB max_record_bytes given. Refused at once, not
    written until the deadline and then retried."""
    assert run_source(fresh_warehouse, SOURCE.name).returncode == 0
    before = fingerprint(fresh_warehouse, SOURCE.table)
    label = "R" * (1 << 20) if repeated == "label" else "Region one"
    region = {"category": {"index": ["R01"], "label": {"R01": label}}}
    month = {"category": {"index": [f"M{number}" for number in range(256)]}}
    contents = {"category": {"index": ["cpi", "change"]}}
    amplifying = dict(
        dataset,
        size=[1, 256, 2],
        dimension={"region": region, "month": month, "contents": contents},
        value=[1.5] * 512,
        status='"' * (1 << 20),
    )
    if repeated == "label":
        amplifying.pop("status")
    path = tmp_path / "amplifying.json"
    path.write_text(json.dumps(amplifying))
    result = run_source(
        fresh_warehouse, SOURCE.name, "--input", str(path), "--max-record-bytes", str(4 << 20)
    )
    assert result.returncode == EXIT_PERMANENT, result.stderr
    assert f"source 'regional_cpi': {path}: its rows would make " in result.stderr
    assert f"bytes of CSV, more than {256 << 20} (64 times the source's max_record_bytes)" in result.stderr
    assert fingerprint(fresh_warehouse, SOURCE.table) == before


def test_a_sparse_value_object_loads_the_cells_it_lists(dataset, fresh_warehouse, tmp_path):
    """50,000 x 50,000 x 2 declared cells, two listed: two rows, not five billion rows of nulls."""
    sparse = dict(dataset, size=[50_000, 50_000, 2], value={"0": 1.5, "7": 2.5})
    for dimension, size in zip(sparse["id"], sparse["size"], strict=True):
        sparse["dimension"][dimension] = {"category": {"index": [f"{dimension[0]}{i}" for i in range(size)]}}
    path = tmp_path / "sparse.json"
    path.write_text(json.dumps(sparse))
    result = run_source(fresh_warehouse, SOURCE.name, "--input", str(path))
    assert result.returncode == 0, result.stderr
    assert fingerprint(fresh_warehouse, SOURCE.table)[0] == 2


def test_materializes_through_dagster_with_metadata_and_checks(dataset, fresh_warehouse):
    result = materialize(SOURCE, fresh_warehouse)
    assert result.success, failure_message(result)
    (materialization,) = result.asset_materializations_for_node("raw__regional_cpi")
    cells = len(dataset["value"])
    assert materialization.metadata["dagster/row_count"].value == cells
    assert {name: check.passed for name, check in check_results(result).items()} == {
        "not_empty": True,
        "row_count_change": True,
        "primary_key_unique": True,
    }


def test_a_value_of_the_wrong_type_names_the_cell(dataset, fresh_warehouse):
    """Postgres names the row; the reader says which cell of the dataset it came from."""
    integer = replace(SOURCE, name="cpi_integer", table="cpi_integer")
    integer = replace(
        integer, columns=tuple(replace(c, type="integer") if c.name == "value" else c for c in SOURCE.columns)
    )
    result = materialize(integer, fresh_warehouse)
    assert not result.success
    message = failure_message(result)
    assert "source 'cpi_integer': data/regional_cpi.json line 2 (cell 0 (region=R01, month=2016M01" in message
    assert 'invalid input syntax for type integer: "101.9"; expected integer' in message
    assert len(events_of(result, "STEP_START")) == 1  # permanent: no retry
