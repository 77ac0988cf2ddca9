"""`uv run render-deploy [--check]`: every deployment file, rendered from the location tables.

The input is the `[tool.platform]` table of the root pyproject (facts every file shares: base images,
the webserver's port) and each member's `[tool.platform.location]` table (devtools.locations). The
Jinja2 templates in deploy/templates/ turn them into the location Dockerfiles, Dockerfile.platform,
docker-bake.hcl, compose.yml, compose.run-containers.yml, docker-stack.yml, deploy/helm/values.yaml,
workspace.yaml and the Postgres init script. The output is committed (so `docker compose up` needs no
step first) and starts with a header naming its template; `--check` renders in memory and exits 1
with a diff when a committed file differs, which a test runs.
"""

from __future__ import annotations

import argparse
import difflib
import sys
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

import jinja2
from kubernetes.utils import parse_quantity

from devtools.locations import Location, discover
from devtools.paths import workspace_root

TEMPLATES = Path("deploy/templates")
#: Rendered once per location: template -> output path (formatted with the location).
PER_LOCATION = {"Dockerfile.location.j2": "Dockerfile.{location.short_name}"}
#: Rendered once: template -> output path.
SINGLE = {
    "Dockerfile.platform.j2": "Dockerfile.platform",
    "docker-bake.hcl.j2": "docker-bake.hcl",
    "compose.yml.j2": "compose.yml",
    "compose.run-containers.yml.j2": "compose.run-containers.yml",
    "docker-stack.yml.j2": "docker-stack.yml",
    "values.yaml.j2": "deploy/helm/values.yaml",
    "alerts.k8s.yaml.j2": "deploy/helm/alerts.yaml",
    "workspace.yaml.j2": "workspace.yaml",
    "init-platform.sh.j2": "deploy/postgres/init-platform.sh",
}
EXECUTABLE = {"deploy/postgres/init-platform.sh"}


class PlatformTableError(ValueError):
    pass


def nano_cpus(quantity: str) -> int:
    return int(parse_quantity(quantity) * 10**9)


def byte_count(quantity: str) -> int:
    return int(parse_quantity(quantity))


@dataclass(frozen=True)
class RunSize:
    """A run's CPU and memory as Kubernetes quantities ("250m", "1", "512Mi", "2Gi"), in the form each
    deployment takes them."""

    cpu_request: str
    memory_request: str
    cpu_limit: str
    memory_limit: str

    @classmethod
    def from_table(cls, table: dict, where: str, base: RunSize | None = None) -> RunSize:
        """The size a [tool.platform.run]-shaped table gives; with `base`, the table may name only
        the keys it changes."""
        keys = {field.replace("_", "-") for field in cls.__dataclass_fields__}
        if unknown := sorted(set(table) - keys):
            raise PlatformTableError(f"{where}: unknown key {unknown[0]!r}; keys: {', '.join(sorted(keys))}")
        if base is None and (missing := sorted(keys - set(table))):
            raise PlatformTableError(f"{where}: missing key {missing[0]!r}")
        for key, value in table.items():
            try:
                parse_quantity(value)
            except ValueError:
                raise PlatformTableError(
                    f"{where}: {key} = {value!r} is not a Kubernetes quantity such as 500m, 2, 512Mi or 4Gi"
                ) from None
        values = {key.replace("-", "_"): value for key, value in table.items()}
        return replace(base, **values) if base else cls(**values)

    def swarm(self) -> dict[str, dict[str, int]]:
        """The Docker API's TaskTemplate.Resources of a Swarm service."""
        return {
            "Limits": {"NanoCPUs": nano_cpus(self.cpu_limit), "MemoryBytes": byte_count(self.memory_limit)},
            "Reservations": {
                "NanoCPUs": nano_cpus(self.cpu_request),
                "MemoryBytes": byte_count(self.memory_request),
            },
        }

    def container(self) -> dict[str, int]:
        """docker-py's create() arguments of a container (no CPU reservation exists for one)."""
        return {
            "nano_cpus": nano_cpus(self.cpu_limit),
            "mem_limit": byte_count(self.memory_limit),
            "mem_reservation": byte_count(self.memory_request),
        }


@dataclass(frozen=True)
class Platform:
    """The root pyproject's [tool.platform] table: what every deployment file shares."""

    python_image: str
    uv_image: str
    postgres_image: str
    webserver_port: int
    run: RunSize  # [tool.platform.run]: every run's size, which a location's own run table overrides

    def run_size(self, location: Location) -> RunSize:
        where = f"{location.member_dir / 'pyproject.toml'} [tool.platform.location.run]"
        return RunSize.from_table(dict(location.run), where, base=self.run)


