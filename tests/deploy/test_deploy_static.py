"""The deployment files, checked without a Docker engine: rendered from the location tables exactly as
committed, then lint (hadolint), schema (compose config, hcl2, Dagster's config) and what each file
must hold for the platform to work."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kubernetes.utils import parse_quantity

from devtools import render_deploy
from shared.postgres import WarehouseSettings
from tests.deploy.deploy_helpers import (
    LOCATIONS,
    PLATFORM_IMAGE,
    ROOT,
    TOOLS,
    bake,
    compose_command,
    compose_config,
    compose_file,
    compose_project,
    dockerfile,
    env_reads,
    helm_values,
    image_name,
    instance_config,
    instance_env_vars,
    location_dockerfile,
    run_init_script,
    stack_file,
    template,
)

DOCKERFILES = sorted(path.name for path in ROOT.glob("Dockerfile.*"))
#: Variables read by code that are not deployment configuration, each with its reason.
NOT_CONFIGURATION = {
    "INGEST_PAUSE_AT": "test hook of the ingest loader: pauses a load at a stage so a test can kill it",
    "PLATFORM_LOCAL_HOME": "dev-local's state folder (devtools.paths), never used by a deployment",
    "DAGSTER_PIPES_CONTEXT": "set by Dagster Pipes for the source programs it launches",
    "INGEST_TYPESCRIPT_DIR": "set by the ingest image to the built TypeScript programs; checkouts need none",
    "MARTS_WINDOW_START": "set by the marts monthly op for the dbt process it starts (the month)",
    "MARTS_WINDOW_END": "set by the marts monthly op for the dbt process it starts (the month)",
}
PINNED_PYTHON = re.compile(r"^python:3\.11\.\d+-slim-bookworm$")
PINNED_UV = re.compile(r"^ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+$")


@pytest.fixture(scope="module")
def compose(tmp_path_factory) -> dict:
    return compose_config(tmp_path_factory.mktemp("compose"))


# ---- lint and schema ------------------------------------------------------------------------


@pytest.mark.parametrize("name", DOCKERFILES)
def test_hadolint_is_clean(name):
    done = subprocess.run(
        [str(TOOLS / "hadolint"), "--no-color", str(ROOT / name)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def test_there_is_one_dockerfile_per_location_and_one_for_the_platform():
    expected = {f"Dockerfile.{location.short_name}" for location in LOCATIONS} | {"Dockerfile.platform"}
    assert set(DOCKERFILES) == expected


def _compose_config(tmp_path: Path, compose_file: Path) -> subprocess.CompletedProcess:
    command = compose_command(tmp_path / "docker-config")
    return subprocess.run(
        [*command, "-f", str(compose_file), "config", "--quiet"],
        env=os.environ | {"DOCKER_CONFIG": str(tmp_path / "docker-config")},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_compose_config_is_valid(tmp_path):
    done = _compose_config(tmp_path, compose_project(tmp_path / "project"))
    assert done.returncode == 0, done.stderr


def test_instance_config_is_valid_for_dagster():
    from dagster._core.instance.config import dagster_instance_config

    config, _ = dagster_instance_config(str(ROOT), "dagster.yaml")
    storage = config["storage"]["postgres"]["postgres_db"]
    # A plain postgresql:// URL picks psycopg 3 (SQLAlchemy 2.1), which fails on `NOTIFY run_events, $1`.
    assert storage["scheme"] == "postgresql+psycopg2"
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    runs = config["concurrency"]["runs"]
    assert runs["max_concurrent_runs"] > 0
    per_location = [
        limit for limit in runs["tag_concurrency_limits"] if limit["key"] == "dagster/code_location"
    ]
    assert per_location == [
        {"key": "dagster/code_location", "value": {"applyLimitPerUniqueValue": True}, "limit": 2}
    ]
    monitoring = config["run_monitoring"]
    assert monitoring["enabled"]
    assert {"start_timeout_seconds", "cancel_timeout_seconds", "free_slots_after_run_end_seconds"} <= set(
        monitoring
    )
    assert config["run_retries"] == {"enabled": True, "max_retries": 2, "retry_on_asset_or_op_failure": False}
    assert {"schedule", "sensor"} <= set(config["retention"])


def test_bake_file_parses_with_unique_tags():
    blocks = bake()
    assert set(blocks["group"]["default"]["targets"]) == {"platform", *(loc.name for loc in LOCATIONS)}
    image = blocks["function"]["image"]["result"]
    assert image == ["${REGISTRY}${name}:${release_tag()}"]
    release_tag = blocks["function"]["release_tag"]["result"]
    assert "commit()" in release_tag and "timestamp()" in release_tag
    tags = [target["tags"] for target in blocks["target"].values() if "tags" in target]
    assert tags and not any("latest" in tag for tag in tags)
    assert "validation" not in blocks["variable"]["REVISION"], "buildx 0.13 rejects validation blocks"
    assert "REVISION" in blocks["function"]["commit"]["result"]


def test_dockerignore_keeps_local_state_and_secrets_out():
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "the build context is an allow-list"
    allowed = {pattern[1:] for pattern in patterns if pattern.startswith("!")}
    assert allowed == {
        "pyproject.toml",
        "uv.lock",
        "dagster.yaml",
        "workspace.yaml",
        "deploy/docker/",
        "src/",
    }
    for never in ("**/.venv", "**/__pycache__", "**/.dagster_home", "**/target", "**/*.env"):
        assert never in patterns
    assert "environments/*.env" in (ROOT / ".gitignore").read_text().splitlines()


# ---- rendered, not edited --------------------------------------------------------------------


def test_every_deployment_file_is_rendered_from_the_location_tables():
    """What `uv run render-deploy` writes is what is committed (run it and commit after a change)."""
    done = subprocess.run(
        [str(TOOLS / "render-deploy"), "--check"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr


def test_render_check_fails_with_a_diff_on_a_hand_edit(tmp_path):
    copy = tmp_path / "repo"
    for relative in ["pyproject.toml", "uv.lock", "deploy/templates", *render_deploy.render(ROOT)]:
        source, target = ROOT / relative, copy / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy)(source, target)
    for pyproject in ROOT.glob("src/*/pyproject.toml"):
        (copy / pyproject.relative_to(ROOT)).parent.mkdir(parents=True)
        shutil.copy(pyproject, copy / pyproject.relative_to(ROOT))
    compose_text = (copy / "compose.yml").read_text()
    (copy / "compose.yml").write_text(compose_text.replace("name: dagster-platform", "name: edited"))
    (copy / "Dockerfile.stale").write_text("FROM scratch\n")
    done = subprocess.run(
        [str(TOOLS / "render-deploy"), "--check"], cwd=copy, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    assert "-name: edited\n+name: dagster-platform" in done.stdout
    assert "--- a/Dockerfile.stale" in done.stdout
    assert "run `uv run render-deploy` and commit the result" in done.stderr


@pytest.mark.parametrize("location", LOCATIONS, ids=lambda location: location.name)
def test_env_template_lists_what_the_location_reads(location):
    """What the location's code and dbt read, plus the warehouse settings, are in its env template."""
    reads = env_reads(location.member_dir / location.name) | set(WarehouseSettings.ENVIRONMENT.values())
    missing = sorted(reads - set(NOT_CONFIGURATION) - set(template(location.name)))
    assert missing == [], f"environments/{location.name}.env.template misses {missing}"


