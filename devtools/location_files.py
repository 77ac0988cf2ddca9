"""Every file that names a code location, and how adding or removing one changes it.

YAML and TOML are edited by structure with round-trip libraries (comments, order and quoting
survive; a YAML file here is written as ruamel.yaml writes it back, so removing a location restores
it byte for byte); the run-container, Swarm and Helm files get a copy of another location's entries,
respelt; docker-bake.hcl and the Dockerfiles by small line edits that are parsed back and checked.
The init script's roles and grants are derived: compose hands it `PLATFORM_LOCATIONS`.
"""

from __future__ import annotations

import copy
import io
import itertools
import re
from collections.abc import Callable

import hcl2
import tomlkit
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from devtools.locations import Location, init_spec
from devtools.staged_files import StagedFiles


class LocationFileError(RuntimeError):
    pass


def image_name(location: Location) -> str:
    return f"dagster-{location.distribution}"


def dockerfile_name(location: Location) -> str:
    return f"Dockerfile.{location.short_name}"


# ---- YAML by structure -----------------------------------------------------------------------


def _yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _edit_yaml(staged: StagedFiles, relative: str, change: Callable[[CommentedMap], None]) -> None:
    def edit(text: str) -> str:
        document = _yaml().load(text)
        change(document)
        out = io.StringIO()
        _yaml().dump(document, out)
        return out.getvalue()

    staged.edit(relative, edit)


def _last_leaf(node) -> tuple[object, object] | None:
    """(container, key) of the deepest last entry: where ruamel keeps the blank line after a block."""
    found = None
    while isinstance(node, CommentedMap | CommentedSeq) and len(node):
        key = list(node.keys())[-1] if isinstance(node, CommentedMap) else len(node) - 1
        found = (node, key)
        node = node[key]
    return found


def _move_trailing(source, target) -> None:
    """Move the comment (blank lines) after `source`'s last entry to after `target`'s last entry."""
    source_leaf, target_leaf = _last_leaf(source), _last_leaf(target)
    if source_leaf is None or target_leaf is None:
        return
    container, key = source_leaf
    token = container.ca.items.pop(key, None)
    if token is not None:
        target_container, target_key = target_leaf
        target_container.ca.items[target_key] = token


def _append(mapping: CommentedMap, key: str, value: CommentedMap) -> None:
    """Add `key` last, keeping the blank line that ended the mapping at its end."""
    previous = list(mapping.keys())[-1] if mapping else None
    mapping[key] = value
    if previous is not None:
        _move_trailing(mapping[previous], value)


def _pop(mapping: CommentedMap, key: str) -> None:
    """Remove `key`, keeping a blank line that ended the mapping at its (new) end."""
    if key not in mapping:
        return
    keys = list(mapping.keys())
    if keys[-1] == key and len(keys) > 1:
        _move_trailing(mapping[key], mapping[keys[-2]])
    del mapping[key]


def _service(template: CommentedMap, location: Location) -> CommentedMap:
    """A code-server service shaped like `template` (another location's), for `location`."""
    service = CommentedMap()
    if getattr(template, "merge", None):
        service.add_yaml_merge(copy.copy(template.merge))
    for key, value in template.non_merged_items():
        service[key] = copy.deepcopy(value)
    port = DoubleQuotedScalarString(str(location.port))
    service["image"] = f"${{REGISTRY:-}}{image_name(location)}:${{TAG:-dev}}"
    service["build"]["dockerfile"] = dockerfile_name(location)
    env_dir = "${ENV_DIR:-environments}"  # as compose.yml spells it: the env files' folder
    service["env_file"] = CommentedSeq([f"{env_dir}/platform.env", f"{env_dir}/{location.name}.env"])
    service["expose"] = CommentedSeq([port])
    test = service["healthcheck"]["test"]
    test[next(index for index, item in enumerate(test) if str(item).isdigit())] = port
    service["depends_on"] = copy.deepcopy(template["depends_on"])
    return service


def _compose_add(document: CommentedMap, location: Location, others: list[Location]) -> None:
    services = document["services"]
    template_name = others[-1].name
    keys = list(services.keys())
    services.insert(keys.index(template_name) + 1, location.name, _service(services[template_name], location))
    for service in services.values():
        depends = service.get("depends_on")
        if isinstance(depends, CommentedMap) and template_name in depends:
            _append(depends, location.name, CommentedMap({"condition": "service_healthy"}))


