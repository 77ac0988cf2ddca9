"""check-defs on a workspace with one healthy and one broken location, and on this workspace."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

CHECK_DEFS = str(Path(sys.executable).with_name("check-defs"))


def _member(root: Path, name: str, port: int, definitions: str) -> None:
    member = root / "src" / name
    (member / name).mkdir(parents=True)
    (member / "pyproject.toml").write_text(
        f'[project]\nname = "{name}"\n\n[tool.platform.location]\nshort-name = "{name[:4]}"\nport = {port}\n'
    )
    (member / name / "__init__.py").write_text("")
    (member / name / "definitions.py").write_text(textwrap.dedent(definitions))


def _workspace(root: Path) -> Path:
    (root / "uv.lock").write_text("")
    _member(
        root,
        "healthy",
        4100,
        """
        import dagster as dg

        @dg.asset(check_specs=[dg.AssetCheckSpec("positive", asset="numbers")])
        def numbers():
            yield dg.Output([1, 2])
            yield dg.AssetCheckResult(passed=True)

        defs = dg.Definitions(assets=[numbers], jobs=[dg.define_asset_job("all_numbers")])
        """,
    )
    _member(
        root,
        "broken",
        4101,
        """
        import dagster as dg

        SETTING = {}["missing"]
        """,
    )
    return root


def _check_defs(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHECK_DEFS, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_broken_location_is_named_and_the_healthy_one_still_reported(tmp_path):
    result = _check_defs(_workspace(tmp_path))
    assert result.returncode == 1, result.stdout + result.stderr
    healthy = next(line for line in result.stdout.splitlines() if line.startswith("healthy"))
    assert healthy.split()[1:6] == ["1", "1", "1", "0", "0"]
    broken = next(line for line in result.stdout.splitlines() if line.startswith("broken"))
    assert "FAILED  KeyError: 'missing'" in broken
    assert "src/broken/broken/definitions.py:4" in broken
    assert "1 location(s) failed" in result.stderr


def test_only_limits_the_check_and_ratio_gate_fails(tmp_path):
    root = _workspace(tmp_path)
    only = _check_defs(root, "--only", "healthy", "--runs", "2")
    assert only.returncode == 0, only.stdout + only.stderr
    assert "broken" not in only.stdout
    assert "medians of 2 alternating runs" in only.stdout
    gated = _check_defs(root, "--only", "heal", "--max-import-ratio", "0.01")
    assert gated.returncode == 1
    assert "FAILED: import over 0.01x import dagster" in gated.stdout


def test_this_workspace_loads():
    result = _check_defs(Path(__file__).parents[1])
    assert result.returncode == 0, result.stdout + result.stderr
    names = [line.split()[0] for line in result.stdout.splitlines()[1:-1]]
    assert names == ["ingest_raw", "marts"]
