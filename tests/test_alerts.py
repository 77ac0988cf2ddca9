"""The alerts watcher against a real Dagster instance on Postgres, a real webhook receiver and a real
SMTP server on 127.0.0.1: each fault alerts exactly once, says when it is resolved, and a repeat of the
same failure stays quiet."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import dagster as dg
import pytest
from aiosmtpd.controller import Controller
from dagster._core.storage.tags import WILL_RETRY_TAG
from dagster._core.test_utils import freeze_time
from dagster._daemon.freshness import FreshnessDaemon

from devtools.ports import free_port
from ingest_raw.catalog import AIRLINES
from ingest_raw.factory import source_asset
from shared.alerts import Settings, Watcher
from shared.resources import PostgresWarehouse
from tests.warehouse_tools import scratch_database

SECRET = "s3cr3t-token"


class _Webhook(BaseHTTPRequestHandler):
    def do_POST(self):
        self.server.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


class _Mailbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture(scope="module")
def receivers() -> Iterator[SimpleNamespace]:
    webhook = ThreadingHTTPServer(("127.0.0.1", 0), _Webhook)
    webhook.received = []
    threading.Thread(target=webhook.serve_forever, daemon=True).start()
    mailbox = _Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    try:
        yield SimpleNamespace(webhook=webhook, mailbox=mailbox, smtp_port=smtp.port)
    finally:
        smtp.stop()
        webhook.shutdown()


@pytest.fixture(scope="module")
def instance(warehouse, tmp_path_factory) -> Iterator[dg.DagsterInstance]:
    """A Dagster instance whose storage is a Postgres database of its own."""
    with scratch_database(warehouse, prefix="alerts") as settings:
        url = (
            f"postgresql+psycopg2://{settings.user}:{settings.password}@/{settings.dbname}"
            f"?host={settings.host}&port={settings.port}"
        )
        storage = {"storage": {"postgres": {"postgres_url": url}}}
        home = tmp_path_factory.mktemp("dagster_home")
        with dg.instance_for_test(temp_dir=str(home), overrides=storage) as instance:
            instance.settings_for_test = settings
            yield instance


@pytest.fixture
def watch(instance, receivers, tmp_path) -> Iterator[SimpleNamespace]:
    """A watcher started now (history is not news), the receivers emptied, the daemon heartbeating."""
    receivers.webhook.received.clear()
    receivers.mailbox.messages.clear()
    settings = Settings(
        webhook_url=f"http://127.0.0.1:{receivers.webhook.server_port}/hook?token={SECRET}",
        smtp_host="127.0.0.1",
        smtp_port=receivers.smtp_port,
        smtp_starttls=False,
        email_to=("oncall@example.com",),
        state_file=tmp_path / "alerts-state.json",
    )
    _heartbeat(instance)
    watcher = Watcher(instance, settings)
    assert watcher.poll() == []

    def poll(now: float | None = None) -> list[str]:
        """Poll once; what reached both destinations, by status and incident (they must agree)."""
        alerts = Watcher(instance, settings).poll(now)  # a fresh process each time: state is on disk
        webhook = [(item["status"], item["incident"]) for item in receivers.webhook.received]
        mails = [str(message["Subject"]).strip() for message in receivers.mailbox.messages]
        receivers.webhook.received.clear()
        receivers.mailbox.messages.clear()
        assert len(mails) == len(webhook) == len(alerts)
        for alert, subject in zip(alerts, mails, strict=True):
            assert subject == f"[{alert.status.upper()}] {alert.title}"
        return [(a.status, a.incident, a.title + "\n" + a.details) for a in alerts]

    yield SimpleNamespace(poll=poll, settings=settings)


def _heartbeat(instance: dg.DagsterInstance, at: float | None = None) -> None:
    """What the daemon writes every few seconds while it lives."""
    from dagster._daemon.types import DaemonHeartbeat

    instance.add_daemon_heartbeat(DaemonHeartbeat(at or time.time(), "SENSOR", None, None))


def _load(instance: dg.DagsterInstance, source, assets=()) -> dg.ExecuteInProcessResult:
    asset = source_asset(source, max_retries=0)
    with mock.patch.dict(os.environ, instance.settings_for_test.to_env()):
        return dg.materialize(
            [asset, *assets],
            instance=instance,
            resources={"warehouse": PostgresWarehouse()},
            raise_on_error=False,
        )


def test_a_permanently_failing_run_alerts_once_and_its_success_resolves_it(instance, watch, tmp_path):
    bad = tmp_path / "airlines.csv"
    bad.write_text("carrier,name\nAA,American\nBB\n")
    source = replace(AIRLINES, input=str(bad))
    assert not _load(instance, source).success

    [(status, incident, text)] = watch.poll()
    assert status == "open" and incident.startswith("run:") and "raw/airlines" in text
    run = instance.get_runs(limit=1)[0]
    assert run.run_id in text and "airlines.csv line 3" in text  # names the run and its first error
    assert not _load(instance, source).success
    assert watch.poll() == []  # the same failure again: no second alert

    good = tmp_path / "good.csv"
    good.write_text("carrier,name\nAA,American\n")
    assert _load(instance, replace(source, input=str(good))).success
    [(status, resolved, _)] = watch.poll()
    assert (status, resolved) == ("resolved", incident)


def test_a_failing_blocking_check_alerts_once(instance, watch):
    @dg.asset(key=["raw", "checked"])
    def checked():
        return None

    @dg.asset_check(asset=checked, blocking=True)
    def never_empty():
        return dg.AssetCheckResult(passed=False, description="0 rows\nmore detail")

    for _ in range(2):
        dg.materialize([checked, never_empty], instance=instance, raise_on_error=False)
        alerts = watch.poll()
        checks = [alert for alert in alerts if alert[1].startswith("check:")]
        if _ == 0:
            [(status, incident, text)] = checks
            assert status == "open" and incident == "check:raw/checked:never_empty"
            assert "blocking check never_empty on raw/checked failed" in text and "0 rows" in text
        else:
            assert checks == []


def test_freshness_failure_and_recovery(instance, watch, tmp_path):
    """The freshness daemon's own evaluation, its clock moved past a 1-minute window."""
    module = tmp_path / "fresh_defs.py"
    module.write_text(
        "from datetime import timedelta\nimport dagster as dg\n\n"
        "@dg.asset(key=['raw', 'fresh'], freshness_policy=dg.FreshnessPolicy.time_window("
        "fail_window=timedelta(minutes=1)))\ndef fresh():\n    return None\n\n"
        "defs = dg.Definitions(assets=[fresh])\n"
    )
    from dagster._core.test_utils import create_test_daemon_workspace_context
    from dagster._core.workspace.load_target import PythonFileTarget

    target = PythonFileTarget(str(module), None, str(tmp_path), "fresh_location")
    fresh = _import(module).fresh
    with create_test_daemon_workspace_context(target, instance) as context:
        dg.materialize([fresh], instance=instance)
        daemon = FreshnessDaemon()
        later = time.time() + 180
        with freeze_time(later):
            list(daemon.run_iteration(context))
        _heartbeat(instance, later)
        [(status, incident, text)] = watch.poll(later)
        assert (status, incident) == ("open", "freshness:raw/fresh") and "fail" in text
        _heartbeat(instance, later + 1)
        assert watch.poll(later + 1) == []

        dg.materialize([fresh], instance=instance)
        list(daemon.run_iteration(context))
        _heartbeat(instance)
        [(status, incident, _)] = watch.poll()
        assert (status, incident) == ("resolved", "freshness:raw/fresh")


