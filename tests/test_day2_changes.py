"""Day-2 changes as the README tells them, in a copy of this repository: add a source, a model and a
location (new-location); then the tests they affect pass with no test edited, and remove-location puts
every file back.

The copy is the working tree's files (tracked and new, ignored ones left out) with a venv of its own
synced from the shared uv cache. Only the affected tests run there, to keep the suite affordable."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from devtools.repo_copy import copy_env, copy_working_tree

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
STEP_TIMEOUT_SECONDS = 900
#: The tests that copy or derive the sources, models and locations, selected for time.
AFFECTED_TESTS = [
    "tests/ingest/test_ingest_shipped.py::test_the_same_declarations_load_over_http",
    "tests/ingest/test_ingest_declarations.py",
    "tests/test_marts_definitions.py",
    "tests/test_lineage.py",
    "tests/deploy/test_deploy_static.py",
]


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


def _add_the_readme_source(copy: Path) -> None:
    (declaration,) = _blocks("Add a source", "python")
    catalog = copy / "src/ingest_raw/ingest_raw/catalog.py"
    statement = re.compile(r"^SOURCES\b[^\n]*(?:\n[ \t]+[^\n]*)*(?:\n\})?", re.MULTILINE)
    text, replaced = statement.subn(lambda _: declaration.strip(), catalog.read_text())
    assert replaced == 1, "catalog.py has one `SOURCES = ...` statement for the README's block to replace"
    catalog.write_text(text)


def _add_the_readme_model(copy: Path) -> None:
    project = copy / "src/marts/marts/dbt_project"
    (model,) = _blocks("Add a model", "sql")
    (documentation,) = _blocks("Add a model", "yaml")
    model_path = model.splitlines()[0].removeprefix("-- ")
    (project / model_path).write_text(model)
    yml_path = documentation.splitlines()[0].removeprefix("# ").split(",")[0]
    with (project / yml_path).open("a") as yml:
        yml.write("\n" + "\n".join(documentation.splitlines()[1:]) + "\n")


def _tree(root: Path) -> dict[str, bytes]:
    skipped = {".venv", "__pycache__", "target", "logs", ".pytest_cache", ".ruff_cache", "pt"}
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


def test_source_model_and_location_from_the_readme_pass_the_affected_tests_unedited(copy):
    tests_before = {name: data for name, data in _tree(copy).items() if name.startswith("tests/")}
    _add_the_readme_source(copy)
    _add_the_readme_model(copy)
    before_location = _tree(copy)

    (commands,) = _blocks("Add a location", "sh")[:1]
    new_location = commands.splitlines()[0].split("#")[0].strip()
    name = shlex.split(new_location)[3]
    created = _run(copy, new_location)
    assert "check-defs green" in created.stdout
    assert f"uv run pytest tests/test_{name}.py" in created.stdout

    listed = _run(copy, "uv run check-defs --list").stdout
    for key in ("asset raw/trips", "check raw/trips:primary_key_unique", "asset marts/dim_planes",
                "check marts/dim_planes:unique_dim_planes_tail_number", f"asset {name}/example"):  # fmt: skip
        assert key in listed, f"{key} missing from check-defs --list:\n{listed}"

    tested = _run(copy, f"uv run pytest -q -p no:cacheprovider --basetemp=pt {' '.join(AFFECTED_TESTS)} "
                        f"tests/test_{name}.py")  # fmt: skip
    assert " passed" in tested.stdout and "failed" not in tested.stdout
    tests_after = {name: data for name, data in _tree(copy).items() if name.startswith("tests/")}
    assert {key for key in tests_after if tests_before.get(key) != tests_after[key]} == {
        f"tests/test_{name}.py"
    }, "no existing test was edited"

    _run(copy, f"uv run remove-location {name}")
    after_removal = _tree(copy)
    changed = sorted(
        key for key in before_location.keys() | after_removal.keys()
        if before_location.get(key) != after_removal.get(key)
    )  # fmt: skip
    assert changed == [], f"remove-location left these different from before new-location: {changed}"