def _compose_remove(document: CommentedMap, location: Location) -> None:
    services = document["services"]
    for service in services.values():
        depends = service.get("depends_on")
        if isinstance(depends, CommentedMap):
            _pop(depends, location.name)
    del services[location.name]


def _set_init_spec(document: CommentedMap, locations: list[Location]) -> None:
    environment = document["services"]["postgres"]["environment"]
    environment["PLATFORM_LOCATIONS"] = DoubleQuotedScalarString(init_spec(locations))


def _workspace_add(document: CommentedMap, location: Location) -> None:
    entry = CommentedMap({"host": location.name, "port": location.port, "location_name": location.name})
    document["load_from"].append(CommentedMap({"grpc_server": entry}))


def _workspace_remove(document: CommentedMap, location: Location) -> None:
    entries = document["load_from"]
    for index, entry in enumerate(entries):
        if entry.get("grpc_server", {}).get("location_name") == location.name:
            del entries[index]
            return


# ---- the run-container, Swarm and Helm files: a location's entries cloned from another's -------


def _tokens(location: Location) -> tuple[str, str, str, str]:
    """How a location is spelt in those files: name, distribution, tag variable, port."""
    return location.name, location.distribution, location.name.upper(), str(location.port)


def _token_pattern(location: Location) -> re.Pattern:
    """A token standing alone: `_` and `-` separate, as in marts_env, MARTS_TAG, dagster-marts."""
    alternatives = "|".join(
        re.escape(token) for token in sorted(set(_tokens(location)), key=len, reverse=True)
    )
    return re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])")


def _mentions(node, location: Location) -> bool:
    pattern = _token_pattern(location)
    if isinstance(node, CommentedMap):
        return any(_mentions(key, location) or _mentions(value, location) for key, value in node.items())
    if isinstance(node, CommentedSeq):
        return any(_mentions(item, location) for item in node)
    return bool(pattern.search(str(node)))


def _renamed(node, template: Location, location: Location):
    """A copy of `node` (the template location's entry) spelt for `location`; anchored nodes stay shared."""
    if isinstance(node, CommentedMap | CommentedSeq) and node.anchor.value:
        return node
    if isinstance(node, CommentedMap):
        renamed = CommentedMap()
        if getattr(node, "merge", None):
            renamed.add_yaml_merge(copy.copy(node.merge))
        for key, value in node.non_merged_items():
            renamed[_renamed(key, template, location)] = _renamed(value, template, location)
        renamed.ca.items.update(copy.deepcopy(node.ca.items))
        return _same_style(renamed, node)
    if isinstance(node, CommentedSeq):
        renamed = CommentedSeq(_renamed(item, template, location) for item in node)
        renamed.ca.items.update(copy.deepcopy(node.ca.items))
        return _same_style(renamed, node)
    if isinstance(node, int) and not isinstance(node, bool):
        return location.port if node == template.port else node
    if isinstance(node, str):
        return _renamed_text(node, template, location)
    return node


def _renamed_text(text: str, template: Location, location: Location) -> str:
    """`text` spelt for `location`; a folded scalar keeps its line breaks before the same words."""
    spelling = dict(zip(_tokens(template), _tokens(location), strict=True))
    folds = getattr(text, "fold_pos", [])
    starts = [0, *folds, len(text)]
    pieces = [
        _token_pattern(template).sub(lambda match: spelling[match[0]], text[start:end])
        for start, end in itertools.pairwise(starts)
    ]
    if type(text) is str:
        return "".join(pieces)
    renamed = type(text)("".join(pieces))
    if folds:
        renamed.fold_pos = [sum(len(piece) for piece in pieces[: index + 1]) for index in range(len(folds))]
    return renamed


def _same_style(renamed, node):
    if node.fa.flow_style():
        renamed.fa.set_flow_style()
    return renamed


def _trailing_slot(container, key) -> tuple[object, object]:
    """Where the blank line after the entry `key` lives: its deepest last own (not merged, not
    anchored) entry."""
    value = container[key]
    if not isinstance(value, CommentedMap | CommentedSeq) or value.anchor.value or not len(value):
        return container, key
    mapping = isinstance(value, CommentedMap)
    own = [entry for entry, _ in value.non_merged_items()] if mapping else range(len(value))
    return _trailing_slot(value, own[-1])


def _template(existing: list[Location]) -> Location:
    """The location whose entries are cloned: one whose name and distribution differ, so that each
    spelling in its entries says which of the new location's to write."""
    for location in reversed(existing):
        if location.name != location.distribution:
            return location
    return existing[-1]


