"""The README's main job through GraphQL, as the UI does it: used by tests and bench/main_job.py."""

from __future__ import annotations

from devtools.webserver import graphql

RAW_GROUP = "raw"

ASSETS_QUERY = """
{ assetNodes { assetKey { path } groupName isMaterializable isPartitioned
    partitionStats { numMaterialized numPartitions }
    assetMaterializations(limit: 1) { timestamp runId } } }
"""
BACKFILL_MUTATION = """
mutation Backfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on UnauthorizedError { message }
  }
}
"""


def materializable_assets(url: str) -> list[dict]:
    return [node for node in graphql(url, ASSETS_QUERY)["assetNodes"] if node["isMaterializable"]]


def is_done(node: dict) -> bool:
    if node["isPartitioned"]:
        stats = node["partitionStats"]
        return stats["numPartitions"] > 0 and stats["numMaterialized"] == stats["numPartitions"]
    return bool(node["assetMaterializations"])


def launch_raw_backfill(url: str, raw_keys: list[list[str]]) -> str:
    params = {"assetSelection": [{"path": key} for key in raw_keys], "allPartitions": True}
    result = graphql(url, BACKFILL_MUTATION, {"params": params})["launchPartitionBackfill"]
    if result["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(f"backfill not launched: {result}")
    return result["backfillId"]
