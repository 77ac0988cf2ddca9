"""Day-2 changes as the README tells them, in a copy of this repository, on top of a user's own earlier
additions (a CSV source, its dbt source and a staging model): add a source, a model and a location
(new-location), recording the definitions snapshots as the README says; then the tests they affect
pass with no test edited, the user's additions are still there, and remove-location puts every file
back. Prints each recipe's minutes and files touched (bench/README.md).

The copy is the working tree's files (tracked and new, ignored ones left out) with a venv of its own
synced from the shared uv cache. Only the affected tests run there, to keep the suite affordable."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from devtools.check_defs import SNAPSHOT_UPDATE
from devtools.repo_copy import copy_env, copy_working_tree

ROOT = Path(__file__).resolve().parents[1]
CATALOG = "src/ingest_raw/ingest_raw/catalog.py"
DBT_PROJECT = "src/marts/marts/dbt_project"
README = (ROOT / "README.md").read_text()
STEP_TIMEOUT_SECONDS = 900
#: The tests that copy or derive the sources, models and locations, selected for time.
AFFECTED_TESTS = [
    "tests/ingest/test_ingest_shipped.py::test_the_same_declarations_load_over_http",
    "tests/ingest/test_ingest_declarations.py",
    "tests/test_marts_definitions.py",
    "tests/test_lineage.py",
    "tests/deploy/test_deploy_static.py",
    "tests/test_definitions_snapshot.py",
]
TYPESCRIPT = "src/ingest_raw/typescript"


def _section(title: str) -> str:
    start = README.index(f"## {title}\n")
    following = re.search(r"^##+ ", README[start + 3 :], re.MULTILINE)
    return README[start : start + 3 + following.start()] if following else README[start:]


def _blocks(title: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", _section(title), re.DOTALL)


def _run(copy: Path, command: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        shlex.split(command),
        cwd=copy,
        env=copy_env(),
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT_SECONDS,
    )
    assert done.returncode == 0, (
        f"{command} failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    )
    return done


def _append_to_sources(catalog: Path, name: str) -> None:
    """Append `name` to the tuple `SOURCES` is built from, keeping whatever the user listed there."""
    statement = re.compile(r"(^SOURCES\b.*?\bin \()(.*?)(\)\s*\n?\})", re.MULTILINE | re.DOTALL)
    text, replaced = statement.subn(
        lambda m: f"{m[1]}{m[2].rstrip().rstrip(',')}, {name}{m[3]}", catalog.read_text()
    )
    assert replaced == 1, "catalog.py builds SOURCES from one tuple of declarations"
    catalog.write_text(text)


def _add_a_source(copy: Path, declaration: str) -> None:
    """As "Add a source" says: the declaration above SOURCES, its name appended to SOURCES' tuple."""
    catalog = copy / CATALOG
    text = catalog.read_text()
    at = re.search(r"^SOURCES\b", text, re.MULTILINE).start()
    catalog.write_text(text[:at] + declaration.strip() + "\n\n\n" + text[at:])
    _append_to_sources(catalog, re.match(r"\s*(\w+)\s*=", declaration)[1])


def _add_the_readme_source(copy: Path) -> None:
    (declaration,) = _blocks("Add a source", "python")
    _add_a_source(copy, declaration)


def _add_the_readme_typescript_source(copy: Path) -> str:
    """As "Add a TypeScript source" says: the reader program where it says, the declaration in the
    catalog; and the local sample it says to keep, a JSON-stat dataset of the declared dimensions (the
    user's data, made up here). Returns the source's name."""
    section = _section("Add a TypeScript source")
    (program,) = _blocks("Add a TypeScript source", "ts")
    (declaration,) = (textwrap.dedent(block) for block in _blocks("Add a TypeScript source", "python"))
    path = re.search(rf"`({TYPESCRIPT}/src/sources/\w+\.ts)`", section)[1]
    (copy / path).write_text(textwrap.dedent(program))
    _add_a_source(copy, declaration)
    key = re.search(r"primary_key=\(([^)]*)\)", declaration)[1]
    dimensions = re.findall(r'"(\w+)"', key)
    sample = {
        "version": "2.0",
        "class": "dataset",
        "id": dimensions,
        "size": [2] * len(dimensions),
        "dimension": {d: {"category": {"index": [f"{d}1", f"{d}2"]}} for d in dimensions},
        "value": [float(i) for i in range(2 ** len(dimensions))],
    }
    (copy / TYPESCRIPT / re.search(r'input="([^"]+)"', declaration)[1]).write_text(json.dumps(sample))
    return re.search(r'name="(\w+)"', declaration)[1]


def _add_the_readme_model(copy: Path) -> None:
    project = copy / DBT_PROJECT
    (model,) = _blocks("Add a model", "sql")
    (documentation,) = _blocks("Add a model", "yaml")
    model_path = model.splitlines()[0].removeprefix("-- ")
    (project / model_path).write_text(model)
    yml_path = documentation.splitlines()[0].removeprefix("# ").split(",")[0]
    with (project / yml_path).open("a") as yml:
        yml.write("\n" + "\n".join(documentation.splitlines()[1:]) + "\n")