def read_platform(root: Path) -> Platform:
    path = root / "pyproject.toml"
    table = tomllib.loads(path.read_text()).get("tool", {}).get("platform")
    if table is None:
        raise PlatformTableError(f"{path}: no [tool.platform] table")
    try:
        return Platform(
            python_image=table["python-image"],
            uv_image=table["uv-image"],
            postgres_image=table["postgres-image"],
            webserver_port=int(table["webserver-port"]),
            run=RunSize.from_table(table["run"], f"{path} [tool.platform.run]"),
        )
    except KeyError as error:
        raise PlatformTableError(f"{path} [tool.platform]: missing key {error.args[0]!r}") from None


def image_name(location: Location) -> str:
    return f"dagster-{location.distribution}"


def tag_variable(location: Location) -> str:
    return f"{location.name.upper()}_TAG"


def members(root: Path, locations: list[Location]) -> list[str]:
    """The members the images copy, `shared` first: those under src/ that are not code locations,
    and `locations` (a location being added is not on disk yet, one being removed still is)."""
    names = {path.parent.name for path in root.glob("src/*/pyproject.toml")}
    names -= {location.name for location in discover(root)}
    names |= {location.name for location in locations}
    return sorted(names, key=lambda name: (name != "shared", name))


def _environment(root: Path) -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(root / TEMPLATES),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    environment.filters |= {"image": image_name, "tag_variable": tag_variable}
    return environment


def header(template: str, comment: str = "#") -> str:
    return (
        f"{comment} Rendered from {TEMPLATES / template} by `uv run render-deploy` from the [tool.platform]\n"
        f"{comment} tables of the pyprojects: edit the template or the tables, never this file.\n"
    )


def render(root: Path, locations: list[Location] | None = None) -> dict[str, str]:
    """Relative path -> text of every rendered file, for `locations` (default: the members')."""
    locations = sorted(discover(root) if locations is None else locations, key=lambda loc: loc.port)
    environment = _environment(root)
    context = {
        "platform": read_platform(root),
        "locations": locations,
        "members": members(root, locations),
    }
    rendered = {}
    for template, output in PER_LOCATION.items():
        for location in locations:
            text = environment.get_template(template).render(
                context, location=location, header=header(template)
            )
            rendered[output.format(location=location)] = text
    for template, output in SINGLE.items():
        rendered[output] = environment.get_template(template).render(context, header=header(template))
    return rendered


def stale(root: Path, rendered: dict[str, str]) -> list[str]:
    """Rendered location Dockerfiles on disk that no location renders any more."""
    outputs = set(rendered)
    return sorted(
        str(path.relative_to(root))
        for path in root.glob("Dockerfile.*")
        if path.name != "Dockerfile.platform" and str(path.relative_to(root)) not in outputs
    )


def diff(root: Path, rendered: dict[str, str]) -> str:
    chunks: list[str] = []
    for relative, text in sorted(rendered.items()):
        path = root / relative
        before = path.read_text() if path.exists() else ""
        if before != text:
            chunks += difflib.unified_diff(
                before.splitlines(keepends=True),
                text.splitlines(keepends=True),
                fromfile=f"a/{relative}" if path.exists() else "/dev/null",
                tofile=f"b/{relative}",
            )
    for relative in stale(root, rendered):
        chunks.append(f"--- a/{relative}\n+++ /dev/null\n(no location renders it: delete it)\n")
    return "".join(chunks)


def write(root: Path, rendered: dict[str, str]) -> list[str]:
    """Write what changed, delete stale location Dockerfiles; the paths touched."""
    touched = []
    for relative, text in sorted(rendered.items()):
        path = root / relative
        if not path.exists() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            touched.append(relative)
        if relative in EXECUTABLE:
            path.chmod(0o755)
    for relative in stale(root, rendered):
        (root / relative).unlink()
        touched.append(relative)
    return touched


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="render-deploy", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 with a diff when a committed file differs"
    )
    args = parser.parse_args(argv)
    root = workspace_root()
    try:
        rendered = render(root)
    except (PlatformTableError, jinja2.TemplateError) as error:
        sys.exit(f"render-deploy: {error}")
    if args.check:
        changes = diff(root, rendered)
        if changes:
            print(changes, end="")
            sys.exit(
                "render-deploy: the committed deployment files differ from their templates (diff above); "
                "run `uv run render-deploy` and commit the result"
            )
        print(f"render-deploy: {len(rendered)} files match their templates")
        return
    touched = write(root, rendered)
    print(f"render-deploy: {len(rendered)} files rendered, {len(touched)} changed")
    for relative in touched:
        print(f"  {relative}")


if __name__ == "__main__":
    main()
