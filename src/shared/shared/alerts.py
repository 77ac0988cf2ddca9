"""Alerts that reach a person, for open-source Dagster: `python -m shared.alerts`.

A watcher process polls the Dagster instance (DAGSTER_HOME) and, if ALERTS_WEBSERVER_URL is set, the
webserver's GraphQL, and notifies once per incident and once when it is resolved:

- a run that failed for good (not `dagster/will_retry`), keyed by its job and assets, so a schedule
  failing every night alerts once and its next success resolves it;
- a failed asset check of severity ERROR (WARN too with ALERTS_CHECK_WARNINGS=true), resolved by a pass;
- an asset whose freshness state is FAIL (WARN too with ALERTS_FRESHNESS_WARNINGS=true), and recovery;
- a code location that failed to load, and recovery;
- the daemon not heartbeating for ALERTS_DAEMON_STALE_SECONDS, and back.

A process rather than sensors: a sensor runs inside the daemon and a code location, so it cannot say
that the daemon is dead or that its own location failed to load; one mechanism covers all five.
Open incidents and event cursors live in a JSON state file, so a restart does not alert again.
With OPENLINEAGE_URL set, it also sends every finished run's lineage (`shared.lineage`).
Secrets (a webhook URL holding a token, the SMTP password) come from the environment or `<NAME>_FILE`
and are never logged: log lines name the host only.
"""

from __future__ import annotations

import json
import logging
import os
import re
import smtplib
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dagster as dg
from dagster._core.definitions.freshness import FreshnessState
from dagster._core.events import DagsterEventType
from dagster._core.storage.event_log.base import EventLogCursor
from dagster._core.storage.tags import WILL_RETRY_TAG

from shared.lineage import ASSET_GRAPH_QUERY, Lineage, asset_graph
from shared.signals import stop_on_signals

log = logging.getLogger("shared.alerts")

#: A failed run without `dagster/will_retry` is judged after this long when run retries are enabled
#: (the daemon tags it); earlier, it may still be retried.
RETRY_DECISION_SECONDS = 120
#: Finished runs whose lineage waits for the endpoint; past this many the oldest are dropped.
LINEAGE_BACKLOG = 1000
LOCATIONS_QUERY = """{ workspaceOrError { __typename ... on Workspace { locationEntries { name
  locationOrLoadError { __typename ... on PythonError { message errorChain { error { message } } } } } }
  ... on PythonError { message } } }"""