DAGSTER_SERVICES = ("migrate", "webserver", "daemon", *(location.name for location in LOCATIONS))


def test_every_instance_variable_reaches_every_service_that_runs_dagster(compose):
    """Runs execute inside the code servers: dagster.yaml's variables reach every Dagster process
    from the platform's env file, mounted as a secret and read by run-with-env, never as variables
    in a container's configuration."""
    variables = instance_env_vars(instance_config())
    assert variables, "dagster.yaml reads its storage settings from the environment"
    assert variables <= set(template("platform"))
    for name in DAGSTER_SERVICES:
        service = compose["services"][name]
        assert {"source": "platform_env", "target": "platform.env"} in [
            {key: secret[key] for key in ("source", "target")} for secret in service["secrets"]
        ], name
        assert service["command"][:2] == ["run-with-env", "/run/secrets/platform.env"], name
        assert not variables & set(service.get("environment", {})), name
        assert "env_file" not in compose_file()["services"][name], name


def test_each_service_gets_only_its_own_credentials(compose):
    """A location's secret reaches that location's code server and Postgres (which creates its role)
    only; the superuser's reaches Postgres only."""
    holders: dict[str, set[str]] = {}
    for name, service in compose["services"].items():
        for secret in service.get("secrets", []):
            holders.setdefault(secret["source"], set()).add(name)
    for location in LOCATIONS:
        assert holders[f"{location.name}_env"] == {location.name, "postgres"}
    assert holders["postgres_env"] == {"postgres"}
    assert compose["services"]["postgres"]["volumes"][0]["target"] == "/var/lib/postgresql"
    assert not any("environments" in str(volume) for volume in compose["services"]["postgres"]["volumes"])


@pytest.mark.parametrize("location", LOCATIONS, ids=lambda location: location.name)
def test_a_location_image_names_itself_for_its_runs(location, compose):
    """DAGSTER_CURRENT_IMAGE (the image run containers start from) is set in the image from the
    reference bake and compose build it under: it follows a rolling update of the code server."""
    final = location_dockerfile(location).final
    assert any(
        instruction.arguments.startswith("DAGSTER_CURRENT_IMAGE=${IMAGE}") for instruction in final.all("ENV")
    )
    assert f"IMAGE={image_name(location)}:dev" in [instruction.arguments for instruction in final.all("ARG")]
    assert bake()["target"][location.name]["args"] == {"IMAGE": f'${{image("{image_name(location)}")[0]}}'}
    service = compose["services"][location.name]
    assert service["build"]["args"] == {"IMAGE": service["image"]}