def _clone_entries(node, template: Location, location: Location, existing: list[Location]) -> None:
    """For every entry about `template` alone (a key, or a list item), the same entry for `location`,
    after the last location's (in port order, as the location tables list them)."""
    last_location = existing[-1]
    others = [other for other in existing if other != template]
    if isinstance(node, CommentedMap):
        for key in [key for key in node if not _mentions(key, template)]:
            _clone_entries(node[key], template, location, existing)
        for key in [key for key in node if _mentions(key, template)]:
            keys = list(node.keys())
            after = _renamed(key, template, last_location)
            after = after if after in node else key
            new_key = _renamed(key, template, location)
            node.insert(keys.index(after) + 1, new_key, _renamed(node[key], template, location))
            if keys[-1] == after:
                _carry_trailing(node, after, new_key)
    elif isinstance(node, CommentedSeq):
        alone = [
            item
            for item in node
            if _mentions(item, template) and not any(_mentions(item, other) for other in others)
        ]
        for item in list(node):
            if not any(item is entry for entry in alone):
                _clone_entries(item, template, location, existing)
        for item in alone:
            twin = _renamed(item, template, last_location)
            index = next((i for i, entry in enumerate(node) if entry == twin), None)
            index = index if index is not None else next(i for i, entry in enumerate(node) if entry is item)
            node.insert(index + 1, _renamed(item, template, location))
            if index + 2 == len(node):
                _carry_trailing(node, index, index + 1)


def _carry_trailing(container, source, target) -> None:
    source_container, source_key = _trailing_slot(container, source)
    token = source_container.ca.items.pop(source_key, None)
    if token is not None:
        target_container, target_key = _trailing_slot(container, target)
        target_container.ca.items[target_key] = token


def _drop_entries(node, location: Location, others: list[Location]) -> None:
    """Every entry about `location` alone, removed: the inverse of `_clone_entries`."""
    if isinstance(node, CommentedMap):
        for key in list(node):
            if _mentions(key, location):
                _drop_key(node, key)
            else:
                _drop_entries(node[key], location, others)
    elif isinstance(node, CommentedSeq):
        for index in reversed(range(len(node))):
            item = node[index]
            if _mentions(item, location) and not any(_mentions(item, other) for other in others):
                if index == len(node) - 1 and index > 0:
                    _carry_trailing(node, index, index - 1)
                del node[index]
            else:
                _drop_entries(item, location, others)


def _drop_key(mapping: CommentedMap, key) -> None:
    keys = list(mapping.keys())
    if keys[-1] == key and len(keys) > 1:
        _carry_trailing(mapping, key, keys[-2])
    del mapping[key]


_CREDENTIALS_LOOP = re.compile(r"(for location in )[\w ]+(; do)")


def _set_locations(node, locations: list[Location]) -> None:
    """The daemon's credentials loop and Swarm postgres' init spec, listing `locations`."""
    names = " ".join(location.name for location in locations)
    if isinstance(node, CommentedMap):
        entries = list(node.items())
    elif isinstance(node, CommentedSeq):
        entries = list(enumerate(node))
    else:
        return
    for key, value in entries:
        if key == "PLATFORM_LOCATIONS":
            node[key] = DoubleQuotedScalarString(init_spec(locations))
        elif isinstance(value, str) and _CREDENTIALS_LOOP.search(value):
            node[key] = type(value)(_CREDENTIALS_LOOP.sub(rf"\g<1>{names}\g<2>", value))
        else:
            _set_locations(value, locations)


#: Files whose per-location entries are cloned from another location's (the run-container override,
#: the Swarm stack, the Helm values).
CLONED_FILES = ("compose.run-containers.yml", "docker-stack.yml", "deploy/helm/values.yaml")


def _cloning(relative: str, location: Location, existing: list[Location], after: list[Location]):
    def change(document: CommentedMap) -> None:
        if _mentions(document, location):
            raise LocationFileError(
                f"{relative} already mentions {' or '.join(dict.fromkeys(_tokens(location)))}: "
                "pick another name or port"
            )
        template = _template(existing)
        if template.name == template.distribution and location.name != location.distribution:
            raise LocationFileError(
                f"{relative}: every location is named as its distribution, so {location.name!r} "
                f"({location.distribution}) cannot be spelt from them: pick a name without `_`"
            )
        _clone_entries(document, template, location, existing)
        _set_locations(document, after)

    return change


# ---- TOML by structure -----------------------------------------------------------------------


