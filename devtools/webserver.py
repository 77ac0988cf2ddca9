"""Ask a running Dagster webserver about its code locations (GraphQL over HTTP, stdlib only)."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable

LOCATIONS_QUERY = """
{ workspaceOrError { __typename
    ... on Workspace { locationEntries { name loadStatus
        locationOrLoadError { __typename ... on PythonError {
            message stack errorChain { error { message stack } } } } } }
    ... on PythonError { message } } }
"""


def graphql(url: str, query: str, variables: dict | None = None, timeout: float = 10) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(f"{url}/graphql", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        payload = json.load(response)
    if payload.get("errors"):
        raise RuntimeError(f"GraphQL error from {url}: {payload['errors']}")
    return payload["data"]


def location_states(url: str) -> dict[str, dict]:
    """name -> {"status": LOADED|LOADING, "error": message or None}."""
    workspace = graphql(url, LOCATIONS_QUERY)["workspaceOrError"]
    if workspace["__typename"] != "Workspace":
        raise RuntimeError(f"workspace failed to load: {workspace.get('message')}")
    states = {}
    for entry in workspace["locationEntries"]:
        loaded = entry["locationOrLoadError"] or {}
        error = load_error(loaded) if loaded.get("__typename") == "PythonError" else None
        states[entry["name"]] = {"status": entry["loadStatus"], "error": error}
    return states


_FRAME = re.compile(r'File "([^"]+)", line (\d+)')


def load_error(error: dict) -> str:
    """The exception that made a location fail to load, as check-defs names it: the innermost error of
    the chain (the user's, not the DagsterUserCodeLoadError around it) with the file and line it was
    raised at."""
    chain = [error, *(link["error"] for link in error.get("errorChain") or [])]
    message = (chain[-1].get("message") or "").strip() or (error.get("message") or "").strip()
    for item in reversed(chain):
        frames = _FRAME.findall("".join(item.get("stack") or []))
        if frames:
            path, line = frames[-1]
            return f"{message} ({path}:{line})"
    return message


def wait_until_loaded(
    url: str, timeout: float, names: set[str] | None = None, still_alive: Callable[[], None] = lambda: None
) -> dict[str, dict]:
    """Poll until every location (or those in `names`) finished loading; raise on timeout.
    `still_alive` runs before each poll and raises when waiting longer is pointless."""
    deadline = time.monotonic() + timeout
    states: dict[str, dict] = {}
    while time.monotonic() < deadline:
        still_alive()
        try:
            states = location_states(url)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            states = {}
        loaded = states and all(s["status"] == "LOADED" for s in states.values())
        if loaded and (names is None or names <= states.keys()):
            return states
        time.sleep(0.5)
    raise TimeoutError(f"locations at {url} not loaded within {timeout:.0f} s: {states or 'no answer'}")
