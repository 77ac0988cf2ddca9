"""Each location installs on its own, non-editable, exactly as its image does, and imports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
UV = str(Path(sys.executable).with_name("uv"))


def _uv(*args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [UV, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _tree(package: str) -> set[str]:
    output = _uv("tree", "--frozen", "--no-dev", "--package", package)
    return {line.split()[-2] for line in output.splitlines() if " v" in line}


def test_members_declare_only_their_own_dependencies():
    assert not any(name.startswith("dbt") for name in _tree("ingest-raw"))
    assert "dagster-dbt" not in _tree("shared")
    assert "pandas" not in _tree("ingest-raw")
    assert {"dagster-dbt", "dbt-postgres"} <= _tree("marts")


@pytest.mark.parametrize(
    ("package", "module", "absent"),
    [("ingest-raw", "ingest_raw.definitions", "dbt"), ("marts", "marts.definitions", "ingest_raw")],
)
def test_non_editable_install_of_one_member_imports_its_definitions(tmp_path, package, module, absent):
    environment = tmp_path / "env"
    env = os.environ | {"UV_PROJECT_ENVIRONMENT": str(environment)}
    _uv("sync", "--frozen", "--no-dev", "--no-editable", "--package", package, env=env)
    probe = (
        f"import importlib.util, {module} as m; "
        f"assert importlib.util.find_spec({absent!r}) is None; "
        "print(m.__file__)"
    )
    result = subprocess.run(
        [str(environment / "bin" / "python"), "-c", probe],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={key: value for key, value in os.environ.items() if key != "PYTHONPATH"},
    )
    assert result.returncode == 0, result.stderr
    assert str(environment) in result.stdout, "imported from the source tree, not the installed package"