def _root_pyproject_add(text: str, location: Location) -> str:
    document = tomlkit.parse(text)
    dependencies = document["project"]["dependencies"]
    if location.distribution not in dependencies:
        sources = document["tool"]["uv"]["sources"]
        members = [index for index, item in enumerate(dependencies) if item in sources]
        dependencies.insert(members[-1] + 1 if members else 0, location.distribution)
    document["tool"]["uv"]["sources"][location.distribution] = tomlkit.parse("s = { workspace = true }")["s"]
    first_party = document["tool"]["ruff"]["lint"]["isort"]["known-first-party"]
    if location.name not in first_party:
        first_party.insert(
            first_party.index("tests") if "tests" in first_party else len(first_party), location.name
        )
    return tomlkit.dumps(document)


def _root_pyproject_remove(text: str, location: Location) -> str:
    document = tomlkit.parse(text)
    dependencies = document["project"]["dependencies"]
    if location.distribution in dependencies:
        dependencies.remove(location.distribution)
    document["tool"]["uv"]["sources"].pop(location.distribution, None)
    first_party = document["tool"]["ruff"]["lint"]["isort"]["known-first-party"]
    if location.name in first_party:
        first_party.remove(location.name)
    # tomlkit drops the blank line before the next table together with a table's last entry.
    return re.sub(r"([^\n])\n(\[)", r"\1\n\n\2", tomlkit.dumps(document))


# ---- Dockerfiles and docker-bake.hcl: line edits, parsed back ----------------------------------

_MEMBER_COPY = re.compile(r"^COPY src/(\w+)/pyproject\.toml src/\1/\n", re.MULTILINE)


def _copy_line(location: Location) -> str:
    return f"COPY src/{location.name}/pyproject.toml src/{location.name}/\n"


def _dockerfile_add_member(text: str, location: Location) -> str:
    lines = list(_MEMBER_COPY.finditer(text))
    if not lines:
        raise LocationFileError("no `COPY src/<member>/pyproject.toml src/<member>/` line to follow")
    end = lines[-1].end()
    return text[:end] + _copy_line(location) + text[end:]


def _dockerfile_remove_member(text: str, location: Location) -> str:
    return text.replace(_copy_line(location), "")


def _bake_group(text: str, change: Callable[[list[str]], list[str]]) -> str:
    pattern = re.compile(r'(group "default" \{\s*targets = )\[([^\]]*)\]')
    match = pattern.search(text)
    if match is None:
        raise LocationFileError('docker-bake.hcl: no `group "default" { targets = [...] }` to edit')
    targets = re.findall(r'"([^"]+)"', match[2])
    listed = ", ".join(f'"{target}"' for target in change(targets))
    return text[: match.start()] + f"{match[1]}[{listed}]" + text[match.end() :]


def _bake_target(location: Location) -> str:
    return (
        f'target "{location.name}" {{\n'
        f'  inherits   = ["_release"]\n'
        f'  dockerfile = "{dockerfile_name(location)}"\n'
        f'  tags       = image("{image_name(location)}")\n'
        f"}}\n\n"
    )


def _bake_add(text: str, location: Location) -> str:
    anchor = text.find('target "platform" {')
    if anchor < 0:
        raise LocationFileError('docker-bake.hcl: no `target "platform"` to insert before')
    text = text[:anchor] + _bake_target(location) + text[anchor:]
    return _bake_group(
        text, lambda targets: [*(t for t in targets if t != "platform"), location.name, "platform"]
    )


def _bake_remove(text: str, location: Location) -> str:
    text = re.sub(rf'target "{location.name}" \{{\n(?:.*\n)*?\}}\n\n?', "", text, count=1)
    return _bake_group(text, lambda targets: [target for target in targets if target != location.name])


def _checked_bake(text: str, location: Location, present: bool) -> str:
    parsed = hcl2.loads(text)
    targets = {name.strip('"') for entry in parsed.get("target", []) for name in entry}
    (group,) = [entry['"default"'] if '"default"' in entry else entry["default"] for entry in parsed["group"]]
    listed = {target.strip('"') for target in group["targets"]}
    if (location.name in targets) != present or (location.name in listed) != present:
        raise LocationFileError(f"docker-bake.hcl: the edit for target {location.name!r} did not parse back")
    return text


# ---- the files of a new member ------------------------------------------------------------------