def _add_the_users_own_source_and_model(copy: Path) -> None:
    """What a user added before following the README again: a CSV source, its dbt source and a staging
    model casting its columns (the contract with the declaration is checked from then on)."""
    data = copy / "user_data" / "events.csv"
    data.parent.mkdir()
    data.write_text("event_id,kind,amount\n1,click,2.5\n2,view,\n")
    _add_a_source(
        copy,
        f"""
EVENTS = Source(
    name="events",
    input="{data}",
    columns=_columns("event_id bigint, kind text, amount double precision"),
    primary_key=("event_id",),
)
""",
    )
    project = copy / DBT_PROJECT
    with (project / "models/staging/sources.yml").open("a") as sources:
        sources.write(
            '\n      - name: events\n        meta: {dagster: {asset_key: ["raw", "events"]}}\n'
            "        columns:\n          - name: event_id\n            data_tests: [not_null]\n"
        )
    (project / "models/staging/stg_events.sql").write_text(
        "select cast(event_id as bigint) as event_id, kind, cast(amount as double precision) as amount\n"
        "from {{ source('raw', 'events') }}\n"
    )


def _tree(root: Path) -> dict[str, bytes]:
    skipped = {".venv", "__pycache__", "target", "logs", ".pytest_cache", ".ruff_cache", "pt"}
    skipped |= {"node_modules", "dist", ".build.lock"}  # the TypeScript build the suite makes
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in root.rglob("*")
        if path.is_file() and not skipped & set(path.relative_to(root).parts)
    }


@pytest.fixture(scope="module")
def copy(tmp_path_factory) -> Path:
    copy = tmp_path_factory.mktemp("day2") / "repo"
    copy_working_tree(ROOT, copy)
    _run(copy, "uv sync --frozen")
    return copy


def _changed(before: dict[str, bytes], after: dict[str, bytes]) -> list[str]:
    return sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))


def test_readme_recipes_on_top_of_a_users_additions_pass_the_affected_tests_unedited(copy):
    _add_the_users_own_source_and_model(copy)
    _run(copy, SNAPSHOT_UPDATE)
    tests_before = {name: data for name, data in _tree(copy).items() if name.startswith("tests/")}
    figures = []

    def recipe(title: str, apply) -> None:
        """Apply one README recipe as written, then record the definitions as the README says."""
        before, started = _tree(copy), time.monotonic()
        apply()
        _run(copy, SNAPSHOT_UPDATE)
        figures.append((title, time.monotonic() - started, _changed(before, _tree(copy))))

    recipe("Add a source", lambda: _add_the_readme_source(copy))
    recipe("Add a model", lambda: _add_the_readme_model(copy))
    reader = []
    recipe("Add a TypeScript source", lambda: reader.append(_add_the_readme_typescript_source(copy)))
    before_location = _tree(copy)
    (commands,) = _blocks("Add a location", "sh")[:1]
    new_location = commands.splitlines()[0].split("#")[0].strip()
    name = shlex.split(new_location)[3]
    created = []

    def add_location() -> None:
        created.append(_run(copy, new_location))
        # Recorded by new-location itself: the suite is green before the user touches anything.
        assert (copy / "src" / name / "definitions.snapshot.json").is_file()

    recipe("Add a location", add_location)
    assert "check-defs green" in created[0].stdout
    assert f"uv run pytest tests/test_{name}.py" in created[0].stdout

    listed = _run(copy, "uv run check-defs --list").stdout
    for key in ("asset raw/events", "asset staging/stg_events", "asset raw/trips",
                "check raw/trips:primary_key_unique", "asset marts/dim_planes",
                "check marts/dim_planes:unique_dim_planes_tail_number", f"asset raw/{reader[0]}",
                f"asset {name}/example"):  # fmt: skip
        assert key in listed, f"{key} missing from check-defs --list:\n{listed}"

    started = time.monotonic()
    tested = _run(copy, f"uv run pytest -q -p no:cacheprovider --basetemp=pt {' '.join(AFFECTED_TESTS)} "
                        f"tests/test_{name}.py")  # fmt: skip
    assert " passed" in tested.stdout and "failed" not in tested.stdout
    # The load contract over the new reader program only (the shipped ones are the suite's).
    contract = _run(
        copy,
        f"uv run pytest -q -p no:cacheprovider --basetemp=pt tests/ingest/test_contract.py -k {reader[0]}",
    )
    assert (
        " passed" in contract.stdout and "failed" not in contract.stdout and "skipped" not in contract.stdout
    )
    print(f"\nday-2 recipes on a copy (affected tests afterwards: {time.monotonic() - started:.0f} s)")
    for title, seconds, files in figures:
        print(f"  {title}: {seconds / 60:.1f} min, {len(files)} files: {', '.join(files)}")
    tests_after = {name: data for name, data in _tree(copy).items() if name.startswith("tests/")}
    assert {key for key in tests_after if tests_before.get(key) != tests_after[key]} == {
        f"tests/test_{name}.py"
    }, "no existing test was edited"

    _run(copy, f"uv run remove-location {name}")
    changed = _changed(before_location, _tree(copy))
    assert changed == [], f"remove-location left these different from before new-location: {changed}"
