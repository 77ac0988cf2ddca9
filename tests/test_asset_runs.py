"""devtools.asset_runs without a webserver: the order in which a location's assets are launched."""

from __future__ import annotations

from devtools.asset_runs import launch_plan


def test_launch_plan_orders_partitioned_between_their_upstream_and_downstream():
    def node(name, partitioned, *deps):
        return {
            "assetKey": {"path": [name]},
            "isPartitioned": partitioned,
            "dependencyKeys": [{"path": [d]} for d in deps],
        }

    nodes = [
        node("summary", False, "fact", "dim"),
        node("fact", True, "staged", "dim"),
        node("staged", True, "outside"),
        node("dim", False, "outside"),
    ]
    assert launch_plan(nodes) == [([["dim"]], False), ([["fact"], ["staged"]], True), ([["summary"]], False)]
