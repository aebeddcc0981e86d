"""The cluster as the placement sees it: the alive nodes, their CPU slots and GPUs, which one is the driver's."""

from __future__ import annotations

import ray

from asyncrl.runtime.placement import Node


def alive_nodes() -> list[Node]:
    """Alive nodes, the driver's first."""
    here = ray.get_runtime_context().get_node_id()
    nodes = [Node(n["NodeID"], int(n["Resources"].get("CPU", 0)), float(n["Resources"].get("GPU", 0.0)),
                  n["NodeID"] == here)
             for n in ray.nodes() if n.get("Alive")]
    return sorted(nodes, key=lambda n: (not n.is_driver, n.node_id))


def on_node(node_id: str | None) -> dict:
    """Actor options that place it on ``node_id`` while that node lives (soft: a restart may go elsewhere);
    nothing for the embedded local Ray."""
    if node_id is None:
        return {}
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return {"scheduling_strategy": NodeAffinitySchedulingStrategy(node_id=node_id, soft=True)}
