"""check-defs on a workspace with one healthy and one broken location, and on this workspace."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

from devtools.check_defs import SNAPSHOT, render_snapshot
from devtools.locations import discover

CHECK_DEFS = str(Path(sys.executable).with_name("check-defs"))
INSTALL_TIMEOUT_SECONDS = 120
BUILD_SYSTEM = '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'


def _member(root: Path, name: str, port: int, definitions: str) -> None:
    member = root / "src" / name
    (member / name).mkdir(parents=True)
    (member / "pyproject.toml").write_text(
        f'[project]\nname = "{name}"\nversion = "0"\n\n{BUILD_SYSTEM}\n'
        f'[tool.platform.location]\nshort-name = "{name[:4]}"\nport = {port}\n'
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


def _install(root: Path, *members: str) -> Path:
    """A venv of the workspace's own (dagster from this one's site-packages) with `members` installed
    non-editable, as an image installs them; its python."""
    venv = root / ".venv"
    subprocess.run(["uv", "venv", "-q", "--python", sys.executable, str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    probe = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = subprocess.check_output([python, "-c", probe], text=True).strip()
    ours = sysconfig.get_paths()["purelib"]
    (Path(site) / "_workspace.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    if members:
        subprocess.run(
            ["uv", "pip", "install", "-q", "--python", str(python), "--no-deps"]
            + [str(root / "src" / member) for member in members],
            check=True,
            timeout=INSTALL_TIMEOUT_SECONDS,
        )
    return python


def _check_defs(cwd: Path, *args: str, python: Path | None = None) -> subprocess.CompletedProcess:
    command = [str(python), "-m", "devtools.check_defs"] if python else [CHECK_DEFS]
    return subprocess.run([*command, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_broken_location_is_named_and_the_healthy_one_still_reported(tmp_path):
    root = _workspace(tmp_path)
    result = _check_defs(root, python=_install(root, "healthy", "broken"))
    assert result.returncode == 1, result.stdout + result.stderr
    healthy = next(line for line in result.stdout.splitlines() if line.startswith("healthy"))
    assert healthy.split()[1:6] == ["1", "1", "1", "0", "0"]
    broken = next(line for line in result.stdout.splitlines() if line.startswith("broken"))
    assert "FAILED  KeyError: 'missing'" in broken
    assert "site-packages/broken/definitions.py:4" in broken, "loaded from the installed package"
    assert "check-defs: 1 failure(s)" in result.stderr


def test_a_location_missing_from_the_environment_fails_with_the_fix(tmp_path):
    """A member the root pyproject does not install fails here as it fails in dev-local."""
    root = _workspace(tmp_path)
    result = _check_defs(root, "--only", "healthy", python=_install(root))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "distribution 'healthy' is not installed in this environment" in result.stdout
    assert "[tool.uv.sources]" in result.stdout


def test_list_prints_keys_and_checks(tmp_path):
    root = _workspace(tmp_path)
    result = _check_defs(root, "--only", "healthy", "--list", python=_install(root, "healthy"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "    asset numbers\n    check numbers:positive\n" in result.stdout


def test_only_limits_the_check_and_ratio_gate_fails(tmp_path):
    root = _workspace(tmp_path)
    python = _install(root, "healthy")
    only = _check_defs(root, "--only", "healthy", "--runs", "2", python=python)
    assert only.returncode == 0, only.stdout + only.stderr
    assert "broken" not in only.stdout
    assert "medians of 2 alternating runs" in only.stdout
    gated = _check_defs(root, "--only", "heal", "--max-import-ratio", "0.01", python=python)
    assert gated.returncode == 1
    assert "FAILED: import over 0.01x import dagster" in gated.stdout


def test_this_workspace_loads():
    result = _check_defs(Path(__file__).parents[1])
    assert result.returncode == 0, result.stdout + result.stderr
    names = [line.split()[0] for line in result.stdout.splitlines()[1:-1]]
    assert names == [location.name for location in discover(Path(__file__).parents[1])]


def test_diff_names_what_changed_since_a_ref_and_who_reads_it(tmp_path):
    """Against the snapshots committed at a ref: the changed asset, and the other location reading it."""
    root = _workspace(tmp_path)
    _member(
        root,
        "reader",
        4102,
        """
        import dagster as dg

        @dg.asset(deps=["numbers"])
        def report():
            return None

        defs = dg.Definitions(assets=[report])
        """,
    )
    python = _install(root, "healthy", "reader")
    for name in ("healthy", "reader"):
        loaded = subprocess.run(
            [python, "-m", "devtools.load_location", f"{name}.definitions", name],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
        definitions = json.loads(loaded.stdout.splitlines()[-1])["definitions"]
        (root / "src" / name / SNAPSHOT).write_text(render_snapshot(definitions))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "before"], cwd=root, check=True)
    definitions = root / "src" / "healthy" / "healthy" / "definitions.py"
    definitions.write_text(definitions.read_text().replace("@dg.asset(", '@dg.asset(group_name="moved", '))
    reinstalled = subprocess.run(
        [
            "uv",
            "pip",
            "install",
            "-q",
            "--python",
            str(python),
            "--no-deps",
            "--reinstall",
            root / "src/healthy",
        ],
        timeout=INSTALL_TIMEOUT_SECONDS,
    )
    assert reinstalled.returncode == 0
    result = _check_defs(root, "--only", "healthy", "--only", "reader", "--diff", "HEAD", python=python)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "~ asset numbers: group" in result.stdout
    assert "reader: unchanged" in result.stdout
    assert "blast radius: healthy numbers is read by reader: report" in result.stdout
    unknown = _check_defs(root, "--only", "healthy", "--diff", "no-such-ref", python=python)
    assert unknown.returncode != 0
    assert "not a commit" in unknown.stdout + unknown.stderr