def member_pyproject(location: Location) -> str:
    return f'''[project]
name = "{location.distribution}"
version = "0.1.0"
description = "Code location {location.name}."
requires-python = ">=3.11,<3.14"
dependencies = [
    "shared",
]

[tool.uv.sources]
shared = {{ workspace = true }}

[tool.uv]
# uv rebuilds a non-editable install of this member only when a cache key changes (default: pyproject.toml).
cache-keys = [{{ file = "pyproject.toml" }}, {{ file = "**/*.py" }}]

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
packages = ["{location.name}"]

[tool.platform.location]
short-name = "{location.short_name}"
port = {location.port}
writes = {_toml_list(location.writes)}
reads = {_toml_list(location.reads)}
'''


def _toml_list(items: tuple[str, ...]) -> str:
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"


def member_definitions(location: Location) -> str:
    schema = location.writes[0]
    return f'''"""Code location {location.name}: one example asset writing the warehouse schema `{schema}`."""

import dagster as dg

from shared.resources import PostgresWarehouse


@dg.asset(key=["{schema}", "example"], group_name="{schema}", kinds={{"postgres"}})
def example(warehouse: PostgresWarehouse) -> dg.MaterializeResult:
    """One row per run in {schema}.example, written as this location's own role: replace with real work."""
    with warehouse.connect() as conn:
        conn.execute("create table if not exists {schema}.example (run_at timestamptz not null)")
        conn.execute("insert into {schema}.example values (now())")
        (rows,) = conn.execute("select count(*) from {schema}.example").fetchone()
    return dg.MaterializeResult(metadata={{"dagster/row_count": rows}})


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[example], resources={{"warehouse": PostgresWarehouse()}})
'''


def member_test(location: Location) -> str:
    schema = location.writes[0]
    return f'''"""Code location {location.name}: its example asset writes its schema on a real Postgres."""

import dagster as dg

from {location.name}.definitions import defs as load_definitions
from shared import postgres


def test_example_writes_one_row_per_run(fresh_warehouse, monkeypatch):
    for variable, value in fresh_warehouse.to_env().items():
        monkeypatch.setenv(variable, value)
    defs = load_definitions()
    for _ in range(2):
        assert dg.materialize(defs.assets, resources=defs.resources).success
    with postgres.connect(fresh_warehouse) as conn:
        assert conn.execute("select count(*) from {schema}.example").fetchone() == (2,)
'''


def env_template(location: Location) -> str:
    writes = ", ".join(location.writes)
    reads = f"; reads {', '.join(location.reads)}" if location.reads else ""
    image = image_name(location)
    return f"""# Code location {location.name} (compose service {location.name}, image {image}).
# Copy to environments/{location.name}.env (git- and docker-ignored) and fill in every line; values unquoted.
# Warehouse host: `postgres` in compose, or a Unix socket directory.
WAREHOUSE_HOST=
# Warehouse port: 5432 in compose.
WAREHOUSE_PORT=
# This location's own role, created by deploy/postgres/init-platform.sh: writes {writes}{reads}.
WAREHOUSE_USER=
# Password of that role.
WAREHOUSE_PASSWORD=
# Warehouse database name; the same in every location's file, e.g. warehouse.
WAREHOUSE_DB=
"""


def dockerfile(location: Location, members: list[str]) -> str:
    copies = "".join(f"COPY src/{member}/pyproject.toml src/{member}/\n" for member in members)
    name, port, file = location.name, location.port, dockerfile_name(location)
    return f"""# syntax=docker/dockerfile:1
# Image {image_name(location)}: the gRPC code server of the code location {name}, port {port}.
# Build from the workspace root: docker buildx bake {name} (or docker build -f {file} .)

# A digest pin (python:...@sha256:...) is stronger still; add it where a registry can be reached.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

FROM ${{UV_IMAGE}} AS uv

FROM ${{PYTHON_IMAGE}} AS builder
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \\
    UV_LINK_MODE=copy \\
    UV_PYTHON_DOWNLOADS=never \\
    UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /workspace
# The lock and every member's pyproject first: the dependency layer is rebuilt only when they change.
COPY pyproject.toml uv.lock ./
{copies}RUN --mount=type=cache,target=/root/.cache/uv \\
    uv sync --frozen --no-dev --no-editable --no-install-workspace --package {location.distribution}
COPY src/shared src/shared
COPY src/{location.name} src/{location.name}
# No cache mount here: uv keys its cache of built workspace members on their pyproject.toml only,
# so a shared cache would install stale code; this layer is keyed on the sources copied above.
RUN uv sync --frozen --no-dev --no-editable --package {location.distribution}

FROM ${{PYTHON_IMAGE}} AS runtime
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="{image_name(location)}" \\
      org.opencontainers.image.description="Dagster code location {location.name}" \\
      org.opencontainers.image.version="${{VERSION}}" \\
      org.opencontainers.image.revision="${{REVISION}}" \\
      org.opencontainers.image.created="${{CREATED}}" \\
      org.opencontainers.image.source="${{SOURCE}}"
RUN groupadd --system --gid 10001 dagster \\
    && useradd --system --uid 10001 --gid dagster --home-dir /opt/dagster --no-create-home dagster \\
    && mkdir -p /opt/dagster/dagster_home/storage \\
    && chown -R dagster:dagster /opt/dagster
COPY --from=builder /opt/venv /opt/venv
COPY dagster.yaml /opt/dagster/dagster_home/dagster.yaml
COPY deploy/docker/run-with-env /usr/local/bin/run-with-env
ENV PATH=/opt/venv/bin:$PATH \\
    PYTHONUNBUFFERED=1 \\
    DAGSTER_HOME=/opt/dagster/dagster_home
USER 10001:10001
WORKDIR /opt/dagster
EXPOSE {location.port}
# One grpc-health-check costs about 3 s of start-up on a small machine: poll slowly, allow time.
HEALTHCHECK --interval=30s --timeout=20s --start-period=60s --retries=3 \\
    CMD ["dagster", "api", "grpc-health-check", "-p", "{location.port}"]
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "{location.port}", "-m", "{location.module}"]
"""