def test_every_dagster_service_waits_for_the_schema_migration(compose):
    migrate = compose["services"]["migrate"]
    assert migrate["command"] == ["run-with-env", "/run/secrets/platform.env", "--", "migrate-instance"]
    assert migrate["image"] == compose["services"]["webserver"]["image"]
    for name in DAGSTER_SERVICES[1:]:
        condition = compose["services"][name]["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully", name


def test_the_platform_image_is_built_once(compose):
    builders = [name for name, service in compose["services"].items() if "build" in service]
    assert sorted(builders) == sorted(["webserver", *(location.name for location in LOCATIONS)])


def test_every_template_variable_is_empty_and_explained():
    for path in sorted((ROOT / "environments").glob("*.env.template")):
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines):
            if line and not line.startswith("#"):
                name, _, value = line.partition("=")
                assert value == "", f"{path.name}: {name} must be empty in a template"
                assert lines[number - 1].startswith("# "), f"{path.name}: {name} needs a line of explanation"


def test_images_are_pinned_multi_stage_and_non_root():
    for name in DOCKERFILES:
        parsed = dockerfile(name)
        assert PINNED_PYTHON.match(parsed.args["PYTHON_IMAGE"]), name
        assert PINNED_UV.match(parsed.args["UV_IMAGE"]), name
        # A location with Node programs builds them in a stage of their own.
        node = any(f"Dockerfile.{loc.short_name}" == name and loc.node_project for loc in LOCATIONS)
        extra = ["node"] if node else []
        assert [stage.name for stage in parsed.stages] == ["uv", *extra, "builder", "runtime"], name
        (user,) = [instruction.arguments for instruction in parsed.final.all("USER")]
        assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", user), f"{name}: USER {user} is not a numeric non-root user"
        assert parsed.final.all("HEALTHCHECK"), name
        labels = parsed.final.labels()
        for key in ("title", "description", "version", "revision", "created", "source"):
            assert f"org.opencontainers.image.{key}" in labels, f"{name}: label {key}"


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dependency_layer_is_built_from_the_lock_and_every_member_pyproject(name):
    """Every member's pyproject and the lock are copied before the first install, sources after."""
    builder = dockerfile(name).stage("builder")
    copies_and_runs = [i for i in builder.instructions if i.keyword in {"COPY", "RUN"}]
    first_run = next(
        index for index, instruction in enumerate(copies_and_runs) if instruction.keyword == "RUN"
    )
    sources = [
        source
        for instruction in copies_and_runs[:first_run]
        if instruction.keyword == "COPY" and not instruction.arguments.startswith("--from")
        for source in instruction.arguments.split()[:-1]
    ]
    members = sorted(path.parent.relative_to(ROOT) for path in ROOT.glob("src/*/pyproject.toml"))
    expected = ["pyproject.toml", "uv.lock", *(f"{member}/pyproject.toml" for member in members)]
    assert sorted(sources) == sorted(expected), f"{name}: copied before the first RUN: {sources}"


def test_marts_image_prepares_the_dbt_manifest_at_build_time():
    builder = dockerfile("Dockerfile.marts").stage("builder")
    (prepare,) = [run.shell for run in builder.run_commands() if "marts.project" in run.shell]
    assert prepare == "/opt/venv/bin/python -m marts.project"
    assert (ROOT / "src/marts/marts/project.py").is_file()


def test_ci_workflow_tests_pull_requests_and_bakes_main():
    workflow = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as a boolean
    assert "pull_request" in triggers and triggers["push"]["branches"] == ["main"]
    test_steps = [step.get("run") for step in workflow["jobs"]["test"]["steps"]]
    assert "uv sync --frozen" in test_steps and "uv run pytest" in test_steps
    release = workflow["jobs"]["release"]
    assert "refs/heads/main" in release["if"] and release["needs"] == "test"
    (bake_step,) = [
        step for step in release["steps"] if step.get("uses", "").startswith("docker/bake-action")
    ]
    assert bake_step["env"]["REVISION"] == "${{ github.sha }}"  # the tag's commit part (docker-bake.hcl)
    assert bake_step["with"]["push"] is True
    assert bake_step["with"]["files"] == "docker-bake.hcl", "without it bake also reads compose.yml"


# ---- the postgres init script's own errors ----------------------------------------------------


def test_init_script_names_a_missing_env_file(tmp_path):
    done = run_init_script(tmp_path)
    assert done.returncode != 0
    first = LOCATIONS[0].name
    assert f"{tmp_path}/{first}.env is missing (create it from {first}.env.template)" in done.stderr


