"""dev-local as a user runs it: a real `dagster dev`, a real embedded Postgres, Ctrl-C to stop."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import pytest
import yaml

from devtools import typescript
from devtools.asset_runs import TERMINAL_STATUSES, run_statuses
from devtools.dev_local import DEV_INSTANCE_OVERLAY, instance_config, write_instance_config
from devtools.locations import discover
from devtools.paths import LOCAL_HOME_ENV, workspace_root
from devtools.ports import free_port
from devtools.progress import Reporter, queue_reason
from devtools.webserver import graphql, wait_until_loaded
from ingest_raw.launcher import LOADER
from shared.lineage import ASSET_GRAPH_QUERY
from shared.postgres import WarehouseSettings
from tests.main_job import RAW_GROUP, is_done, launch_raw_backfill, materializable_assets
from tests.process_tools import (
    descendants,
    kill_tree,
    processes_mentioning,
    stop_group,
    stops_as_from_a_terminal,
    wait_until_gone,
)

DEV_LOCAL = str(Path(sys.executable).with_name("dev-local"))
LOCATIONS = discover(Path(__file__).parents[1])


def _env(home: Path) -> dict[str, str]:
    env = {
        key: value for key, value in os.environ.items() if key not in WarehouseSettings.ENVIRONMENT.values()
    }
    return env | {LOCAL_HOME_ENV: str(home)}


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _start(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Started as `dev-local &` from a script starts it: SIGINT ignored, inherited by what it runs."""
    home.mkdir(parents=True, exist_ok=True)
    with open(home.parent / "dev-local.log", "a") as log:
        return subprocess.Popen(
            [DEV_LOCAL, *args],
            env=_env(home) | (env or {}),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_ignore_sigint,
        )


def _wait_loaded(port: int, home: Path) -> dict[str, dict]:
    try:
        return wait_until_loaded(f"http://127.0.0.1:{port}", timeout=300)
    except TimeoutError as error:
        log = (home.parent / "dev-local.log").read_text()[-4000:]
        raise AssertionError(f"{error}\n--- dev-local log (tail) ---\n{log}") from error


def _wait_for_line(home: Path, text: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = (home.parent / "dev-local.log").read_text()
        if text in log:
            return log
        time.sleep(0.5)
    raise AssertionError(f"dev-local never printed {text!r}:\n{log[-4000:]}")


def _interrupt(process: subprocess.Popen, home: Path, times: int = 1) -> str:
    """Ctrl-C as a terminal sends it: to the whole foreground process group (through `uv run`, it
    reaches dev-local twice; an impatient user presses it again)."""
    for _ in range(times):
        os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        kill_tree(process)  # dagster dev runs in a session of its own: killpg would not reach it
        raise
    return (home.parent / "dev-local.log").read_text()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--all"], {location.name for location in LOCATIONS}),
        (["--only", "ingest", "--code-server-timeout", "777"], {"ingest_raw"}),
    ],
    ids=["all", "only-ingest"],
)
def test_dev_local_serves_selected_locations_and_stops_cleanly(tmp_path, args, expected):
    home = tmp_path / "home"
    port = free_port()
    process = _start(home, *args, "--port", str(port))
    try:
        states = _wait_loaded(port, home)
        assert set(states) == expected
        assert all(state["error"] is None for state in states.values()), states
        assert processes_mentioning(str(home / "pgdata")), "the embedded Postgres should be running"
        tree = descendants(process.pid)
        # One daemon, the stack's: Dagster's backfill loop every few seconds (shared.daemon).
        daemons = [cmd for cmd in tree if re.search(r"daemon run|standby \S*daemon", cmd)]
        assert len(daemons) == 1 and "standby shared.daemon" in daemons[0], daemons
        # The webserver (what answers on the port) and the daemon started before any code server:
        # their start-up overlaps the locations' loading rather than following it.
        started = _start_times(process.pid, port)
        assert max(started["webserver"], started["daemon"]) < started["first code server"], started
        # Its code servers are the stack's too: each forks its runs from a forkserver (shared.code_server).
        servers = [cmd for cmd in tree if re.search(r"-m \S+ api grpc ", cmd)]
        assert len(servers) == len(expected), servers
        assert all("-m shared.code_server api grpc " in cmd for cmd in servers), servers
        assert sum("multiprocessing.forkserver" in cmd for cmd in tree) == len(expected), tree
        log = _wait_for_line(home, "dev-local: ready in ")
        ready = next(line for line in log.splitlines() if line.startswith("dev-local: ready in "))
        assert ready.endswith(f"http://127.0.0.1:{port} ({', '.join(sorted(expected))} loaded)")
    finally:
        output = _interrupt(process, home)
    assert process.returncode == 0, output
    assert "Found a dagster instance configuration" not in output  # the repository's dagster.yaml
    assert wait_until_gone(str(home), timeout=30) == []
    assert not (home / "pgdata" / "postmaster.pid").exists(), "embedded Postgres left running"
    selection = "all" if "--all" in args else "ingest"
    assert (home / f"workspace.{selection}.yaml").is_file()
    timeout = yaml.safe_load((home / "dagster.yaml").read_text())["code_servers"]["local_startup_timeout"]
    assert timeout == (777 if "777" in args else 600)
    assert "dev-local: warehouse: socket folder /" in output
    # It reports, not floods: its own lines only, a progress line per location, Dagster's logs named.
    assert all(line.startswith(("dev-local: ", "export ")) for line in output.splitlines()), output
    for name in expected:
        assert re.search(rf"^dev-local: +\d+ s +{name}: serving$", output, re.MULTILINE), output
    assert f"Dagster's own log: {home / 'dagster.log'}" in output
    assert "dagster.daemon" in (home / "dagster.log").read_text()


