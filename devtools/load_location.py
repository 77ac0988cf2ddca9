"""Child process of check-defs: import one location's definitions and report it as one JSON line.

Run as `python -m devtools.load_location MODULE DISTRIBUTION` (or `--baseline` to time a bare
`import dagster`). The module is imported from the installed distribution, as its image imports it;
nothing else is imported before the clock starts, so the import time is that of a fresh code server.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import sys
import time
import traceback


def _time_import(module_name: str) -> float:
    started = time.perf_counter()
    importlib.import_module(module_name)
    return time.perf_counter() - started


def load_repository(module_name: str):
    from dagster._core.definitions.reconstruct import repository_def_from_target_def
    from dagster._core.workspace.autodiscovery import loadable_targets_from_loaded_module

    (target,) = loadable_targets_from_loaded_module(sys.modules[module_name])
    return repository_def_from_target_def(target.target_definition)


def _condition(condition) -> str | None:
    """An automation condition as one line: its label (or kind) and, nested, its operands."""
    if condition is None:
        return None
    name = condition.get_label() or type(condition).__name__.removesuffix("Condition")
    for attribute in ("cron_schedule", "cron_timezone"):
        if getattr(condition, attribute, None):
            name += f" {getattr(condition, attribute)}"
    children = [_condition(child) for child in condition.children]
    return f"{name}({', '.join(children)})" if children else name


def definitions(repository) -> dict:
    """Everything a reviewer should see change in a location's definitions, as sorted plain data:
    what `tests/test_definitions_snapshot.py` keeps per location and `check-defs --diff` compares."""
    graph = repository.asset_graph
    assets, reads = {}, []
    for key in sorted(graph.get_all_asset_keys(), key=lambda key: key.to_user_string()):
        node = graph.get(key)
        if not node.is_materializable:
            reads.append(key.to_user_string())
            continue
        schema = node.metadata.get("dagster/column_schema")
        assets[key.to_user_string()] = {
            "deps": sorted(parent.to_user_string() for parent in node.parent_keys),
            "group": node.group_name,
            "owners": sorted(node.owners),
            "kinds": sorted(node.kinds),
            "partitions": str(node.partitions_def) if node.partitions_def else None,
            "automation": _condition(node.automation_condition),
            "freshness": repr(node.freshness_policy) if node.freshness_policy else None,
            "columns": {column.name: column.type for column in schema.columns} if schema else None,
        }
    checks = {
        f"{key.asset_key.to_user_string()}:{key.name}": {"blocking": graph.get_check_spec(key).blocking}
        for key in sorted(graph.asset_check_keys, key=lambda key: (key.asset_key.to_user_string(), key.name))
    }
    jobs = {
        job.name: sorted(key.to_user_string() for key in job.asset_layer.selected_asset_keys)
        for job in sorted(repository.get_all_jobs(), key=lambda job: job.name)
        if not job.name.startswith("__")
    }
    schedules = {
        schedule.name: {
            "cron": schedule.cron_schedule,
            "job": schedule.job_name,
            "default_status": schedule.default_status.value,
        }
        for schedule in sorted(repository.schedule_defs, key=lambda schedule: schedule.name)
    }
    sensors = {
        sensor.name: {"type": type(sensor).__name__, "default_status": sensor.default_status.value}
        for sensor in sorted(repository.sensor_defs, key=lambda sensor: sensor.name)
    }
    return {
        "assets": assets,
        "reads": reads,
        "checks": checks,
        "jobs": jobs,
        "schedules": schedules,
        "sensors": sensors,
    }


class NotInstalled(RuntimeError):
    pass


def _describe(module_name: str, distribution: str) -> dict:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise NotInstalled(
            f"distribution {distribution!r} is not installed in this environment: list it in the root"
            f" pyproject.toml's dependencies and [tool.uv.sources] (uv run new-location does), then uv sync"
        ) from None
    import_seconds = _time_import(module_name)
    started = time.perf_counter()
    repository = load_repository(module_name)
    load_seconds = time.perf_counter() - started
    asset_graph = repository.asset_graph
    keys = asset_graph.get_all_asset_keys()
    # Keys of other locations that this one reads (dbt sources) are in its graph too, not materializable.
    defined = sorted(key.to_user_string() for key in keys if asset_graph.get(key).is_materializable)
    return {
        "asset_keys": defined,
        "read_keys": sorted({key.to_user_string() for key in keys} - set(defined)),
        "check_keys": sorted(
            f"{key.asset_key.to_user_string()}:{key.name}" for key in asset_graph.asset_check_keys
        ),
        "assets": len(defined),
        "checks": len(asset_graph.asset_check_keys),
        "jobs": len([job for job in repository.get_all_jobs() if not job.name.startswith("__")]),
        "schedules": len(repository.schedule_defs),
        "sensors": len(repository.sensor_defs),
        "import_seconds": import_seconds,
        "load_seconds": load_seconds,
        "definitions": definitions(repository),
    }


def _failure(error: BaseException) -> dict:
    frames = traceback.extract_tb(error.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
    return {
        "error": f"{type(error).__name__}: {error}",
        "where": where,
        "traceback": "".join(traceback.format_exception(error)),
    }


def main() -> None:
    target = sys.argv[1]
    if target == "--baseline":
        report = {"import_seconds": _time_import("dagster")}
    else:
        try:
            report = _describe(target, sys.argv[2])
        except BaseException as error:
            report = _failure(error)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
