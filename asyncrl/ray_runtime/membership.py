"""A cluster's nodes joining and leaving mid-run (``runtime.address``): read the node list every few seconds.

A node that leaves takes its samplers (and its inference actor) with it and the run goes on with the others; a
node that joins gets samplers when their number is automatic (``runtime.num_samplers`` unset).
"""

from __future__ import annotations

import logging
import time

import ray

from asyncrl.ray_runtime.faults import Faults
from asyncrl.ray_runtime.fleet import Fleet
from asyncrl.ray_runtime.in_flight import InFlight
from asyncrl.runtime.placement import added_samplers, learner_node

log = logging.getLogger(__name__)

NODE_CHECK_S = 5.0  # a cluster's node list is read this often


class Membership:
    def __init__(self, fleet: Fleet, calls: InFlight, faults: Faults):
        self.fleet, self.calls, self.faults = fleet, calls, faults
        self.next_check = time.monotonic() + NODE_CHECK_S

    def check(self) -> None:
        """Follow the node list if it is time to. Samplers started here have nothing in flight, so the runtime's
        next fill serves them first."""
        if time.monotonic() < self.next_check:
            return
        self.next_check = time.monotonic() + NODE_CHECK_S
        from asyncrl.ray_runtime.cluster import alive_nodes

        nodes = alive_nodes()
        if not nodes:
            return
        fleet, plan = self.fleet, self.fleet.plan
        alive = {n.node_id for n in nodes}
        for node in {s.node for s in fleet.samplers.values()} - alive:
            lost = [i for i, s in fleet.samplers.items() if s.node == node]
            for i in lost:
                fleet.remove_sampler(i)
                self.calls.forget("collect", i)
                self.faults.heartbeats.forget(("sampler", i))
            log.warning("node %s left the cluster: its %d sampler(s) went with it; the run goes on with %d",
                        node[:8], len(lost), len(fleet.samplers))
        for node in [n for n in fleet.inference if n not in alive]:
            ray.kill(fleet.inference.pop(node), no_restart=True)
            self.faults.inference_gone(node)
        if plan.learner_node not in alive:
            plan.learner_node = learner_node(nodes).node_id  # where dead learners come back
        if not fleet.samplers:  # never none: one beside the learners, on the node that hosts them
            self._start_samplers(plan.learner_node, 1)
        for node in nodes:
            if (count := added_samplers(plan, node, fleet.cfg)) > 0:
                self._start_samplers(node.node_id, count)
                log.info("node %s joined the cluster with %d CPU(s): started %d sampler(s) there", node.node_id[:8],
                         node.cpus, count)

    def _start_samplers(self, node: str, count: int) -> None:
        fleet = self.fleet
        if fleet.cfg.runtime.inference == "remote" and node not in fleet.inference:
            fleet.inference[node] = fleet.new_inference(node)
            self.faults.inference_added(node)
        for _ in range(count):
            fleet.add_sampler(node)
            fleet.plan.samplers.append(node)
