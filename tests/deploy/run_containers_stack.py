"""A compose project with compose.run-containers.yml on the real engine, for the docker-marked tests:
images built once, env files from the templates with fresh passwords, a project name and a
webserver port of its own, and the run containers the daemon starts, found by their run id label."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
import uuid
from pathlib import Path

from devtools import asset_runs
from devtools.ports import free_port
from devtools.webserver import wait_until_loaded
from tests.deploy.deploy_helpers import LOCATIONS, ROOT, image_name, template

PREFIX = "issue12"
REGISTRY = f"{PREFIX}/"
TAG = "dev"
DOCKERFILES = {"platform": "Dockerfile.platform"} | {
    image_name(location): f"Dockerfile.{location.short_name}" for location in LOCATIONS
}


class DockerError(RuntimeError):
    pass


def engine_unavailable() -> str | None:
    """Why no engine can be used (one line), or None when `docker info` answers."""
    if shutil.which("docker") is None:
        return "no docker CLI on PATH"
    done = subprocess.run(
        ["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True
    )
    if done.returncode != 0 or not done.stdout.strip():
        return f"no Docker engine answers: {(done.stderr.strip().splitlines() or ['no version'])[-1]}"
    return None


def docker(*args: str, timeout: float = 120, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and done.returncode != 0:
        raise DockerError(f"docker {' '.join(args[:4])} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done


def image(name: str) -> str:
    return f"{REGISTRY}{'dagster-platform' if name == 'platform' else name}:{TAG}"


def build_images() -> None:
    """Each image from its Dockerfile, unless already built by this branch's tests. The offline
    engine cannot fetch the `# syntax=` frontend (FIELD_NOTES): that line is left out."""
    for name, dockerfile in DOCKERFILES.items():
        if docker("image", "inspect", image(name), check=False).returncode == 0:
            continue
        text = "".join(
            line
            for line in (ROOT / dockerfile).read_text().splitlines(True)
            if not line.startswith("# syntax=")
        )
        docker("build", "-q", "-f", "-", "-t", image(name), ".", input=text, cwd=ROOT, timeout=1800)


class RunContainersProject:
    """compose.yml + compose.run-containers.yml as project `issue12-runs-<random>` in `folder`
    (compose.yml alone, runs in the code servers, with `run_containers=False`)."""

    def __init__(self, folder: Path, run_containers: bool = True):
        self.folder = folder
        self.files = ["compose.yml", *(["compose.run-containers.yml"] if run_containers else [])]
        self.name = f"{PREFIX}-{'runs' if run_containers else 'default'}-{uuid.uuid4().hex[:6]}"
        self.port = free_port()
        for name in ("compose.yml", "compose.run-containers.yml"):
            shutil.copy(ROOT / name, folder / name)
        (folder / "deploy" / "postgres").mkdir(parents=True)
        shutil.copy(ROOT / "deploy/postgres/init-platform.sh", folder / "deploy/postgres")
        self.env_dir = folder / "environments"
        self.env_dir.mkdir()
        self.passwords = {
            name: secrets.token_urlsafe(12) for name in ("postgres", "dagster", *self.locations)
        }
        for location in ("postgres", "platform", *self.locations):
            self.write_env_file(location)

    @property
    def locations(self) -> list[str]:
        return [location.name for location in LOCATIONS]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_env_file(self, service: str, extra: dict[str, str] | None = None) -> None:
        known = {
            "POSTGRES_PASSWORD": self.passwords["postgres"],
            "DAGSTER_PG_HOST": "postgres",
            "DAGSTER_PG_PORT": "5432",
            "DAGSTER_PG_USER": "dagster",
            "DAGSTER_PG_PASSWORD": self.passwords["dagster"],
            "DAGSTER_PG_DB": "dagster",
            "WAREHOUSE_HOST": "postgres",
            "WAREHOUSE_PORT": "5432",
            "WAREHOUSE_DB": "warehouse",
            "DBT_TARGET": "prod",
        }
        if service in self.locations:
            known |= {"WAREHOUSE_USER": service, "WAREHOUSE_PASSWORD": self.passwords[service]}
        values = {name: known[name] for name in template(service)} | (extra or {})
        path = self.env_dir / f"{service}.env"
        path.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
        path.chmod(0o644)

    def env(self) -> dict[str, str]:
        gid = str(os.stat("/var/run/docker.sock").st_gid)
        return os.environ | {
            "REGISTRY": REGISTRY,
            "TAG": TAG,
            "DOCKER_GID": gid,
            "WEBSERVER_PORT": str(self.port),
        }

    def compose(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        files = [argument for name in self.files for argument in ("-f", name)]
        return docker(
            "compose",
            *files,
            "-p",
            self.name,
            *args,
            timeout=timeout,
            check=check,
            cwd=self.folder,
            env=self.env(),
        )

    def up(self, *services: str) -> None:
        done = self.compose("up", "-d", "--wait", "--no-build", *services, timeout=900, check=False)
        if done.returncode != 0:
            logs = self.compose("logs", "--no-color", "--tail", "40", check=False).stdout[-5000:]
            raise DockerError(f"compose up failed:\n{done.stderr[-2000:]}\n{logs}")

    def restart_code_server(self, location: str) -> None:
        """A new code server container (it reads its env file at start), reloaded by the webserver."""
        self.up("--force-recreate", "--no-deps", location)
        entry = asset_runs.reload_location(self.url, location)
        if entry.get("loadStatus") != "LOADED":
            raise DockerError(f"{location} did not reload: {entry}")

    def wait_until_loaded(self) -> None:
        wait_until_loaded(self.url, timeout=300)

    def down(self) -> None:
        self.compose("down", "--volumes", "--timeout", "30", timeout=300, check=False)

    def psql(self, query: str) -> list[str]:
        done = self.compose(
            "exec", "-T", "postgres", "psql", "-U", "postgres", "-d", "warehouse", "-AtX", "-c", query
        )
        return done.stdout.splitlines()


def run_containers(project: str) -> list[dict]:
    """Every container the daemon started for a run of `project` (any state), inspected."""
    ids = docker("ps", "-aq", "--filter", "label=dagster/run_id").stdout.split()
    inspected = json.loads(docker("inspect", *ids).stdout) if ids else []
    return [c for c in inspected if f"{project}_default" in c["NetworkSettings"]["Networks"]]


def container_of(project: str, run_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [c for c in run_containers(project) if c["Config"]["Labels"]["dagster/run_id"] == run_id]
        if found:
            return found[0]
        time.sleep(0.5)
    raise DockerError(f"no container for run {run_id} within {timeout:.0f} s")


def wait_until_gone(project: str, run_id: str, timeout: float = 120) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not [c for c in run_containers(project) if c["Config"]["Labels"]["dagster/run_id"] == run_id]:
            return True
        time.sleep(0.5)
    return False


def container_env(container: dict) -> dict[str, str]:
    return dict(entry.partition("=")[::2] for entry in container["Config"]["Env"])