def _secret(name: str) -> str | None:
    """`NAME` or the contents of the file named by `NAME_FILE` (a Docker/Kubernetes secret)."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return os.environ.get(name) or None


def _flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class Settings:
    webhook_url: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_starttls: bool = True
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    email_from: str = "dagster-alerts@localhost"
    email_to: tuple[str, ...] = ()
    webserver_url: str | None = None
    state_file: Path = Path("alerts-state.json")
    poll_seconds: float = 30.0
    daemon_stale_seconds: float = 120.0
    check_warnings: bool = False
    freshness_warnings: bool = False

    @classmethod
    def from_env(cls) -> Settings:
        """From ALERTS_* (environments/alerts.env.template); an empty variable keeps the default."""

        def env(name: str, default: str) -> str:
            return os.environ.get(name) or default

        return cls(
            webhook_url=_secret("ALERTS_WEBHOOK_URL"),
            smtp_host=env("ALERTS_SMTP_HOST", "") or None,
            smtp_port=int(env("ALERTS_SMTP_PORT", "587")),
            smtp_starttls=_flag(env("ALERTS_SMTP_STARTTLS", "true")),
            smtp_user=env("ALERTS_SMTP_USER", "") or None,
            smtp_password=_secret("ALERTS_SMTP_PASSWORD"),
            email_from=env("ALERTS_EMAIL_FROM", cls.email_from),
            email_to=tuple(a.strip() for a in env("ALERTS_EMAIL_TO", "").split(",") if a.strip()),
            webserver_url=env("ALERTS_WEBSERVER_URL", "") or None,
            state_file=Path(env("ALERTS_STATE_FILE", f"{env('DAGSTER_HOME', '.')}/alerts-state.json")),
            poll_seconds=float(env("ALERTS_POLL_SECONDS", "30")),
            daemon_stale_seconds=float(env("ALERTS_DAEMON_STALE_SECONDS", "120")),
            check_warnings=_flag(env("ALERTS_CHECK_WARNINGS", "false")),
            freshness_warnings=_flag(env("ALERTS_FRESHNESS_WARNINGS", "false")),
        )

    def destinations(self) -> list[str]:
        """Where alerts go, secrets left out (for the start-up log line)."""
        named = []
        if self.webhook_url:
            named.append(f"webhook to {urlsplit(self.webhook_url).hostname}")
        if self.smtp_host and self.email_to:
            named.append(f"email via {self.smtp_host}:{self.smtp_port} to {', '.join(self.email_to)}")
        return named


@dataclass(frozen=True)
class Alert:
    incident: str
    status: str  # "open", "resolved" or "event" (a one-off: nothing to resolve)
    title: str
    details: str = ""

    @property
    def text(self) -> str:
        mark = {"open": ":red_circle:", "resolved": ":large_green_circle:"}.get(self.status, ":warning:")
        lines = [f"{mark} [{self.status.upper()}] {self.title}"]
        return "\n".join(lines + ([self.details] if self.details else []))


def deliver(settings: Settings, alert: Alert) -> None:
    """Print the alert and send it to every configured destination; raises if one fails."""
    print(alert.text, flush=True)
    if settings.webhook_url:
        body = json.dumps(
            {"text": alert.text, "incident": alert.incident, "status": alert.status, "title": alert.title}
        ).encode()
        request = urllib.request.Request(
            settings.webhook_url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
        except OSError as error:  # the URL (and its token) stays out of the message
            reason = getattr(error, "code", None) or type(error).__name__
            raise OSError(f"webhook to {urlsplit(settings.webhook_url).hostname} failed: {reason}") from None
    if settings.smtp_host and settings.email_to:
        message = EmailMessage()
        message["Subject"] = f"[{alert.status.upper()}] {alert.title}"
        message["From"] = settings.email_from
        message["To"] = ", ".join(settings.email_to)
        message.set_content(alert.text)
        try:
            with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=10) as smtp:
                if settings.smtp_starttls:
                    smtp.starttls()
                if settings.smtp_user:
                    smtp.login(settings.smtp_user, settings.smtp_password or "")
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as error:
            raise OSError(f"email via {settings.smtp_host} failed: {type(error).__name__}") from None


class State:
    """Open incidents, event cursors and runs whose lineage is not sent yet, kept in a JSON file
    written atomically."""

    def __init__(self, path: Path):
        self.path = path
        data = json.loads(path.read_text()) if path.is_file() else {}
        self.open: dict[str, str] = data.get("open", {})
        self.cursors: dict[str, int] = data.get("cursors", {})
        self.lineage: list[str] = data.get("lineage", [])

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".tmp")
        data = {"open": self.open, "cursors": self.cursors, "lineage": self.lineage}
        partial.write_text(json.dumps(data, indent=1))
        partial.replace(self.path)


def _first_line(text: str | None) -> str:
    """The first non-empty line, without a leading exception class path (`dagster...Failure: `)."""
    line = next((line.strip() for line in (text or "").splitlines() if line.strip()), "no message")
    return re.sub(r"^[\w.]*\.\w*(Error|Failure|Exception): ", "", line)


def _run_assets(instance: dg.DagsterInstance, run: dg.DagsterRun) -> list[str]:
    """The assets the run was to materialize (a job without an asset selection plans them too)."""
    keys = set(run.asset_selection or ()) or {
        record.dagster_event.asset_key
        for record in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
    }
    return sorted(key.to_user_string() for key in keys)


def _run_location(run: dg.DagsterRun) -> str:
    origin = run.remote_job_origin
    return origin.location_name if origin else run.tags.get("dagster/code_location", "-")


def _run_incident(instance: dg.DagsterInstance, run: dg.DagsterRun) -> tuple[str, str, list[str]]:
    """One incident per location, schedule (or job) and assets: a schedule failing every night is one."""
    location = _run_location(run)
    assets = _run_assets(instance, run)
    what = run.tags.get("dagster/schedule_name") or run.tags.get("dagster/sensor_name") or run.job_name
    return f"run:{location}:{what}:{','.join(assets)}", location, assets


def _run_error(instance: dg.DagsterInstance, run_id: str) -> str:
    for record in instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE):
        error = record.dagster_event.event_specific_data.error
        while error is not None and error.cause is not None:  # what the code raised, not the wrapper
            error = error.cause
        return f"{record.step_key}: {_first_line(error.message if error else None)}"
    for record in instance.all_logs(run_id, of_type=DagsterEventType.RUN_FAILURE):
        return _first_line(record.dagster_event.message)
    return "no error recorded"


class Watcher:
    def __init__(self, instance: dg.DagsterInstance, settings: Settings, lineage: Lineage | None = None):
        self.instance = instance
        self.settings = settings
        self.lineage = lineage
        self.state = State(settings.state_file)
        #: Until the daemon and webserver have had time to start with us, their silence is not news.
        self.quiet_until = time.time() + settings.daemon_stale_seconds

    def poll(self, now: float | None = None) -> list[Alert]:
        """One look at everything; delivers what changed and returns it. A delivery that fails leaves
        its incident unchanged, so the next poll tries again."""
        now = time.time() if now is None else now
        alerts = [
            *self._runs(now),
            *self._freshness(),
            *self._daemon(now),
            *self._locations(now),
        ]
        delivered = []
        for alert, title in alerts:
            try:
                deliver(self.settings, alert)
            except OSError as error:
                log.error("alert %s not delivered: %s", alert.incident, error)
                if alert.status == "open":  # undo, so the next poll tries again
                    self.state.open.pop(alert.incident, None)
                else:
                    self.state.open[alert.incident] = title
                continue
            delivered.append(alert)
        self._send_lineage()
        self.state.save()
        return delivered

    def _transition(
        self, incident: str, failing: bool, title: str, details: str = ""
    ) -> list[tuple[Alert, str]]:
        """The alert (with the incident's title) if the incident opens or closes; the state follows at
        once, so two events of one incident in one poll alert once."""
        if failing and incident not in self.state.open:
            self.state.open[incident] = title
            return [(Alert(incident, "open", title, details), title)]
        if not failing and incident in self.state.open:
            title = self.state.open.pop(incident)
            return [(Alert(incident, "resolved", f"resolved: {title}", details), title)]
        return []

    def _events(self, event_type: DagsterEventType) -> list:
        """Run status changes after the cursor: read from the index shard, so they work on every
        storage (a run-sharded SQLite event log as dev-local's, Postgres)."""
        name = event_type.value
        if name not in self.state.cursors:  # first start: history is not news
            self.state.cursors[name] = self.instance.event_log_storage.get_maximum_record_id() or 0
            return []
        cursor = EventLogCursor.from_storage_id(self.state.cursors[name]).to_string()
        return list(self.instance.fetch_run_status_changes(event_type, 1000, cursor, ascending=True).records)

    def _runs(self, now: float) -> list[tuple[Alert, str]]:
        """Finished runs in order: first the checks each evaluated, then its outcome."""
        alerts = []
        changes = [
            *((record, False) for record in self._events(DagsterEventType.RUN_SUCCESS)),
            *((record, True) for record in self._events(DagsterEventType.RUN_FAILURE)),
        ]
        for record, failed in sorted(changes, key=lambda change: change[0].storage_id):
            run = self.instance.get_run_by_id(record.run_id)
            cursor = DagsterEventType.RUN_FAILURE.value if failed else DagsterEventType.RUN_SUCCESS.value
            if run is None:
                self.state.cursors[cursor] = record.storage_id
                continue
            will_retry = run.tags.get(WILL_RETRY_TAG)
            if (
                failed
                and will_retry is None
                and self.instance.run_retries_enabled
                and now - record.timestamp < RETRY_DECISION_SECONDS
            ):
                break  # the retry daemon has not decided yet: look again next poll
            self.state.cursors[cursor] = record.storage_id
            if self.lineage is not None:
                self.state.lineage.append(run.run_id)
            alerts += self._checks(run.run_id)
            if failed and will_retry == "true":
                continue
            incident, location, assets = _run_incident(self.instance, run)
            title = f"run of {run.job_name} in {location} failed (assets {', '.join(assets) or '-'})"
            details = f"run {run.run_id}: {_run_error(self.instance, run.run_id)}" if failed else ""
            alerts += self._transition(incident, failed, title, details)
        return alerts

    def _send_lineage(self) -> None:
        """The lineage of finished runs not sent yet, oldest first. At the first failure it stops and
        tries again next poll: an endpoint that is down loses nothing unless it stays down for
        LINEAGE_BACKLOG runs."""
        if self.lineage is None or not self.state.lineage:
            return
        dropped = len(self.state.lineage) - LINEAGE_BACKLOG
        if dropped > 0:
            log.error(
                "lineage of the %d oldest runs dropped: %s has not taken it", dropped, self.lineage.host
            )
            del self.state.lineage[:dropped]
        try:
            graph = asset_graph(_graphql(self.settings.webserver_url, ASSET_GRAPH_QUERY))
        except (OSError, ValueError) as error:
            log.error("lineage waits for the webserver: %s", type(error).__name__)
            return
        while self.state.lineage:
            record = self.instance.get_run_record_by_id(self.state.lineage[0])
            if record is not None:
                run = record.dagster_run
                error = (
                    _run_error(self.instance, run.run_id)
                    if run.status == dg.DagsterRunStatus.FAILURE
                    else None
                )
                planned = _run_assets(self.instance, run)
                try:
                    for event in self.lineage.events(
                        self.instance, record, _run_location(run), planned, graph, error
                    ):
                        self.lineage.client.emit(event)
                except Exception as error:  # requests' and the client's own; the URL stays out
                    status = getattr(getattr(error, "response", None), "status_code", None)
                    log.error(
                        "lineage of run %s not sent to %s (%s); trying again next poll",
                        run.run_id,
                        self.lineage.host,
                        status or type(error).__name__,
                    )
                    return
            self.state.lineage.pop(0)

    def _checks(self, run_id: str) -> list[tuple[Alert, str]]:
        alerts = []
        for record in self.instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
            evaluation = record.dagster_event.event_specific_data
            warn = evaluation.severity == dg.AssetCheckSeverity.WARN
            if warn and not self.settings.check_warnings:
                continue
            asset = evaluation.asset_key.to_user_string()
            kind = "blocking check" if evaluation.blocking else f"{evaluation.severity.value.lower()} check"
            title = f"{kind} {evaluation.check_name} on {asset} failed"
            details = f"run {run_id}" + (
                f": {_first_line(evaluation.description)}" if evaluation.description else ""
            )
            alerts += self._transition(
                f"check:{asset}:{evaluation.check_name}", not evaluation.passed, title, details
            )
        return alerts

    def _freshness(self) -> list[tuple[Alert, str]]:
        failing = {FreshnessState.FAIL} | (
            {FreshnessState.WARN} if self.settings.freshness_warnings else set()
        )
        records = self.instance.get_freshness_state_records(list(self.instance.get_asset_keys()))
        alerts = []
        for key, record in records.items():
            if record.freshness_state not in failing | {FreshnessState.PASS, FreshnessState.WARN}:
                continue  # UNKNOWN / NOT_APPLICABLE say nothing either way
            asset = key.to_user_string()
            state = record.freshness_state.value.lower()
            alerts += self._transition(
                f"freshness:{asset}",
                record.freshness_state in failing,
                f"{asset} is not fresh ({state})",
                f"freshness state {state} since {record.updated_at:%Y-%m-%d %H:%M:%S} UTC",
            )
        return alerts

    def _daemon(self, now: float) -> list[tuple[Alert, str]]:
        heartbeats = self.instance.get_daemon_heartbeats()
        last = max((beat.timestamp for beat in heartbeats.values()), default=None)
        stale = now > self.quiet_until and (last is None or now - last > self.settings.daemon_stale_seconds)
        seen = (
            "never" if last is None else datetime.fromtimestamp(last, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        )
        return self._transition(
            "daemon", stale, "the Dagster daemon is not heartbeating", f"last heartbeat: {seen}"
        )

    def _locations(self, now: float) -> list[tuple[Alert, str]]:
        if not self.settings.webserver_url:
            return []
        try:
            workspace = _graphql(self.settings.webserver_url, LOCATIONS_QUERY)["workspaceOrError"]
        except (OSError, ValueError) as error:
            host = urlsplit(self.settings.webserver_url).hostname
            return self._transition(
                "webserver",
                now > self.quiet_until,
                f"the Dagster webserver at {host} does not answer",
                f"{type(error).__name__}: {_first_line(str(error))}",
            )
        alerts = self._transition("webserver", False, "")
        for entry in workspace.get("locationEntries", []):
            loaded = entry["locationOrLoadError"] or {}
            failed = loaded.get("__typename") == "PythonError"
            alerts += self._transition(
                f"location:{entry['name']}",
                failed,
                f"code location {entry['name']} failed to load",
                _root_cause(loaded) if failed else "",
            )
        return alerts


def _root_cause(error: dict[str, Any]) -> str:
    """The first line of the innermost error: what the definitions raised, not Dagster's wrapper."""
    chain = [link["error"]["message"] for link in error.get("errorChain") or []]
    return _first_line((chain or [error.get("message")])[-1])


def _graphql(url: str, query: str) -> dict[str, Any]:
    request = urllib.request.Request(
        url.rstrip("/") + "/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["data"]


def main() -> None:
    stop_on_signals()  # a stop ends the watch between polls
    handler = logging.StreamHandler()  # this module's lines only, not every library's
    handler.setFormatter(logging.Formatter("%(asctime)s alerts %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        settings = Settings.from_env()
        lineage = Lineage.from_env()
        if lineage is not None and not settings.webserver_url:
            raise ValueError(
                "OPENLINEAGE_URL is set but ALERTS_WEBSERVER_URL is not: lineage reads the asset graph there"
            )
    except ValueError as error:
        raise SystemExit(f"shared.alerts: {error}") from None
    log.info(
        "watching every %.0f s; alerts go to %s",
        settings.poll_seconds,
        "; ".join(settings.destinations()) or "this terminal only",
    )
    if lineage is not None:
        log.info("lineage goes to %s", lineage.host)
    with dg.DagsterInstance.get() as instance:
        watcher = Watcher(instance, settings, lineage)
        try:
            while True:
                try:
                    watcher.poll()
                except Exception:  # a storage hiccup must not end the watch; the next poll retries
                    log.exception("poll failed")
                time.sleep(settings.poll_seconds)
        except KeyboardInterrupt:
            log.info("stopped")


if __name__ == "__main__":
    main()