def test_init_script_refuses_two_warehouses(tmp_path):
    (tmp_path / "ingest_raw.env").write_text("WAREHOUSE_USER=a\nWAREHOUSE_PASSWORD=x\nWAREHOUSE_DB=one\n")
    (tmp_path / "marts.env").write_text("WAREHOUSE_USER=b\nWAREHOUSE_PASSWORD=y\nWAREHOUSE_DB=two\n")
    done = run_init_script(tmp_path)
    assert done.returncode != 0
    assert "WAREHOUSE_DB differs: 'one' (ingest_raw.env) vs 'two' (marts.env)" in done.stderr


# ---- scaling out: runs in containers of their own, Swarm, Kubernetes ---------------------------

DAGSTER_HOME = "/opt/dagster/dagster_home"
RUN_CONTAINERS_HOME = "/opt/dagster/dagster_home_run_containers"
SWARM_HOME = "/opt/dagster/dagster_home_swarm"
DOCKER_SOCKET = "/var/run/docker.sock"


@pytest.fixture(scope="module")
def run_containers(tmp_path_factory) -> dict:
    """compose.yml with compose.run-containers.yml, as Compose resolves them (project issue12-cfg)."""
    return compose_config(
        tmp_path_factory.mktemp("run-containers"),
        "compose.run-containers.yml",
        env={"DOCKER_GID": "12345", "COMPOSE_PROJECT_NAME": "issue12-cfg"},
    )


def code_server_command(location) -> list[str]:
    return location_dockerfile(location).final.exec_form("CMD")


def mounts_docker_socket(service: dict) -> bool:
    return any(
        (volume.get("source") if isinstance(volume, dict) else volume.split(":")[0]) == DOCKER_SOCKET
        for volume in service.get("volumes", [])
    )


def test_platform_image_carries_its_instance_homes():
    """The other homes are dagster.yaml plus a run launcher block, nothing else."""
    runs = [run.shell for run in dockerfile("Dockerfile.platform").final.run_commands()]
    homes = ((RUN_CONTAINERS_HOME, "run-launcher.yaml"), (SWARM_HOME, "swarm-instance.yaml"))
    for home, launcher in homes:
        (build_home,) = [" ".join(shell.split()) for shell in runs if home in shell]
        assert f"cat {DAGSTER_HOME}/dagster.yaml /opt/dagster/{launcher} > {home}/dagster.yaml" in build_home
    for name in ("Dockerfile.platform", *(f"Dockerfile.{loc.short_name}" for loc in LOCATIONS)):
        copies = [i.arguments for i in dockerfile(name).final.all("COPY")]
        tools = "deploy/docker/run-with-env deploy/docker/migrate-instance"
        assert any(copy.startswith(tools) for copy in copies), name
    assert os.access(ROOT / "deploy/docker/run-with-env", os.X_OK)


def test_the_platform_image_installs_every_dependency_of_shared():
    """shared goes in with --no-deps (no location's dependencies come with it): the dependency layer
    must cover what the alerts watcher imports, the packages it names and the requirement files it
    reads (`-r <pyproject>`)."""
    import itertools
    import tomllib

    from packaging.requirements import Requirement

    def dependencies(pyproject: str) -> list[str]:
        return tomllib.loads((ROOT / pyproject).read_text())["project"]["dependencies"]

    declared = dependencies("src/shared/pyproject.toml")
    runs = " ".join(run.shell for run in dockerfile("Dockerfile.platform").stage("builder").run_commands())
    words = runs.split("uv pip install")[1].split()
    named = [word.strip('"') for word in words if re.fullmatch(r'"?[A-Za-z][\w.-]*(\[[\w,]+\])?"?', word)]
    read = [dep for flag, path in itertools.pairwise(words) if flag == "-r" for dep in dependencies(path)]
    installed = {Requirement(requirement).name for requirement in named + read}
    assert {Requirement(dep).name for dep in declared} <= installed


def instance_home_config(tmp_path, block: str, schema_of: dict[str, object]) -> dict[str, dict]:
    """dagster.yaml plus a block of deploy/docker (as the platform image builds a home), read by Dagster:
    the rest of dagster.yaml unchanged, and each key of `schema_of` whose module and class are given
    (run_launcher, compute_logs) processed against its schema; key -> processed config."""
    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config

    base = (ROOT / "dagster.yaml").read_text()
    (tmp_path / "dagster.yaml").write_text(base + (ROOT / "deploy/docker" / block).read_text())
    config, _ = dagster_instance_config(str(tmp_path), "dagster.yaml")
    assert {key: config[key] for key in instance_config()} == instance_config(), "the rest is unchanged"
    processed = {}
    for key, (module, cls, schema) in schema_of.items():
        assert (config[key]["module"], config[key]["class"]) == (module, cls)
        result = process_config(schema, config[key]["config"])
        assert result.success, result.errors
        processed[key] = result.value
    return processed