def _import(path: Path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _start_daemon(instance: dg.DagsterInstance, workspace: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "shared.daemon", "run", "-w", workspace],
        env=os.environ | {"DAGSTER_HOME": instance.root_directory},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _heartbeat_after(instance: dg.DagsterInstance, after: float, timeout: float = 120) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        beats = [beat.timestamp for beat in instance.get_daemon_heartbeats().values()]
        if beats and max(beats) > after:
            return max(beats)
        time.sleep(0.5)
    raise AssertionError(f"the daemon wrote no heartbeat within {timeout:.0f} s")


def test_a_daemon_killed_alerts_once_and_its_restart_resolves(instance, watch, tmp_path):
    """The real daemon (the stack's `shared.daemon`), killed as a crash kills it, then started
    again. Time past the stale limit is the `now` of the polls; the heartbeats are the daemon's own."""
    (tmp_path / "defs.py").write_text("import dagster as dg\n\ndefs = dg.Definitions()\n")
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(f"load_from:\n  - python_file: {tmp_path / 'defs.py'}\n")
    daemon = _start_daemon(instance, workspace)
    try:
        _heartbeat_after(instance, time.time())
        daemon.kill()
        daemon.wait(30)
        last = max(beat.timestamp for beat in instance.get_daemon_heartbeats().values())
        stale = watch.settings.daemon_stale_seconds
        [(status, incident, text)] = watch.poll(last + stale + 5)
        assert (status, incident) == ("open", "daemon") and "last heartbeat" in text
        assert watch.poll(last + stale + 60) == []  # still dead: no second alert
        watcher = Watcher(instance, watch.settings)  # its quiet start ends `stale` s from now
        daemon = _start_daemon(instance, workspace)
        _heartbeat_after(instance, time.time() + 1)
        [alert] = watcher.poll(watcher.quiet_until + 1)  # a heartbeat fresher than the limit then
        assert (alert.status, alert.incident) == ("resolved", "daemon")
    finally:
        daemon.kill()
        daemon.wait(30)


def test_secrets_never_reach_the_log(instance, watch, caplog, capsys):
    broken = replace(watch.settings, webhook_url=f"http://127.0.0.1:{free_port()}/hook?token={SECRET}")
    silent = time.time() + broken.daemon_stale_seconds + 5
    assert Watcher(instance, broken).poll(silent) == []  # undeliverable: the incident stays unsent
    assert "webhook to 127.0.0.1 failed" in caplog.text
    assert SECRET not in caplog.text + capsys.readouterr().out


def _wait_for(received: list, predicate, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [item for item in received if predicate(item)]
        if found:
            return found[0]
        time.sleep(0.2)
    raise TimeoutError(f"no such alert within {timeout:.0f} s; received {received}")


def test_the_watcher_process_reports_a_location_that_fails_to_load(instance, receivers, tmp_path):
    """End to end: the real watcher process, a real webserver whose location's definitions raise."""
    from devtools.webserver import graphql, wait_until_loaded

    receivers.webhook.received.clear()
    location = tmp_path / "defs.py"
    location.write_text("raise RuntimeError('definitions exploded on purpose')\n")
    (tmp_path / "workspace.yaml").write_text(
        f"load_from:\n  - python_file: {{relative_path: {location}, location_name: exploding}}\n"
    )
    env = os.environ | {"DAGSTER_HOME": instance.root_directory}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    webserver = subprocess.Popen(
        [
            Path(sys.executable).with_name("dagster-webserver"),
            "-w",
            tmp_path / "workspace.yaml",
            "-p",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    alerts_env = env | {
        "ALERTS_WEBHOOK_URL": f"http://127.0.0.1:{receivers.webhook.server_port}/hook?token={SECRET}",
        "ALERTS_WEBSERVER_URL": url,
        "ALERTS_POLL_SECONDS": "0.5",
        "ALERTS_STATE_FILE": str(tmp_path / "state.json"),
    }
    watcher = subprocess.Popen(
        [sys.executable, "-m", "shared.alerts"],
        env=alerts_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=_ignore_stop_signals,  # as a parent shell's `cmd &` leaves them: it must stop anyway
    )
    try:
        wait_until_loaded(url, timeout=180)
        opened = _wait_for(receivers.webhook.received, lambda item: item["incident"] == "location:exploding")
        assert opened["status"] == "open" and "definitions exploded on purpose" in opened["text"]
        location.write_text("import dagster as dg\n\ndefs = dg.Definitions()\n")
        graphql(
            url, 'mutation { reloadRepositoryLocation(repositoryLocationName: "exploding") { __typename } }'
        )
        _wait_for(receivers.webhook.received, lambda item: item["status"] == "resolved")
        incidents = [(item["status"], item["incident"]) for item in receivers.webhook.received]
        assert incidents == [("open", "location:exploding"), ("resolved", "location:exploding")]
    finally:
        for process in (watcher, webserver):
            process.terminate()
            process.wait(30)
    output = watcher.stdout.read().decode()
    assert "webhook to 127.0.0.1" in output and SECRET not in output
    assert output.rstrip().endswith("alerts INFO stopped"), output[-2000:]


def _ignore_stop_signals() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)


def test_a_failure_the_retry_daemon_will_retry_is_not_news(instance, watch):
    @dg.asset(key=["raw", "flaky"])
    def flaky():
        raise RuntimeError("connection reset")

    for will_retry, expected in (("true", []), ("false", ["open"])):
        result = dg.materialize([flaky], instance=instance, raise_on_error=False)
        instance.add_run_tags(result.run_id, {WILL_RETRY_TAG: will_retry})
        alerts = watch.poll()
        assert [status for status, *_ in alerts] == expected
        assert all("connection reset" in text for *_, text in alerts)


def test_a_failure_and_its_recovery_within_one_poll_both_reach_a_person(instance, watch):
    outcome = {"passed": False}

    @dg.asset(key=["raw", "flapping"])
    def flapping():
        return None

    @dg.asset_check(asset=flapping)
    def flaps():
        return dg.AssetCheckResult(passed=outcome["passed"])

    for passed in (False, True):
        outcome["passed"] = passed
        dg.materialize([flapping, flaps], instance=instance, raise_on_error=False)
    incident = "check:raw/flapping:flaps"
    alerts = [(status, name) for status, name, _ in watch.poll()]
    assert alerts == [("open", incident), ("resolved", incident)]


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({}, "OPENLINEAGE_WAREHOUSE_URL"),
        ({"OPENLINEAGE_WAREHOUSE_URL": "mysql://db:3306/x"}, "postgres://host:port/database"),
        ({"OPENLINEAGE_WAREHOUSE_URL": "postgres://db:5432/warehouse"}, "ALERTS_WEBSERVER_URL"),
    ],
    ids=["no-warehouse", "not-postgres", "no-webserver"],
)
def test_lineage_turned_on_without_what_it_needs_stops_the_watcher_naming_it(
    instance, tmp_path, settings, named
):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WAREHOUSE_", "ALERTS_", "OPENLINEAGE_"))}
    env |= {"DAGSTER_HOME": instance.root_directory, "OPENLINEAGE_URL": "http://127.0.0.1:9", **settings}
    watcher = subprocess.run(
        [sys.executable, "-m", "shared.alerts"], env=env, capture_output=True, text=True, timeout=120
    )
    assert watcher.returncode == 1
    assert watcher.stderr.startswith("shared.alerts: ") and named in watcher.stderr, watcher.stderr
    assert "Traceback" not in watcher.stderr
