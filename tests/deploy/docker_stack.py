"""The real Docker engine for the deployment tests: release images built once with `docker buildx
bake`, env files written from the templates with generated passwords, compose projects brought up
and down under a name of their own, and asks to the webserver as the UI makes them.

Everything created is named after `name_prefix()` (images `<prefix>/dagster-…`, compose projects
`<prefix>-…`, and so their containers, networks and volumes), so that stacks of other checkouts on the
same engine never collide.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from devtools import asset_runs
from devtools.locations import discover
from devtools.ports import free_port
from devtools.webserver import location_states

ROOT = Path(__file__).resolve().parents[2]
BAKE_FILE = ROOT / "docker-bake.hcl"
COMPOSE_FILE = ROOT / "compose.yml"
TEMPLATES = ROOT / "environments"
BAKE_TIMEOUT_SECONDS = 1800
UP_TIMEOUT_SECONDS = 600
DOCKER_TIMEOUT_SECONDS = 120
WAREHOUSE_DB = "warehouse"
DAGSTER_DB = "dagster"
DAGSTER_ROLE = "dagster"


class DockerError(RuntimeError):
    pass


def engine_unavailable() -> str | None:
    """Why no Docker engine can be used (one line), or None when `docker info` answers."""
    try:
        done = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=30
        )
    except FileNotFoundError:
        return "no docker CLI on PATH"
    except subprocess.TimeoutExpired:
        return "docker info did not answer within 30 s"
    if done.returncode != 0 or not done.stdout.strip():
        reason = (done.stderr.strip().splitlines() or ["no server version"])[-1]
        return f"no Docker engine answers: {reason}"
    return None


def name_prefix() -> str:
    """DOCKER_TEST_PREFIX, else the checkout's git branch (e.g. issue-8), as a Docker-safe name."""
    prefix = os.environ.get("DOCKER_TEST_PREFIX")
    if not prefix:
        done = subprocess.run(
            ["git", "rev-parse", "--abbrev-ref", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        prefix = done.stdout.strip() if done.returncode == 0 else "pytest"
    return re.sub(r"[^a-z0-9]+", "-", prefix.lower()).strip("-") or "pytest"


def docker(*args: str, timeout: float = DOCKER_TIMEOUT_SECONDS, check: bool = True, **kwargs):
    """Run `docker …`; raise DockerError with its stderr when it fails (unless check=False)."""
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and done.returncode != 0:
        raise DockerError(f"docker {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return done


def docker_socket_group() -> str:
    """The group owning the engine's socket: what compose.run-containers.yml adds its services to."""
    socket = Path("/var/run/docker.sock")
    return str(socket.stat().st_gid) if socket.exists() else "0"


# ---- images ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Images:
    registry: str  # prefix of every image name, e.g. "issue-8/"
    tag: str  # <yyyymmdd>-<commit>
    revision: str  # the full commit
    by_target: dict[str, str]  # bake target -> image reference

    def compose_env(self) -> dict[str, str]:
        """What compose.yml reads to run these images instead of building its own."""
        return {"REGISTRY": self.registry, "TAG": self.tag}


def head_commit() -> str:
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise DockerError(f"git rev-parse HEAD failed in {ROOT}: {done.stderr.strip()}")
    return done.stdout.strip()


def bake_command(*args: str) -> list[str]:
    """The release command of the README, with extra arguments."""
    return ["docker", "buildx", "bake", "-f", str(BAKE_FILE.name), *args]


def bake_images(registry: str, log: Path, revision: str | None = None) -> Images:
    """Build every release image into the engine (`--load`), as the README's release command does;
    the build's output goes to `log`."""
    revision = revision or head_commit()
    env = os.environ | {"REGISTRY": registry, "REVISION": revision}
    printed = subprocess.run(
        bake_command("--print"), cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    if printed.returncode != 0:
        raise DockerError(f"docker buildx bake --print failed:\n{printed.stderr[-4000:]}")
    targets = json.loads(printed.stdout)["target"]
    by_target = {name: target["tags"][0] for name, target in targets.items()}
    with log.open("w") as output:
        done = subprocess.run(
            bake_command("--load", "--progress", "plain"),
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            timeout=BAKE_TIMEOUT_SECONDS,
        )
    if done.returncode != 0:
        raise DockerError(f"docker buildx bake failed ({done.returncode}), end of {log}:\n{tail(log)}")
    (tag,) = {reference.rpartition(":")[2] for reference in by_target.values()}
    return Images(registry=registry, tag=tag, revision=revision, by_target=by_target)


def push_images(images: Images) -> None:
    """`docker push` every image to the registry its name starts with (a swarm's nodes pull them)."""
    for reference in images.by_target.values():
        docker("push", "--quiet", reference, timeout=600)


def tail(path: Path, characters: int = 4000) -> str:
    return path.read_text(errors="replace")[-characters:]


# ---- env files -------------------------------------------------------------------------------


def read_env_file(path: Path) -> dict[str, str]:
    """A compose env file: NAME=value lines, # comments; values taken as written."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value
    return values


def env_file_values(service: str, passwords: dict[str, str]) -> dict[str, str]:
    """What a user fills into environments/<service>.env.template for compose; an unknown
    variable in a template is an error, so a new one cannot go unnoticed."""
    known = {
        "POSTGRES_PASSWORD": passwords["postgres"],
        "DAGSTER_PG_HOST": "postgres",
        "DAGSTER_PG_PORT": "5432",
        "DAGSTER_PG_USER": DAGSTER_ROLE,
        "DAGSTER_PG_PASSWORD": passwords[DAGSTER_ROLE],
        "DAGSTER_PG_DB": DAGSTER_DB,
        "WAREHOUSE_HOST": "postgres",
        "WAREHOUSE_PORT": "5432",
        "WAREHOUSE_DB": WAREHOUSE_DB,
        "DBT_TARGET": "prod",
        "MARTS_DBT_ARTIFACTS_DIR": "",  # empty: the image's prepared artifacts
    }
    # The alerts watcher's settings: its defaults, but a webhook whose URL carries a token (a secret
    # that must show in no `docker inspect`); it points at the container's own closed port 9.
    known |= {name: "" for name in read_env_file(TEMPLATES / "alerts.env.template")}
    known["ALERTS_WEBHOOK_URL"] = f"http://127.0.0.1:9/hooks/{passwords['alerts']}"
    if service in passwords:  # a location: its own role, named after it, with its own password
        known |= {"WAREHOUSE_USER": service, "WAREHOUSE_PASSWORD": passwords[service]}
    template = TEMPLATES / f"{service}.env.template"
    unknown = [name for name in read_env_file(template) if name not in known]
    if unknown:
        raise DockerError(f"no test value for {', '.join(unknown)} listed in {template}")
    return {name: known[name] for name in read_env_file(template)}


def secret_values(env_files: dict[str, dict[str, str]]) -> set[str]:
    """The secrets among the values written to the env files: every password and the webhook URL."""
    return {
        value
        for values in env_files.values()
        for name, value in values.items()
        if value and ("PASSWORD" in name or name == "ALERTS_WEBHOOK_URL")
    }


def write_env_files(folder: Path) -> dict[str, dict[str, str]]:
    """environments/<service>.env for every template, into `folder` (never the repository), with a
    fresh password per role; service -> the values written."""
    folder.mkdir(parents=True, exist_ok=True)
    roles = ["postgres", DAGSTER_ROLE, "alerts", *(location.name for location in discover(ROOT))]
    passwords = {role: secrets.token_urlsafe(18) for role in roles}
    written = {}
    for template in sorted(TEMPLATES.glob("*.env.template")):
        service = template.name.removesuffix(".env.template")
        values = env_file_values(service, passwords)
        path = folder / f"{service}.env"
        path.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
        path.chmod(0o644)  # read by the postgres container's own user through the bind mount
        written[service] = values
    return written


def psql_rows(
    run: Callable[[list[str]], subprocess.CompletedProcess], query: str, database: str
) -> list[list[str]]:
    """Rows of `query`, run as the superuser by `run` (psql's argv in a stack's postgres container)."""
    done = run(["psql", "-U", "postgres", "-d", database, "-AtX", "-F", "\t", "-c", query])
    if done.returncode != 0:
        raise DockerError(f"psql failed: {done.stderr}")
    return [line.split("\t") for line in done.stdout.splitlines()]


# ---- compose ---------------------------------------------------------------------------------


class ComposeProject:
    """compose.yml of the repository (plus the override files `overrides`, e.g.
    compose.run-containers.yml) run as project `name`, with env files from `env_dir`, the images of
    `images` and the webserver published on a free host port."""

    def __init__(
        self,
        name: str,
        env_dir: Path,
        images: Images,
        webserver_port: int | None = None,
        overrides: tuple[str, ...] = (),
    ):
        self.name = name
        self.env_dir = env_dir
        self.images = images
        self.webserver_port = webserver_port or free_port()
        self.overrides = overrides
        self.env_files = write_env_files(env_dir)

    @classmethod
    def create(
        cls, folder: Path, images: Images, label: str = "stack", overrides: tuple[str, ...] = ()
    ) -> ComposeProject:
        name = f"{name_prefix()}-{label}-{uuid.uuid4().hex[:6]}"
        return cls(name, folder / "environments", images, overrides=overrides)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.webserver_port}"

    def env(self) -> dict[str, str]:
        return (
            os.environ
            | self.images.compose_env()
            | {
                "ENV_DIR": str(self.env_dir),
                "WEBSERVER_PORT": str(self.webserver_port),
                "DOCKER_GID": docker_socket_group(),
            }
        )

    def write_env_file(self, service: str, extra: dict[str, str] | None = None) -> None:
        """Rewrite one service's env file: the values first written, plus `extra`."""
        values = self.env_files[service] | (extra or {})
        (self.env_dir / f"{service}.env").write_text("".join(f"{k}={v}\n" for k, v in values.items()))

    def compose(self, *args: str, timeout: float = DOCKER_TIMEOUT_SECONDS, check: bool = True):
        """`docker compose -f compose.yml [-f override …] -p <name> …` from the repository root."""
        files = [argument for name in (COMPOSE_FILE.name, *self.overrides) for argument in ("-f", name)]
        return docker(
            "compose", *files, "-p", self.name, *args,
            timeout=timeout, check=check, cwd=ROOT, env=self.env(),
        )  # fmt: skip

    def up(self, *services: str, build: bool = False) -> float:
        """`up -d --wait` (every service healthy, or an error with the logs); seconds taken."""
        started = time.monotonic()
        args = ["up", "-d", "--wait", "--wait-timeout", str(UP_TIMEOUT_SECONDS)]
        done = self.compose(
            *args, *(["--build"] if build else []), *services, timeout=UP_TIMEOUT_SECONDS + 300, check=False
        )
        if done.returncode != 0:
            raise DockerError(
                f"compose up failed ({done.returncode}):\n{done.stderr[-3000:]}\n{self.logs()}"
                f"{self.name_resolution_problem()}"
            )
        return time.monotonic() - started

    def name_resolution_problem(self) -> str:
        """A note when service names do not resolve inside the project's network (Docker's embedded
        DNS): seen on a shared engine when `docker swarm init` or `leave` ran while a stack started."""
        probe = "import socket; socket.gethostbyname('postgres')"
        done = self.exec("webserver", "python", "-c", probe)
        if done.returncode == 0 or "Name or service not known" not in done.stderr:
            return ""
        return "\nInside the stack the name `postgres` does not resolve: Docker's embedded DNS failed."

    def recreate(self, service: str) -> None:
        """A new container for `service` (it reads its env files when it starts), healthy."""
        self.up("--force-recreate", "--no-deps", service)

    def down(self, volumes: bool = False) -> None:
        self.compose("down", "--timeout", "30", *(["--volumes"] if volumes else []), timeout=300)

    def logs(self, *services: str, lines: int = 40) -> str:
        done = self.compose("logs", "--no-color", "--tail", str(lines), *services, check=False)
        return done.stdout[-6000:]

    def services(self) -> list[dict]:
        """`compose ps --all` entries (Service, State, Health, ID, …)."""
        done = self.compose("ps", "--all", "--format", "json")
        text = done.stdout.strip()
        if text.startswith("["):
            return json.loads(text)
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def container(self, service: str) -> dict:
        """`docker inspect` of the service's container."""
        (entry,) = [entry for entry in self.services() if entry["Service"] == service]
        return json.loads(docker("inspect", entry["ID"]).stdout)[0]

    def exec(self, service: str, *argv: str, timeout: float = DOCKER_TIMEOUT_SECONDS):
        return self.compose("exec", "-T", service, *argv, timeout=timeout, check=False)

    def psql(self, query: str, database: str = WAREHOUSE_DB) -> list[list[str]]:
        """Rows of `query` run as the superuser inside the postgres container."""
        return psql_rows(lambda argv: self.exec("postgres", *argv), query, database)

    def volumes(self) -> list[str]:
        done = docker("volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={self.name}")
        return done.stdout.split()

    def wait_until_loaded(self, timeout: float = 300, first_start: bool = False) -> dict[str, dict]:
        """Every location LOADED without error over the webserver's GraphQL; their states. On a
        `first_start` a location in error fails at once: Dagster's schema is created before any
        code server starts (the `migrate` service), so no code server may lose a race for it."""
        deadline = time.monotonic() + timeout
        states: dict[str, dict] = {}
        while time.monotonic() < deadline:
            try:
                states = location_states(self.url)
            except OSError:
                states = {}
            if states and all(s["status"] == "LOADED" and not s["error"] for s in states.values()):
                return states
            failed = {name: state for name, state in states.items() if state["error"]}
            if first_start and failed:
                raise DockerError(f"a location is in error on a first start: {failed}\n{self.logs()}")
            time.sleep(1)
        raise DockerError(f"locations not loaded within {timeout:.0f} s: {states}\n{self.logs()}")

    def containers(self) -> list[dict]:
        """`docker inspect` of every container of the project, exited ones (migrate) included."""
        ids = docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={self.name}").stdout.split()
        return json.loads(docker("inspect", *ids).stdout) if ids else []


def materialize_everything(url: str, month: str) -> list[asset_runs.RunResult]:
    """Every location's assets through the webserver (ingest first, then marts; the month's
    partition), with the running sensors stopped first so that marts' automation does not launch the
    same models at the same time; `asset_runs.reset_sensor` restarts them."""
    locations = [location.name for location in discover(ROOT)]
    for location in locations:
        asset_runs.stop_running_sensors(url, location)
    return [run for location in locations for run in asset_runs.materialize_location(url, location, month)]


# ---- swarm -----------------------------------------------------------------------------------


def swarm_state() -> str:
    return docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip()


SWARM_NODES = ROOT.parent / "shared/docker-sandbox/swarm-nodes"


def swarm_nodes() -> list[dict]:
    """The swarm's nodes, ready or not: `docker node ls` entries (Hostname, ManagerStatus, ...)."""
    listed = docker("node", "ls", "--format", "json", check=False)
    return [json.loads(line) for line in listed.stdout.splitlines() if line.strip()]


def worker_nodes() -> list[str]:
    """Hostnames of the swarm's ready, active workers."""
    return [
        node["Hostname"]
        for node in swarm_nodes()
        if not node["ManagerStatus"] and node["Status"] == "Ready" and node["Availability"] == "Active"
    ]


def node_registry() -> str | None:
    """The registry the swarm's nodes pull from (`swarm-nodes registry`, e.g. 172.31.250.1:5000) when
    this machine's swarm has worker nodes; None for a single-node swarm."""
    if not SWARM_NODES.exists() or not worker_nodes():
        return None
    done = subprocess.run([str(SWARM_NODES), "registry"], capture_output=True, text=True, timeout=60)
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


@contextlib.contextmanager
def single_node_swarm() -> Iterator[None]:
    """The engine in swarm mode for the block: `docker swarm init` when it was not, and `leave`
    afterwards, so that the engine's networking is as it was found (compose stacks of other
    tests on the same engine depend on it)."""
    created = swarm_state() == "inactive"
    if created:
        docker("swarm", "init", "--advertise-addr", "127.0.0.1")
    try:
        yield
    finally:
        if created:
            docker("swarm", "leave", "--force")


class SwarmStack:
    """docker-stack.yml deployed as stack `name` from a copy in `folder` (env files written from the
    templates there, as Swarm secrets read them at deploy), the images of `images`, the webserver
    on a free host port."""

    def __init__(self, folder: Path, images: Images):
        self.name = f"{name_prefix()}-{uuid.uuid4().hex[:6]}"
        self.folder = folder
        self.images = images
        self.webserver_port = free_port()
        self.env_files = write_env_files(folder / "environments")
        self.extra_images: list[str] = []  # built by a test, removed with the stack
        shutil.copy(ROOT / "docker-stack.yml", folder)
        (folder / "deploy/postgres").mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "deploy/postgres/init-platform.sh", folder / "deploy/postgres")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.webserver_port}"

    @property
    def network(self) -> str:
        return f"{self.name}-platform"

    def service(self, name: str) -> str:
        return f"{self.name}_{name}"

    def env(self) -> dict[str, str]:
        tags = {f"{location.name.upper()}_TAG": self.images.tag for location in discover(ROOT)}
        return (
            os.environ
            | tags
            | {
                "REGISTRY": self.images.registry,
                "PLATFORM_TAG": self.images.tag,
                "STACK_NAME": self.name,
                "WEBSERVER_PORT": str(self.webserver_port),
                "DOCKER_GID": docker_socket_group(),
            }
        )

    def deploy(self, timeout: float = 420) -> None:
        """`docker stack deploy`, then every location served (see `wait_until_served`)."""
        docker(
            "stack", "deploy", "--resolve-image", "never", "-c", "docker-stack.yml", self.name,
            cwd=self.folder, env=self.env(), timeout=120,
        )  # fmt: skip
        self.wait_until_served(timeout)

    def wait_until_served(self, timeout: float = 420) -> None:
        """Every location LOADED without error. Swarm starts services in no order: a location the
        webserver could not reach yet is reloaded until its code server answers. Gives up (with the
        tasks' states and the services' logs) before the test's own time limit would cut it short."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                states, unreachable = location_states(self.url), None
            except OSError as error:
                states, unreachable = {}, error
            if states and all(s["status"] == "LOADED" and not s["error"] for s in states.values()):
                return
            if time.monotonic() > deadline:
                raise DockerError(
                    f"stack {self.name}: locations not served within {timeout:.0f} s: "
                    f"{states or f'webserver {self.url} unreachable ({unreachable})'}\n{self.diagnosis()}"
                )
            for name, state in states.items():
                if state["error"] and "already exists" in state["error"]:
                    raise DockerError(f"stack {self.name}: {name} lost a race for Dagster's schema: {state}")
                if state["error"]:
                    asset_runs.reload_location(self.url, name)
            time.sleep(2)

    def diagnosis(self, lines: int = 15) -> str:
        """Every task of the stack with its state and error, then the end of each service's log."""
        tasks = docker(
            "stack", "ps", "--no-trunc", "--format", "{{.Name}} {{.CurrentState}} {{.Error}}", self.name,
            check=False,
        )  # fmt: skip
        parts = [f"tasks:\n{tasks.stdout}{tasks.stderr}"]
        services = docker("stack", "services", "--format", "{{.Name}}", self.name, check=False).stdout.split()
        for service in services:
            logs = docker("service", "logs", "--tail", str(lines), service, check=False, timeout=60)
            parts.append(f"--- {service}:\n{(logs.stdout + logs.stderr)[-3000:]}")
        return "\n".join(parts)

    def postgres_container(self) -> str:
        """The postgres task's container (on a manager: this engine)."""
        label = f"com.docker.swarm.service.name={self.service('postgres')}"
        (container,) = docker("ps", "-q", "--filter", f"label={label}").stdout.split()
        return container

    def psql(self, query: str, database: str = WAREHOUSE_DB) -> list[list[str]]:
        """Rows of `query` run as the superuser inside the postgres task."""
        container = self.postgres_container()
        return psql_rows(lambda argv: docker("exec", container, *argv, check=False), query, database)

    @contextlib.contextmanager
    def session(self, *statements: str, database: str = WAREHOUSE_DB) -> Iterator[None]:
        """A superuser session in the postgres task that has run `statements` and stays open, its
        transaction with it, until the block ends (then it ends, rolling back what is open)."""
        argv = ["psql", "-U", "postgres", "-d", database, "-AtqX", "-v", "ON_ERROR_STOP=1"]
        with subprocess.Popen(
            ["docker", "exec", "-i", self.postgres_container(), *argv],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ) as process:  # fmt: skip
            try:
                process.stdin.write("".join(f"{statement};\n" for statement in statements) + "\\echo ready\n")
                process.stdin.flush()
                for line in process.stdout:  # the statements' rows, then "ready"
                    if line.strip() == "ready":
                        break
                else:
                    raise DockerError(f"psql session failed: {process.stderr.read()[-2000:]}")
                yield
            finally:
                process.stdin.close()
                process.wait(timeout=DOCKER_TIMEOUT_SECONDS)

    def remove(self) -> None:
        remove_stack(self.name)


def run_services(network: str) -> dict[str, str]:
    """Run id -> service name of every run service (SwarmRunLauncher's) attached to `network`."""
    listed = docker("service", "ls", "-q", "--filter", "label=dagster/run_id").stdout.split()
    if not listed:
        return {}
    network_id = docker("network", "inspect", "--format", "{{.Id}}", network, check=False).stdout.strip()
    services = {}
    for service in json.loads(docker("service", "inspect", *listed, check=False).stdout or "[]"):
        attached = {n["Target"] for n in service["Spec"]["TaskTemplate"].get("Networks", [])}
        if network in attached or network_id in attached:
            services[service["Spec"]["Labels"]["dagster/run_id"]] = service["Spec"]["Name"]
    return services


def remove_stack(name: str) -> None:
    """`docker stack rm` and the run services on its network, then its network and volumes removed
    once their containers have stopped (`stack rm` gives up on a network still in use)."""
    runs = run_services(f"{name}-platform")
    if runs:
        docker("service", "rm", *runs.values(), check=False)
    docker("stack", "rm", name, check=False)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        networks = docker("network", "ls", "-q", "--filter", f"name={name}-platform").stdout.split()
        volumes = docker("volume", "ls", "-q", "--filter", f"name={name}_").stdout.split()
        for kind, names in (("network", networks), ("volume", volumes)):
            for each in names:
                docker(kind, "rm", each, check=False)
        if not networks and not volumes:
            return
        time.sleep(2)
    raise DockerError(f"stack {name}: network or volumes still there 180 s after `stack rm`")


def remove_stale_stacks() -> list[str]:
    """Remove the stacks an earlier, interrupted session of these tests left (named like
    `SwarmStack`'s, from this checkout's branch): on a two-core node their services' CPU
    reservations would leave the new stack's tasks pending for want of resources. One swarm test
    session per engine at a time, then."""
    pattern = re.compile(rf"{re.escape(name_prefix())}-[0-9a-f]{{6}}")
    listed = docker("stack", "ls", "--format", "{{.Name}}", check=False).stdout.split()
    stale = [name for name in listed if pattern.fullmatch(name)]
    for name in stale:
        remove_stack(name)
    return stale