def test_run_containers_instance_is_valid_for_dagster(tmp_path, monkeypatch):
    from dagster_docker.utils import DOCKER_CONFIG_SCHEMA

    monkeypatch.setenv("DAGSTER_RUN_NETWORK", "issue12-net")
    launcher = instance_home_config(
        tmp_path,
        "run-launcher.yaml",
        {"run_launcher": ("dagster_docker", "DockerRunLauncher", DOCKER_CONFIG_SCHEMA)},
    )["run_launcher"]
    assert launcher["network"] == "issue12-net"
    # No value goes from the daemon's environment into a run container's configuration.
    assert "env_vars" not in launcher
    assert launcher["container_kwargs"]["auto_remove"] is True


def test_swarm_instance_is_valid_for_dagster(tmp_path, monkeypatch):
    from dagster_docker_swarm.run_launcher import SWARM_CONFIG_SCHEMA

    from shared.compute_logs import PostgresComputeLogManager

    settings = {
        "DAGSTER_RUN_NETWORK": "issue20-net",
        "DAGSTER_PG_HOST": "postgres",
        "DAGSTER_PG_PORT": "5432",
    }
    settings |= {f"DAGSTER_PG_{name}": "dagster" for name in ("USER", "PASSWORD", "DB")}
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    processed = instance_home_config(
        tmp_path,
        "swarm-instance.yaml",
        {
            "run_launcher": ("dagster_docker_swarm", "SwarmRunLauncher", SWARM_CONFIG_SCHEMA),
            "compute_logs": (
                "shared.compute_logs",
                "PostgresComputeLogManager",
                PostgresComputeLogManager.config_type(),
            ),
        },
    )
    launcher = processed["run_launcher"]
    assert launcher["networks"] == ["issue20-net"]
    # No value goes from the daemon's environment or the launcher's config into a run's service.
    assert not {"env_vars", "secrets", "mounts", "registry"} & set(launcher)
    kwargs = launcher["service_kwargs"]
    assert kwargs["healthcheck"] == {"Test": ["NONE"]}
    assert kwargs["stop_grace_period"] == 60 * 10**9
    # Step output goes to Dagster's own database, the one `storage` names.
    assert processed["compute_logs"]["postgres_db"]["hostname"] == "postgres"


def test_default_compose_runs_in_the_code_servers_with_no_socket(compose):
    for name, service in compose["services"].items():
        assert not mounts_docker_socket(service), name
        assert "DAGSTER_HOME" not in service.get("environment", {}), name


def run_container_context(location, volume_prefix: str) -> dict:
    """What a location's code server hands DockerRunLauncher: an entrypoint reading the env files on
    its own credentials volume, and mounts; no values."""
    return {
        "healthcheck": {"test": ["NONE"]},  # the image's check probes a code server, which a run is not
        "entrypoint": [
            "run-with-env", "/run/location/platform.env", f"/run/location/{location.name}.env", "--"
        ],
        "volumes": [f"{volume_prefix}_{location.name}-credentials:/run/location:ro"],
    }  # fmt: skip


def credentials_copy_loop(command: list[str]) -> list[str]:
    """The locations whose env files the daemon's command copies into their credentials volumes."""
    assert command[:2] == ["sh", "-c"]
    copies = re.findall(
        r"install -m 0400 /run/secrets/platform\.env /run/secrets/(\w+)\.env /run/location/(\w+)/ && ",
        command[2],
    )
    assert all(secret == volume for secret, volume in copies), copies
    return [secret for secret, _ in copies]


@pytest.mark.parametrize("location", LOCATIONS, ids=lambda location: location.name)
def test_run_containers_override_gives_each_location_its_own_credentials_volume(location, run_containers):
    service = run_containers["services"][location.name]
    environment = service["environment"]
    assert "DAGSTER_CURRENT_IMAGE" not in environment, "the image names itself"
    context = json.loads(environment["DAGSTER_CONTAINER_CONTEXT"])["docker"]["container_kwargs"]
    expected = run_container_context(location, "issue12-cfg")
    assert context["entrypoint"] == expected["entrypoint"]
    assert context["healthcheck"] == expected["healthcheck"]
    assert context["volumes"] == [
        *expected["volumes"],
        f"issue12-cfg_dagster-storage:{RUN_CONTAINERS_HOME}/storage",
    ]
    assert not any("PASSWORD" in value for value in environment.values())
    assert not mounts_docker_socket(service)
    volume = run_containers["volumes"][f"{location.name}-credentials"]
    assert volume["driver_opts"]["type"] == "tmpfs", "credentials never on the host's disk"
    daemon = run_containers["services"]["daemon"]
    mounted = {mount["source"]: mount["target"] for mount in daemon["volumes"]}
    assert mounted[f"{location.name}-credentials"] == f"/run/location/{location.name}"
    secrets = {secret["target"]: secret["source"] for secret in daemon["secrets"]}
    assert run_containers["secrets"][secrets[f"{location.name}.env"]]["file"].endswith(
        f"/environments/{location.name}.env"
    )
    assert run_containers["secrets"][secrets["platform.env"]]["file"].endswith("/environments/platform.env")


