"""new-location and remove-location on this repository: refusals say who holds what, --dry-run and a
failure write nothing. (Adding and removing for real runs in a copy: test_day2_changes.)"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devtools.locations import discover
from devtools.repo_copy import copy_env, copy_working_tree
from devtools.staged_files import StagedFiles

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LISTING = (
    "pyproject.toml",
    "uv.lock",
    "compose.yml",
    "workspace.yaml",
    "docker-bake.hcl",
    "Dockerfile.ingest",
    "compose.run-containers.yml",
    "docker-stack.yml",
    "deploy/helm/values.yaml",
)


def _run(command: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / command), *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def _fingerprint() -> dict[str, str]:
    return {name: hashlib.sha256((ROOT / name).read_bytes()).hexdigest() for name in LISTING}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["marts"], "name 'marts' is held by location marts (marts/pyproject.toml)"),
        (["reports", "--short", "ingest"], "name 'ingest' is held by location ingest_raw"),
        (["reports", "--port", "4001"], "port 4001 is held by location marts (marts/pyproject.toml)"),
        (["reports", "--port", "3000"], "port 3000 is held by the webserver"),
        (["reports", "--port", "5432"], "port 5432 is held by Postgres"),
        (["Reports"], "'Reports' is not a snake_case package name"),
        (["platform"], "'platform' is reserved"),
        (["json"], "a module 'json' is already installed"),
        (
            ["reports", "--reads", "nowhere"],
            "--reads nowhere: no location writes it; known: raw, staging, marts",
        ),
    ],
    ids=[
        "taken-name",
        "taken-short",
        "taken-port",
        "platform-port",
        "port-in-stack",
        "case",
        "reserved",
        "module",
        "reads",
    ],
)
def test_refusals_name_the_problem_and_write_nothing(args, message):
    before = _fingerprint()
    done = _run("new-location", *args)
    assert done.returncode == 1, done.stdout + done.stderr
    assert message in done.stderr
    assert not (ROOT / "src" / "reports").exists()
    assert _fingerprint() == before


def test_dry_run_prints_the_plan_and_diff_and_writes_nothing():
    before = _fingerprint()
    port = max(location.port for location in discover(ROOT)) + 1
    done = _run("new-location", "reports", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert f"new-location: reports (short reports, port {port})" in done.stdout
    for line in (
        "create Dockerfile.reports",
        "edit   compose.yml",
        "edit   compose.run-containers.yml",
        "edit   docker-stack.yml",
        "edit   deploy/helm/values.yaml",
        "create src/reports/reports/definitions.py",
        "edit   deploy/postgres/init-platform.sh",
        "edit   uv.lock (uv lock), then the environment (uv sync)",
    ):
        assert line in done.stdout
    assert (
        f'+CMD ["python", "-m", "shared.code_server", "code-server", "start", "-h", "0.0.0.0", "-p", "{port}"'
        in done.stdout
    )
    assert "+COPY src/reports/pyproject.toml src/reports/" in done.stdout
    assert "+      - reports-credentials:/run/location/reports" in done.stdout
    assert "+    - name: reports" in done.stdout
    assert not (ROOT / "src" / "reports").exists()
    assert _fingerprint() == before


def test_remove_location_refuses_while_another_location_reads_it():
    done = _run("remove-location", "ingest", "--dry-run")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "ingest_raw is still read:\n  marts reads its assets raw/airlines, raw/airports" in done.stderr


def test_a_failure_puts_every_file_back(tmp_path):
    (tmp_path / "kept.txt").write_text("before\n")
    (tmp_path / "member").mkdir()
    (tmp_path / "member" / "code.py").write_text("x = 1\n")
    (tmp_path / "gone.txt").write_text("still here\n")
    (tmp_path / "uv.lock").write_text("lock\n")
    staged = StagedFiles(tmp_path)
    staged.edit("kept.txt", lambda text: text + "after\n")
    staged.write("new/deep/file.py", "y = 2\n")
    staged.delete("gone.txt")
    staged.remove_dir("member")
    assert staged.read("kept.txt") == "before\nafter\n" and not (tmp_path / "new").exists()
    with pytest.raises(RuntimeError, match="uv lock failed"), staged.applied(also_restore=("uv.lock",)):
        assert (tmp_path / "new/deep/file.py").is_file() and not (tmp_path / "member").exists()
        (tmp_path / "uv.lock").write_text("rewritten\n")
        (tmp_path / "new/deep/__pycache__").mkdir()  # as an import leaves behind
        raise RuntimeError("uv lock failed")
    assert sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*")) == [
        "gone.txt", "kept.txt", "member", "member/code.py", "uv.lock"
    ]  # fmt: skip
    assert (tmp_path / "kept.txt").read_text() == "before\n"
    assert (tmp_path / "uv.lock").read_text() == "lock\n"


def test_ctrl_c_during_new_location_leaves_no_file_and_no_package_and_no_traceback(tmp_path):
    """Ctrl-C once the new member is installed (check-defs is then loading it): every file is put
    back, the venv is synced back to the lock (the package is gone), and the message is one line."""
    copy = tmp_path / "repo"
    copy_working_tree(ROOT, copy)
    subprocess.run(["uv", "sync", "--frozen", "-q"], cwd=copy, env=copy_env(), check=True, timeout=600)
    before = {
        path: path.read_bytes() for path in copy.rglob("*") if path.is_file() and ".venv" not in path.parts
    }
    installed = copy / ".venv/lib/python3.11/site-packages"
    command = subprocess.Popen(
        ["uv", "run", "new-location", "reports"],
        cwd=copy, env=copy_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
        # A terminal's foreground command takes Ctrl-C, whatever this test's own parent ignores.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while not list(installed.glob("reports-*.dist-info")):
        assert command.poll() is None, command.communicate()
        assert time.monotonic() < deadline, "the new member was never installed"
        time.sleep(0.1)
    os.killpg(command.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole foreground group
    stdout, stderr = command.communicate(timeout=300)
    assert command.returncode == 1, stdout + stderr
    assert "Traceback" not in stderr
    assert "new-location: interrupted\nnew-location: nothing was changed" in stderr
    assert not list(installed.glob("reports-*.dist-info")), (
        f"the half-added package stays installed: {stderr}"
    )
    after = {
        path: path.read_bytes() for path in copy.rglob("*") if path.is_file() and ".venv" not in path.parts
    }
    changed = sorted(
        str(p.relative_to(copy)) for p in before.keys() | after.keys() if before.get(p) != after.get(p)
    )
    assert [name for name in changed if "__pycache__" not in name] == []