# ---- adding and removing -------------------------------------------------------------------------


def other_dockerfiles(staged: StagedFiles) -> list[str]:
    return sorted(path.name for path in staged.root.glob("Dockerfile.*"))


def stage_add(staged: StagedFiles, location: Location, existing: list[Location]) -> None:
    """Every file a new location needs, staged; `existing` are the locations before it (port order)."""
    member = f"src/{location.name}"
    staged.write(f"{member}/pyproject.toml", member_pyproject(location))
    staged.write(f"{member}/{location.name}/__init__.py", "")
    staged.write(f"{member}/{location.name}/definitions.py", member_definitions(location))
    staged.write(f"tests/test_{location.name}.py", member_test(location))
    staged.write(f"environments/{location.name}.env.template", env_template(location))
    members = sorted(path.parent.name for path in staged.root.glob("src/*/pyproject.toml"))
    for name in other_dockerfiles(staged):
        staged.edit(name, lambda text: _dockerfile_add_member(text, location))
    members = sorted([*members, location.name], key=lambda member: (member != "shared", member))
    staged.write(dockerfile_name(location), dockerfile(location, members))
    staged.edit("pyproject.toml", lambda text: _root_pyproject_add(text, location))
    after = sorted([*existing, location], key=lambda loc: loc.port)

    def compose(document: CommentedMap) -> None:
        _compose_add(document, location, existing)
        _set_init_spec(document, after)

    _edit_yaml(staged, "compose.yml", compose)
    _edit_yaml(staged, "workspace.yaml", lambda document: _workspace_add(document, location))

    for relative in CLONED_FILES:
        _edit_yaml(staged, relative, _cloning(relative, location, existing, after))
    staged.edit("docker-bake.hcl", lambda text: _checked_bake(_bake_add(text, location), location, True))


def stage_remove(staged: StagedFiles, location: Location, remaining: list[Location]) -> None:
    """The inverse of `stage_add`: the member folder and every mention of the location."""
    staged.remove_dir(f"src/{location.name}")
    for relative in (
        f"tests/test_{location.name}.py",
        f"environments/{location.name}.env.template",
        dockerfile_name(location),
    ):
        if staged.exists(relative):
            staged.delete(relative)
    for name in other_dockerfiles(staged):
        if name != dockerfile_name(location):
            staged.edit(name, lambda text: _dockerfile_remove_member(text, location))
    staged.edit("pyproject.toml", lambda text: _root_pyproject_remove(text, location))

    def compose(document: CommentedMap) -> None:
        _compose_remove(document, location)
        _set_init_spec(document, remaining)

    _edit_yaml(staged, "compose.yml", compose)
    _edit_yaml(staged, "workspace.yaml", lambda document: _workspace_remove(document, location))

    def dropped(document: CommentedMap) -> None:
        _drop_entries(document, location, remaining)
        _set_locations(document, remaining)

    for relative in CLONED_FILES:
        _edit_yaml(staged, relative, dropped)
    staged.edit("docker-bake.hcl", lambda text: _checked_bake(_bake_remove(text, location), location, False))