def test_run_containers_daemon_fills_every_locations_volume(run_containers):
    command = run_containers["services"]["daemon"]["command"]
    assert credentials_copy_loop(command) == [location.name for location in LOCATIONS]
    assert command[2].endswith("exec " + " ".join(compose_file()["services"]["daemon"]["command"]))


def test_run_containers_override_gives_the_socket_to_the_daemon_and_webserver_only(run_containers):
    holders = {name for name, service in run_containers["services"].items() if mounts_docker_socket(service)}
    assert holders == {"daemon", "webserver"}
    for name in holders:
        service = run_containers["services"][name]
        assert service["environment"]["DAGSTER_HOME"] == RUN_CONTAINERS_HOME
        assert service["environment"]["DAGSTER_RUN_NETWORK"] == "issue12-cfg_default"
        assert service["group_add"] == ["12345"]
        assert f"{RUN_CONTAINERS_HOME}/storage" in [volume["target"] for volume in service["volumes"]]


def test_run_with_env_loads_its_files_in_order(tmp_path):
    env_file = tmp_path / "ingest_raw.env"
    env_file.write_text("# comment\nWAREHOUSE_USER=ingest\nWAREHOUSE_PASSWORD=p=w d\n")
    platform = tmp_path / "platform.env"
    platform.write_text("DAGSTER_PG_PASSWORD=secret\nWAREHOUSE_USER=platform\n")
    script = "import json, os, sys; print(json.dumps([os.environ[name] for name in sys.argv[1:]]))"
    done = subprocess.run(
        [str(ROOT / "deploy/docker/run-with-env"), str(platform), str(env_file), "--",
         sys.executable, "-c", script, "DAGSTER_PG_PASSWORD", "WAREHOUSE_USER", "WAREHOUSE_PASSWORD"],
        env={"PATH": os.environ["PATH"]}, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["secret", "ingest", "p=w d"]


def test_run_with_env_names_a_missing_file(tmp_path):
    done = subprocess.run(
        [str(ROOT / "deploy/docker/run-with-env"), str(tmp_path / "marts.env"), "--", "true"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode != 0
    assert f"cannot read env file {tmp_path / 'marts.env'}: No such file or directory" in done.stderr


def test_run_with_env_names_a_bad_line(tmp_path):
    env_file = tmp_path / "marts.env"
    env_file.write_text("WAREHOUSE_USER=marts\nexport WAREHOUSE_DB\n")
    done = subprocess.run(
        [str(ROOT / "deploy/docker/run-with-env"), str(env_file), "--", "true"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode != 0
    assert f"{env_file} line 2: expected NAME=value" in done.stderr


def tag_variable(location) -> str:
    return f"{location.name.upper()}_TAG"


@pytest.mark.parametrize("location", LOCATIONS, ids=lambda location: location.name)
def test_stack_file_agrees_with_bake_and_compose(location):
    stack = stack_file()
    service = stack["services"][location.name]
    tag = tag_variable(location)
    assert service["image"] == f"${{REGISTRY:-}}{image_name(location)}:${{{tag}:?}}"
    assert "DAGSTER_CURRENT_IMAGE" not in service["environment"], "the image names itself"
    assert service["command"] == [
        "run-with-env", "/run/secrets/platform.env", f"/run/secrets/{location.name}.env", "--",
        "migrate-instance", "--", *code_server_command(location),
    ]  # fmt: skip
    targets = {secret["source"]: secret["target"] for secret in service["secrets"]}
    assert set(targets.values()) == {"platform.env", f"{location.name}.env"}
    for source, target in targets.items():
        assert stack["secrets"][source]["file"] == f"environments/{target}"
    # Its runs get the same two secrets, by their Swarm names, and read them as the code server does.
    context = json.loads(service["environment"]["DAGSTER_CONTAINER_CONTEXT"])["docker_swarm"]
    assert {(s["secret_name"], s["filename"]) for s in context["secrets"]} == {
        (stack["secrets"][source]["name"], target) for source, target in targets.items()
    }
    assert context["service_kwargs"]["command"] == service["command"][:4]
    assert not {name for name in stack["volumes"] if location.name in name}, "no credentials on a volume"
    update = service["deploy"]["update_config"]
    assert (update["order"], update["failure_action"]) == ("start-first", "rollback")
    assert service["deploy"]["resources"]["limits"]
    assert service["deploy"]["placement"]["constraints"] == ["node.role == manager"], "drained with no run"
    assert "volumes" not in service, "code servers mount nothing, the socket least of all"


def test_stack_file_platform_services():
    stack = stack_file()
    services = stack["services"]
    platform_cmd = dockerfile("Dockerfile.platform").final.exec_form("CMD")
    assert services["webserver"]["command"] == [
        "run-with-env",
        "/run/secrets/platform.env",
        "--",
        "migrate-instance",
        "--",
        *platform_cmd,
    ]
    assert services["daemon"]["command"] == [
        "run-with-env", "/run/secrets/platform.env", "--", "migrate-instance", "--",
        *compose_file()["services"]["daemon"]["command"][3:],
    ]  # fmt: skip
    network = stack["networks"]["platform"]
    assert network["driver"] == "overlay" and network["attachable"] is True
    for name in ("webserver", "daemon"):
        assert services[name]["image"] == f"${{REGISTRY:-}}{PLATFORM_IMAGE}:${{PLATFORM_TAG:?}}"
        assert services[name]["environment"]["DAGSTER_HOME"] == SWARM_HOME
        assert services[name]["environment"]["DAGSTER_RUN_NETWORK"] == network["name"]
        # They create and remove run services: a manager's API, through a manager's socket.
        assert services[name]["volumes"] == [f"{DOCKER_SOCKET}:{DOCKER_SOCKET}"]
        assert services[name]["deploy"]["placement"]["constraints"] == ["node.role == manager"]
        assert {s["target"] for s in services[name]["secrets"]} == {"platform.env"}, "no location's"
    assert services["webserver"]["ports"] == [
        {"target": 3000, "published": "${WEBSERVER_PORT:-3000}", "mode": "host"}
    ]
    assert {service["deploy"]["endpoint_mode"] for service in services.values()} == {"dnsrr"}
    postgres = services["postgres"]
    assert postgres["image"] == compose_file()["services"]["postgres"]["image"]
    (init,) = postgres["configs"]
    assert stack["configs"][init["source"]]["file"] == "deploy/postgres/init-platform.sh"
    assert init["target"] == "/docker-entrypoint-initdb.d/10-init-platform.sh"
    assert {s["target"] for s in postgres["secrets"]} >= {f"{loc.name}.env" for loc in LOCATIONS}
    holders = {name for name, service in services.items() if mounts_docker_socket(service)}
    assert holders == {"webserver", "daemon"}


def test_stack_file_is_valid_for_docker_stack(tmp_path):
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI to render the stack file")
    project = compose_project(tmp_path / "project").parent
    shutil.copy(ROOT / "docker-stack.yml", project)
    (project / "deploy/postgres").mkdir(parents=True)
    shutil.copy(ROOT / "deploy/postgres/init-platform.sh", project / "deploy/postgres")
    tags = {tag_variable(loc): f"issue12-{loc.short_name}" for loc in LOCATIONS}
    env = os.environ | tags | {"PLATFORM_TAG": "issue12-platform", "DOCKER_GID": "12345"}
    env |= {"DOCKER_CONFIG": str(tmp_path / "docker-config")}
    done = subprocess.run(
        [docker, "stack", "config", "-c", "docker-stack.yml"],
        cwd=project, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if "unknown command" in done.stderr or "is not a docker command" in done.stderr:
        pytest.skip(f"this docker CLI cannot render stack files: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    rendered = yaml.safe_load(done.stdout)["services"]
    for location in LOCATIONS:
        assert rendered[location.name]["image"] == f"{image_name(location)}:issue12-{location.short_name}"
    assert rendered["daemon"]["user"] == "10001:12345"
    missing = subprocess.run(
        [docker, "stack", "config", "-c", "docker-stack.yml"],
        cwd=project, env={k: v for k, v in env.items() if k != "PLATFORM_TAG"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert missing.returncode != 0 and "PLATFORM_TAG" in missing.stderr


@pytest.mark.parametrize("location", LOCATIONS, ids=lambda location: location.name)
def test_helm_values_agree_with_the_other_deployment_files(location):
    values = helm_values()
    deployments = {d["name"]: d for d in values["dagster-user-deployments"]["deployments"]}
    assert set(deployments) == {loc.distribution for loc in LOCATIONS}
    deployment = deployments[location.distribution]
    assert deployment["image"]["repository"].endswith(f"/{image_name(location)}")
    assert deployment["port"] == location.port
    assert deployment["codeServerArgs"] == ["-m", location.module]
    assert deployment["envSecrets"] == [{"name": f"{image_name(location)}-env"}]
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": True}


@pytest.mark.parametrize("location", LOCATIONS, ids=lambda location: location.name)
def test_a_run_gets_the_same_cpu_and_memory_in_every_deployment(location, run_containers):
    """The run pods' resources in the Helm values are what Swarm reserves and limits for the
    location's run services and what compose's run containers are limited to."""
    deployments = helm_values()["dagster-user-deployments"]["deployments"]
    (pod,) = [d["resources"] for d in deployments if d["name"] == location.distribution]
    limits, requests = pod["limits"], pod["requests"]

    def cpus(quantity: str) -> int:
        return int(parse_quantity(quantity) * 10**9)

    def memory(quantity: str) -> int:
        return int(parse_quantity(quantity))

    swarm = json.loads(stack_file()["services"][location.name]["environment"]["DAGSTER_CONTAINER_CONTEXT"])
    assert swarm["docker_swarm"]["service_kwargs"]["resources"] == {
        "Limits": {"NanoCPUs": cpus(limits["cpu"]), "MemoryBytes": memory(limits["memory"])},
        "Reservations": {"NanoCPUs": cpus(requests["cpu"]), "MemoryBytes": memory(requests["memory"])},
    }
    environment = run_containers["services"][location.name]["environment"]
    container = json.loads(environment["DAGSTER_CONTAINER_CONTEXT"])["docker"]["container_kwargs"]
    assert (container["nano_cpus"], container["mem_limit"], container["mem_reservation"]) == (
        cpus(limits["cpu"]),
        memory(limits["memory"]),
        memory(requests["memory"]),
    )


def test_run_size_converts_kubernetes_quantities():
    size = render_deploy.RunSize(
        cpu_request="250m", memory_request="512Mi", cpu_limit="1.5", memory_limit="2G"
    )
    assert size.swarm() == {
        "Limits": {"NanoCPUs": 1_500_000_000, "MemoryBytes": 2_000_000_000},
        "Reservations": {"NanoCPUs": 250_000_000, "MemoryBytes": 536_870_912},
    }
    assert size.container() == {
        "nano_cpus": 1_500_000_000,
        "mem_limit": 2_000_000_000,
        "mem_reservation": 536_870_912,
    }


def test_a_location_s_run_table_sizes_its_runs_only():
    """A location's [tool.platform.location.run] overrides the root's keys for its runs alone; a bad
    quantity or key is refused naming the file and the key."""
    big, other = LOCATIONS[0], LOCATIONS[1:]
    resized = dataclasses.replace(big, run=(("memory-limit", "6Gi"),))
    rendered = render_deploy.render(ROOT, [resized, *other])
    values = yaml.safe_load(rendered["deploy/helm/values.yaml"])
    limits = {d["name"]: d["resources"]["limits"] for d in values["dagster-user-deployments"]["deployments"]}
    root_limit = render_deploy.read_platform(ROOT).run.memory_limit
    assert limits[big.distribution]["memory"] == "6Gi"
    assert {limits[location.distribution]["memory"] for location in other} == {root_limit}
    stack = yaml.safe_load(rendered["docker-stack.yml"])
    context = json.loads(stack["services"][big.name]["environment"]["DAGSTER_CONTAINER_CONTEXT"])
    assert context["docker_swarm"]["service_kwargs"]["resources"]["Limits"]["MemoryBytes"] == 6 * 2**30

    for bad, complaint in [(("memory-limit", "6 GB"), "memory-limit = '6 GB' is not a Kubernetes quantity"),
                           (("memory", "6Gi"), "unknown key 'memory'")]:  # fmt: skip
        with pytest.raises(render_deploy.PlatformTableError, match=complaint) as refused:
            render_deploy.render(ROOT, [dataclasses.replace(big, run=(bad,)), *other])
        assert str(big.member_dir / "pyproject.toml") in str(refused.value)


def test_helm_values_platform_launcher_and_storage():
    values = helm_values()
    for service in ("dagsterWebserver", "dagsterDaemon"):
        assert values[service]["image"]["repository"].endswith(f"/{PLATFORM_IMAGE}")
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["postgresql"]["enabled"] is False
    assert values["generatePostgresqlPasswordSecret"] is False
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["type"] == "QueuedRunCoordinator"
    queued = coordinator["config"]["queuedRunCoordinator"]
    runs = instance_config()["concurrency"]["runs"]
    assert queued["maxConcurrentRuns"] == runs["max_concurrent_runs"]
    assert queued["tagConcurrencyLimits"] == runs["tag_concurrency_limits"]
    retries = instance_config()["run_retries"]
    assert values["dagsterDaemon"]["runRetries"] == {
        "enabled": retries["enabled"],
        "maxRetries": retries["max_retries"],
        "retryOnAssetOrOpFailure": retries["retry_on_asset_or_op_failure"],
    }
    tags = {deployment["image"]["tag"] for deployment in values["dagster-user-deployments"]["deployments"]}
    assert tags == {values["dagsterWebserver"]["image"]["tag"]} == {"<yyyymmdd>-<commit>"}