def _start_times(pid: int, port: int) -> dict[str, float]:
    """When the processes below `pid` started: the one listening on `port`, the daemon, and the
    first code server."""
    tree = psutil.Process(pid).children(recursive=True)
    listening = [p for p in tree if any(c.laddr.port == port for c in p.net_connections("tcp"))]
    daemons = [p for p in tree if "shared.daemon" in " ".join(p.cmdline())]
    servers = [p for p in tree if re.search(r"-m \S+ api grpc ", " ".join(p.cmdline()))]
    assert len(listening) == 1 and len(daemons) == 1 and servers, (listening, daemons, servers)
    return {
        "webserver": listening[0].create_time(),
        "daemon": daemons[0].create_time(),
        "first code server": min(server.create_time() for server in servers),
    }


def _start_dagster_dev(folder: Path, entries: list[dict]) -> tuple[subprocess.Popen, int, Callable[[], None]]:
    """dev-local's `dagster dev` (`python -m devtools.dagster_dev dev`) on a workspace of `entries` in
    `folder`, its log in folder/dagster.log: the process, its UI port and a check that it still runs."""
    home = folder / "home"
    home.mkdir()
    write_instance_config(home)
    (folder / "workspace.yaml").write_text(yaml.safe_dump({"load_from": entries}))
    port = free_port()
    command = [sys.executable, "-m", "devtools.dagster_dev", "dev", "-w", "workspace.yaml", "-h", "127.0.0.1"]
    with open(folder / "dagster.log", "w") as log:
        process = subprocess.Popen(
            [*command, "-p", str(port)],
            cwd=folder,
            env=_env(home) | {"DAGSTER_HOME": str(home)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=stops_as_from_a_terminal,
        )

    def still_alive() -> None:
        if process.poll() is not None:
            raise AssertionError((folder / "dagster.log").read_text()[-4000:])

    return process, port, still_alive


#: A location that finishes loading only once the other one has started loading.
LOADS_WITH_THE_OTHER = """
import time
from pathlib import Path

import dagster as dg

Path({mine!r}).touch()
deadline = time.monotonic() + {patience}
while not Path({other!r}).exists():
    if time.monotonic() > deadline:
        raise RuntimeError("the other location did not start loading while this one loaded")
    time.sleep(0.05)


@dg.asset(name={name!r})
def an_asset() -> None: ...


defs = dg.Definitions(assets=[an_asset])
"""


def test_dev_locals_code_servers_load_at_the_same_time(tmp_path):
    """dev-local's `dagster dev` starts every location's code server at once: here each location can
    only finish loading while the other one loads. `dagster dev` itself starts one, waits until it
    has loaded, then starts the next, and the first of these would give up."""
    names = ("first", "second")
    for name, other in zip(names, reversed(names), strict=True):
        (tmp_path / f"{name}.py").write_text(
            LOADS_WITH_THE_OTHER.format(
                name=name,
                mine=str(tmp_path / f"{name}.started"),
                other=str(tmp_path / f"{other}.started"),
                patience=60,
            )
        )
    entries = [{"python_file": {"relative_path": f"{name}.py", "location_name": name}} for name in names]
    process, port, still_alive = _start_dagster_dev(tmp_path, entries)
    try:
        states = wait_until_loaded(f"http://127.0.0.1:{port}", 300, set(names), still_alive)
    finally:
        stop_group(process, signal.SIGINT)
    assert {name: state["error"] for name, state in states.items()} == dict.fromkeys(names), (
        tmp_path / "dagster.log"
    ).read_text()[-4000:]


def test_dev_locals_dagster_dev_starts_its_webserver_and_daemon_itself_when_their_standbys_died(tmp_path):
    """The webserver and daemon processes started on standby killed before `dagster dev` asks for
    them (the OOM killer, a person): it starts both itself, and the location is served."""
    (tmp_path / "defs.py").write_text("import dagster as dg\n\ndefs = dg.Definitions()\n")
    entry = {"python_file": {"relative_path": "defs.py", "location_name": "only"}}
    process, port, still_alive = _start_dagster_dev(tmp_path, [entry])
    try:
        killed: set[int] = set()
        deadline = time.monotonic() + 60
        while len(killed) < 2:
            assert time.monotonic() < deadline, f"standbys found and killed: {killed}"
            for child in psutil.Process(process.pid).children():
                with contextlib.suppress(psutil.NoSuchProcess):
                    if " standby " in " ".join(child.cmdline()) and child.pid not in killed:
                        child.kill()
                        killed.add(child.pid)
            time.sleep(0.05)
        states = wait_until_loaded(f"http://127.0.0.1:{port}", 300, {"only"}, still_alive)
        assert states["only"]["error"] is None, states
        started = _start_times(process.pid, port)
        assert min(started["webserver"], started["daemon"]) > started["first code server"], started
    finally:
        stop_group(process, signal.SIGINT)
    assert process.returncode == 0, (tmp_path / "dagster.log").read_text()[-4000:]


def test_warehouse_only_prints_a_line_that_reaches_it(tmp_path):
    """The pasted line is enough for a source program run by hand; Ctrl-C, however often it arrives,
    stops the warehouse."""
    home = tmp_path / "home"
    process = _start(home, "--warehouse-only")
    log = home.parent / "dev-local.log"
    try:
        deadline = time.monotonic() + 120
        while not (exports := [line for line in log.read_text().splitlines() if line.startswith("export ")]):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        env = _env(home) | dict(pair.split("=", 1) for pair in shlex.split(exports[0])[1:])
        loaded = subprocess.run(
            [*LOADER, "airlines"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert loaded.returncode == 0, loaded.stderr
        assert "loaded raw.airlines: 16 rows" in loaded.stderr
        assert not (home / "dagster.yaml").exists(), "no Dagster started"
    finally:
        output = _interrupt(process, home, times=50)
    assert process.returncode == 0, output
    assert not (home / "pgdata" / "postmaster.pid").exists(), "embedded Postgres left running"


def test_dev_local_restarts_on_data_left_by_a_killed_run(tmp_path):
    home = tmp_path / "home"
    port = free_port()
    first = _start(home, "--only", "ingest", "--port", str(port))
    _wait_loaded(port, home)
    first.kill()
    first.wait(timeout=30)
    # dagster dev dies with its parent; the embedded Postgres outlives it, for the next start to reuse.
    assert wait_until_gone(f"{home}/workspace.ingest.yaml", timeout=30) == []
    assert wait_until_gone(f"base_dir: {home}", timeout=30) == []
    assert processes_mentioning(str(home / "pgdata"))
    second = _start(home, "--only", "ingest", "--port", str(port))
    try:
        states = _wait_loaded(port, home)
        assert states["ingest_raw"]["error"] is None
    finally:
        output = _interrupt(second, home)
    assert second.returncode == 0, output
    assert wait_until_gone(str(home), timeout=30) == []


def test_unknown_location_lists_valid_names(tmp_path):
    result = subprocess.run(
        [DEV_LOCAL, "--only", "ingset"], env=_env(tmp_path), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "unknown location 'ingset'" in result.stderr
    names = sorted(name for location in LOCATIONS for name in (location.name, location.short_name))
    assert f"valid names: {', '.join(dict.fromkeys(names))}" in result.stderr


def test_a_partial_warehouse_setting_is_refused_naming_what_is_missing(tmp_path):
    env = _env(tmp_path) | {"WAREHOUSE_HOST": "127.0.0.1"}
    result = subprocess.run([DEV_LOCAL], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "set WAREHOUSE_USER, WAREHOUSE_DB (only WAREHOUSE_HOST is set)" in result.stderr
    assert "ready" not in result.stdout


def test_busy_port_is_a_clear_error(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [DEV_LOCAL, "--port", str(port)], env=_env(tmp_path), capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 1
    assert f"dev-local: port {port} for the Dagster UI is in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_instance_config_is_valid_and_monitors_runs(tmp_path):
    from dagster._core.instance.config import dagster_instance_config

    write_instance_config(tmp_path)
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["run_monitoring"]["enabled"] is True
    assert config["run_monitoring"]["max_resume_run_attempts"] == 0  # the default launcher cannot resume
    assert config["concurrency"]["pools"]["granularity"] == "run"
    (limit,) = config["concurrency"]["runs"]["tag_concurrency_limits"]
    assert (
        limit["key"] == "dagster/code_location"
        and limit["limit"] < config["concurrency"]["runs"]["max_concurrent_runs"]
    )


def test_a_queued_run_says_which_limit_holds_it():
    """The run queue's limits as dev-local's instance sets them, each full in turn."""
    config = instance_config()
    runs_config = config["concurrency"]["runs"]
    instance = {
        "runQueueConfig": {
            "maxConcurrentRuns": runs_config["max_concurrent_runs"],
            "tagConcurrencyLimitsYaml": yaml.safe_dump(runs_config.get("tag_concurrency_limits", [])),
        },
        "poolConfig": {"defaultPoolLimit": config["concurrency"]["pools"]["default_limit"]},
    }

    def run(location: str, *pools: str) -> dict:
        return {"tags": [{"key": "dagster/code_location", "value": location}], "allPools": list(pools)}

    def reason(queued: dict, in_progress: list[dict]) -> str:
        return queue_reason(queued, in_progress, instance, lambda pool, default: default)

    everywhere = [run(f"location_{n}") for n in range(runs_config["max_concurrent_runs"])]
    assert reason(run("marts"), everywhere).endswith("runs in progress (max_concurrent_runs)")
    for limit in runs_config.get("tag_concurrency_limits", []):
        n = limit["limit"]
        same = [run("ingest_raw") for _ in range(n)]
        assert reason(run("ingest_raw"), same) == (
            f"{n} runs with dagster/code_location=ingest_raw in progress (limit {n})"
        )
        assert reason(run("marts"), same) is None, "another location's runs do not hold it"
    pool_limit = instance["poolConfig"]["defaultPoolLimit"]
    holders = [run(f"location_{n}", "warehouse") for n in range(pool_limit)]
    assert reason(run("ingest_raw", "warehouse"), holders) == (
        f"pool warehouse in use by {pool_limit} of {pool_limit} runs"
    )
    assert reason(run("ingest_raw"), []) is None


def test_every_run_that_started_gets_a_started_line_and_an_end_line_once():
    """dev-local looks at the runs every 2 s; a run may start and end between two looks, or be seen
    only canceling. Each run that started is said started, then ended, once; a run canceled in the
    queue only ended."""
    lines: list[str] = []
    reporter = Reporter(url="http://127.0.0.1:3000", locations=[], started=time.time(), say=lines.append)
    instance = {"runQueueConfig": {"maxConcurrentRuns": 10, "tagConcurrencyLimitsYaml": ""}, "poolConfig": {}}
    created = time.time() - 5

    def run(run_id: str, status: str, started: bool) -> dict:
        ended = status in ("SUCCESS", "FAILURE", "CANCELED")
        return {
            "runId": run_id * 8, "status": status, "creationTime": created, "allPools": [], "tags": [],
            "startTime": created + 1 if started else None, "endTime": created + 3 if ended else None,
            "assetSelection": [{"path": ["raw", run_id]}],
        }  # fmt: skip

    looks = [
        [run("a", "QUEUED", False), run("b", "QUEUED", False), run("c", "QUEUED", False)],
        [run("a", "SUCCESS", True), run("b", "CANCELING", True), run("c", "CANCELED", False)],
        [run("a", "SUCCESS", True), run("b", "CANCELED", True), run("c", "CANCELED", False)],
    ]
    for look in looks:
        reporter.report_runs(look, instance)
    said = [" ".join(line.split()[:3]) for line in lines]
    assert said == [
        "run aaaaaaaa started",
        "run aaaaaaaa SUCCESS",
        "run bbbbbbbb started",
        "run cccccccc CANCELED",
        "run bbbbbbbb CANCELED",
    ], lines


def test_dev_instance_is_production_plus_its_overlay_only(tmp_path):
    """Every setting of the production dagster.yaml reaches dev-local unless the overlay names it."""
    write_instance_config(tmp_path)
    dev = _leaves(yaml.safe_load((tmp_path / "dagster.yaml").read_text()))
    production = _leaves(yaml.safe_load((workspace_root() / "dagster.yaml").read_text()))
    overlay = set(_leaves(DEV_INSTANCE_OVERLAY)) | {("code_servers",)}

    def overlaid(path: tuple) -> bool:
        return any(path[: len(prefix)] == prefix for prefix in overlay)

    assert {path: value for path, value in production.items() if not overlaid(path)} == {
        path: value for path, value in dev.items() if not overlaid(path)
    }
    assert not any(path[0] == "storage" for path in dev)  # SQLite under the home, not the production Postgres


def _leaves(config: dict, prefix: tuple = ()) -> dict[tuple, object]:
    leaves = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            leaves |= _leaves(value, (*prefix, key))
        else:
            leaves[(*prefix, key)] = value
    return leaves


def test_typescript_sources_are_built_only_when_changed():
    if typescript.node() is None:
        pytest.skip("no node on PATH: the TypeScript sources cannot be built here")
    typescript.prepare()
    assert typescript.prepare() == "TypeScript sources up to date"
    os.utime(next((typescript.PROJECT / "src").rglob("*.ts")))  # an edited source, newer than dist/
    assert typescript.prepare() == "TypeScript sources built"


# --- The README's main job, clicked through in a real browser -----------------------------------

README = Path(__file__).parents[1] / "README.md"
MAIN_JOB_SECTION = "## The main job"
CHROMIUM = next((path for path in map(shutil.which, ("chromium", "chromium-browser")) if path), None)
#: The step phrases the README's numbered click path is written in, in the order they appear.
STEP = re.compile(
    r"Open (?P<url>http://127\.0\.0\.1:3001\S*?)\.?(?:\s|$)"
    r"|If .*? greets you with \*\*(?P<optional>.+?)\*\*, click \*\*(?P<dismiss>.+?)\*\*"
    r"|[Tt]ype `(?P<text>.+?)` in \*\*(?P<box>.+?)\*\* and press Enter"
    r"|[Cc]lick \*\*(?P<click>.+?)\*\*"
    r"|(?:reads|confirms with|opens,) \*\*(?P<expect>.+?)\*\*",
    re.DOTALL,
)
UI_TIMEOUT_MS = 60_000
MAIN_JOB_TIMEOUT = 1500
ASSETS_QUERY = """
{ assetNodes { assetKey { path } isMaterializable isPartitioned
    partitionStats { numMaterialized numPartitions } assetMaterializations(limit: 1) { timestamp }
    assetChecksOrError { ... on AssetChecks { checks { name
        executionForLatestMaterialization { status } } } } } }
"""


def readme_click_path() -> list[dict[str, str]]:
    """The README's numbered steps of the main job, as actions in the order written."""
    section = README.read_text().split(MAIN_JOB_SECTION, 1)[1].split("\n## ", 1)[0]
    steps = re.findall(r"^\d+\. (.+?)(?=^\d+\. |^\s*$)", section, re.MULTILINE | re.DOTALL)
    actions = [
        {key: value for key, value in match.groupdict().items() if value}
        for step in steps
        for match in STEP.finditer(" ".join(step.split()))
    ]
    assert actions, f"no click path found in {README}'s section {MAIN_JOB_SECTION!r}"
    return actions


def _visible(page, label: str):
    """What a person would click for `label`: a button, a link or text, inside the open dialog first."""
    deadline = time.monotonic() + UI_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        dialog = page.get_by_role("dialog")
        scopes = [dialog, page] if dialog.count() else [page]
        for scope in scopes:
            for candidate in (
                scope.get_by_role("button", name=label, exact=True),
                scope.get_by_role("link", name=label, exact=True),
                scope.get_by_text(label, exact=True),
            ):
                for element in candidate.all():
                    if element.is_visible():
                        return element
        page.wait_for_timeout(250)
    raise AssertionError(f"the README says to click {label!r}, but the UI shows no such thing")


def follow(page, actions: list[dict[str, str]], url: str) -> None:
    from playwright.sync_api import expect

    for action in actions:
        if "url" in action:
            page.goto(action["url"].replace("http://127.0.0.1:3001", url), timeout=UI_TIMEOUT_MS)
        elif "optional" in action:
            greeting = page.get_by_text(action["optional"], exact=True)
            with contextlib.suppress(Exception):
                greeting.wait_for(timeout=5_000)
            if greeting.is_visible():
                _visible(page, action["dismiss"]).click()
        elif "box" in action:
            page.get_by_label(action["box"], exact=True).focus()
            page.keyboard.type(action["text"])
            page.keyboard.press("Enter")
        elif "click" in action:
            _visible(page, action["click"]).click()
        else:
            expect(page.get_by_text(action["expect"]).first).to_be_visible(timeout=UI_TIMEOUT_MS)


def _main_job_done(url: str) -> tuple[bool, dict]:
    nodes = [node for node in graphql(url, ASSETS_QUERY)["assetNodes"] if node["isMaterializable"]]
    missing = {
        "/".join(node["assetKey"]["path"]): node["partitionStats"] for node in nodes if not is_done(node)
    }
    return not missing, {"not materialized": missing, "nodes": nodes}


def _run_lines(terminal: str) -> tuple[dict[str, str], dict[str, str]]:
    """dev-local's started lines and end lines, by run id."""
    lines = re.findall(r"^dev-local: run (\w{8}) ((\w+) .*)$", terminal, re.MULTILINE)
    started = {run: line for run, line, word in lines if word == "started"}
    ended = {run: line for run, line, word in lines if word in ("SUCCESS", "FAILURE", "CANCELED")}
    return started, ended


def _wait_for_runs_reported(home: Path, timeout: float = 120) -> None:
    """dev-local reports runs every few seconds: wait until every started run has its end line."""
    deadline = time.monotonic() + timeout
    while True:
        started, ended = _run_lines((home.parent / "dev-local.log").read_text())
        if started.keys() == ended.keys():
            return
        assert time.monotonic() < deadline, {
            "started, no end line": {run: started[run] for run in started.keys() - ended.keys()},
            "ended, no started line": {run: ended[run] for run in ended.keys() - started.keys()},
        }
        time.sleep(1)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed (CI: apt-get install chromium)")
@pytest.mark.timeout(MAIN_JOB_TIMEOUT + 300)
def test_readme_main_job_in_a_browser(tmp_path):
    """A newcomer's first hour: a fresh dev-local, exactly the README's clicks, then only watching.
    Fails when the README and the UI part ways, when the shipped example is not all green, and
    when dev-local's terminal floods or warns."""
    from playwright.sync_api import expect, sync_playwright

    actions = readme_click_path()
    home = tmp_path / "home"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = _start(home, "--port", str(port))
    try:
        _wait_loaded(port, home)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            try:
                follow(page, actions, url)
            finally:
                page.screenshot(path=tmp_path / "after-the-clicks.png")
            deadline = time.monotonic() + MAIN_JOB_TIMEOUT
            while not (done := _main_job_done(url))[0]:
                assert process.poll() is None and time.monotonic() < deadline, done[1]["not materialized"]
                time.sleep(3)
            _visible(page, "Catalog").click()
            page.get_by_text("raw / flights").first.wait_for(timeout=UI_TIMEOUT_MS)
            # What a person sees once the UI caught up: nothing left unmaterialized.
            expect(page.get_by_text("Never materialized")).to_have_count(0, timeout=UI_TIMEOUT_MS)
            page.screenshot(path=tmp_path / "catalog.png")
            _visible(page, "marts / fct_flights").click()
            # The asset's metadata table, which dagster-dbt fills (the unique id is always there).
            expect(page.get_by_text("dagster_dbt/unique_id").first).to_be_visible(timeout=UI_TIMEOUT_MS)
            page.screenshot(path=tmp_path / "fct_flights.png", full_page=True)
            assert page.get_by_text("(unserializable)").count() == 0
            browser.close()
        _wait_for_runs_reported(home)
        failed_checks = {
            ("/".join(node["assetKey"]["path"]), check["name"]): check["executionForLatestMaterialization"]
            for node in _main_job_done(url)[1]["nodes"]
            for check in (node["assetChecksOrError"] or {}).get("checks", [])
            if (check["executionForLatestMaterialization"] or {}).get("status") != "SUCCEEDED"
        }
        assert failed_checks == {}, "the shipped example should pass every shipped check"
    finally:
        terminal = _interrupt(process, home)
    assert process.returncode == 0, terminal
    lines = terminal.splitlines()
    assert all(line.startswith(("dev-local: ", "export ")) for line in lines), terminal
    assert not re.search(r"warn|traceback|error", terminal, re.IGNORECASE), terminal
    assert any(
        re.match(r"dev-local: +\d+ s +marts: parsing dbt|dev-local: +\d+ s +marts: importing", line)
        for line in lines
    ), terminal
    started, ended = _run_lines(terminal)
    assert started and started.keys() == ended.keys(), terminal
    assert all(line.startswith("SUCCESS after ") for line in ended.values()), terminal
    assert any("raw/flights [2013-01-01…2013-12-01]" in line for line in started.values()), terminal
    log = (home / "dagster.log").read_text()
    assert "dagster.daemon" in log and f"Dagster's own log: {home / 'dagster.log'}" in terminal


def test_a_location_that_fails_to_load_is_named_with_exception_file_and_line(tmp_path):
    """dev-local's summary reads the webserver's GraphQL answer: asked the same query of a real
    workspace with a broken location, it names the user's exception and where it was raised."""
    import dagster as dg
    from dagster_graphql.test.utils import define_out_of_process_context, execute_dagster_graphql

    from devtools.webserver import LOCATIONS_QUERY, load_error

    broken = tmp_path / "broken_definitions.py"
    broken.write_text("import dagster as dg\n\nSETTING = {}['missing']\n")
    with (
        dg.instance_for_test(temp_dir=str(tmp_path)) as instance,
        define_out_of_process_context(str(broken), None, instance) as context,
    ):
        result = execute_dagster_graphql(context, LOCATIONS_QUERY)
    (entry,) = result.data["workspaceOrError"]["locationEntries"]
    error = load_error(entry["locationOrLoadError"])
    assert error.startswith("KeyError: 'missing'"), error
    assert error.endswith(f"({broken}:3)"), error


class _LineageReceiver(BaseHTTPRequestHandler):
    """An OpenLineage HTTP endpoint (POST /api/v1/lineage) keeping what it receives."""

    received: list[dict]

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/api/v1/lineage":
            self.received.append(json.loads(body))
        self.send_response(201 if self.path == "/api/v1/lineage" else 404)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.mark.timeout(MAIN_JOB_TIMEOUT + 300)
def test_the_main_job_s_lineage_reaches_a_catalog_as_the_asset_graph(tmp_path):
    """OPENLINEAGE_URL set: every run of the main job reaches the endpoint, which is down for the first
    runs, and the datasets and edges the events describe are the warehouse tables and the asset graph
    the webserver shows across both locations, no more, no less."""
    lineage_port = free_port()
    home = tmp_path / "home"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = {"OPENLINEAGE_URL": f"http://127.0.0.1:{lineage_port}", "ALERTS_POLL_SECONDS": "2"}
    process = _start(home, "--port", str(port), env=settings)
    server = None
    try:
        _wait_loaded(port, home)
        raw = [
            node["assetKey"]["path"] for node in materializable_assets(url) if node["groupName"] == RAW_GROUP
        ]
        launch_raw_backfill(url, raw)
        deadline = time.monotonic() + MAIN_JOB_TIMEOUT
        # The endpoint is down until the watcher has failed to send a finished run's lineage.
        while "not sent to 127.0.0.1" not in (home / "dagster.log").read_text():
            assert process.poll() is None and time.monotonic() < deadline, "no lineage was tried"
            time.sleep(1)
        _LineageReceiver.received = received = []
        server = ThreadingHTTPServer(("127.0.0.1", lineage_port), _LineageReceiver)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        while not (
            all(is_done(node) for node in materializable_assets(url))
            and set(run_statuses(url).values()) <= TERMINAL_STATUSES
        ):
            assert process.poll() is None and time.monotonic() < deadline, "the main job did not finish"
            time.sleep(2)
        runs = run_statuses(url)

        def ended() -> set[str]:
            return {e["run"]["runId"] for e in received if e["eventType"] in ("COMPLETE", "FAIL")}

        while not runs.keys() <= ended():
            assert time.monotonic() < deadline, f"no lineage for runs {runs.keys() - ended()}"
            time.sleep(1)
        nodes = graphql(url, ASSET_GRAPH_QUERY)["assetNodes"]
    finally:
        terminal = _interrupt(process, home)
        if server is not None:
            server.shutdown()
    assert process.returncode == 0, terminal
    export = re.search(r"^export (.*)$", terminal, re.MULTILINE).group(1)
    warehouse = dict(item.split("=", 1) for item in shlex.split(export))
    host = warehouse["WAREHOUSE_HOST"]  # a socket folder is this machine: libpq's localhost
    namespace = (
        f"postgres://{'localhost' if host.startswith('/') else host}:{warehouse.get('WAREHOUSE_PORT', 5432)}"
    )

    def dataset(table: str) -> tuple[str, str]:
        return namespace, f"{warehouse['WAREHOUSE_DB']}.{table}"

    tables = {
        "/".join(node["assetKey"]["path"]): entry["text"]
        for node in nodes
        for entry in node["metadataEntries"]
        if entry["label"] == "dagster/table_name"
    }
    shown = {
        (dataset(tables["/".join(dep["path"])]), dataset(tables["/".join(node["assetKey"]["path"])]))
        for node in nodes
        for dep in node["dependencyKeys"]
    }
    sent = {
        ((i["namespace"], i["name"]), (o["namespace"], o["name"]))
        for event in received
        for i in event["inputs"]
        for o in event["outputs"]
    }
    assert sent == shown
    named = {(d["namespace"], d["name"]) for e in received for d in (*e["inputs"], *e["outputs"])}
    assert named == {dataset(table) for table in tables.values()}
    # Each Dagster run: a START, then its end; each asset's event names that run as its parent.
    for run_id, status in runs.items():
        types = [e["eventType"] for e in received if e["run"]["runId"] == run_id]
        assert types[0] == "START" and types[-1] == ("COMPLETE" if status == "SUCCESS" else "FAIL"), types
    parents = {e["run"]["facets"]["parent"]["run"]["runId"] for e in received if e["outputs"]}
    assert parents <= runs.keys()
