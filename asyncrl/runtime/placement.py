"""Where each actor goes: learners, samplers and inference actors over the nodes of a Ray cluster (no Ray here).

The rules, so that the experiment that runs on one machine runs on a cluster unchanged:

- Learners go to a GPU node when the cluster has one (the one with the most GPUs), else to the driver's node.
  The evaluator goes with them.
- Samplers spread over the nodes by the CPUs each has left once the learners (and, with remote inference, one
  inference actor per node) are counted. ``runtime.num_samplers`` unset: every free CPU slot of every node gets
  a sampler (at least one sampler in all); set: that many, shared out in proportion to the free slots.
- With remote inference every node that has samplers gets one inference actor, and its samplers use it, so
  observations never cross the network. All players of a VizDoom match live in one sampler, so on one node.
- On the embedded local Ray the machine is the run's own: unpinned, every core gets a sampler and the learner
  shares them (the OS schedules); pinned (``runtime.pin_cores``), the learner's cores are left to it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from asyncrl.config.schema import Config


@dataclass(frozen=True)
class Node:
    node_id: str
    cpus: int  # logical CPU slots
    gpus: float = 0.0
    is_driver: bool = False


@dataclass
class Plan:
    learner_node: str
    samplers: list[str] = field(default_factory=list)  # the node of sampler i
    inference_nodes: list[str] = field(default_factory=list)  # nodes with an inference actor (remote inference)

    @property
    def num_samplers(self) -> int:
        return len(self.samplers)

    def local_index(self, sampler: int) -> int:
        """Sampler ``sampler``'s rank among the samplers of its node (for pinning it to a core there)."""
        node = self.samplers[sampler]
        return sum(1 for n in self.samplers[:sampler] if n == node)


def learner_node(nodes: list[Node]) -> Node:
    gpu_nodes = [n for n in nodes if n.gpus > 0]
    if gpu_nodes:
        return max(gpu_nodes, key=lambda n: (n.gpus, n.is_driver))
    return next((n for n in nodes if n.is_driver), nodes[0])


def _reserved(node: Node, learner_here: bool, cfg: Config) -> int:
    """CPU slots our other actors take on ``node``."""
    taken = 1 if cfg.runtime.inference == "remote" else 0
    if learner_here:
        taken += cfg.population.size + (1 if cfg.eval.period else 0)
    return taken


def share(total: int, weights: list[int]) -> list[int]:
    """``total`` split in proportion to ``weights`` (largest remainders; equal shares if all are 0)."""
    if not weights:
        return []
    if sum(weights) <= 0:
        weights = [1] * len(weights)
    exact = [total * w / sum(weights) for w in weights]
    out = [int(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: exact[i] - out[i], reverse=True)
    for i in by_remainder[: total - sum(out)]:
        out[i] += 1
    return out


def plan_cluster(nodes: list[Node], cfg: Config) -> Plan:
    """The placement over the alive ``nodes`` of a cluster the run joined."""
    if not nodes:
        raise ValueError("no alive node in the cluster")
    home = learner_node(nodes)
    free = [max(0, n.cpus - _reserved(n, n.node_id == home.node_id, cfg)) for n in nodes]
    if cfg.runtime.num_samplers is not None:
        counts = share(cfg.runtime.num_samplers, free)
    elif sum(free) > 0:
        counts = free
    else:  # every slot is taken: one sampler beside the learners anyway
        counts = [1 if n is home else 0 for n in nodes]
    samplers = [n.node_id for n, k in zip(nodes, counts, strict=True) for _ in range(k)]
    return Plan(home.node_id, samplers, _inference_nodes(samplers, cfg))


def plan_local(cores: int, cfg: Config, node_id: str = "local") -> Plan:
    """The placement on the embedded local Ray: one node, the machine's ``cores``."""
    wanted = cfg.runtime.num_samplers
    if wanted is None:
        learner_cores = min(cfg.runtime.learner_threads, max(1, cores - 1)) if cfg.runtime.pin_cores else 0
        wanted = max(1, cores - learner_cores)
    samplers = [node_id] * wanted
    return Plan(node_id, samplers, _inference_nodes(samplers, cfg))


def describe_plan(plan: Plan, cfg: Config, cores: int | None = None) -> str:
    """One clause for the start line: how many samplers of how many envs, where the learner runs, and why
    (``cores``: the local machine's; None on a cluster)."""
    rt = cfg.runtime
    where = f" on {len(set(plan.samplers))} nodes" if cores is None else ""
    what = f"{plan.num_samplers} sampler(s) x {rt.num_envs} envs{where}"
    if rt.num_samplers is not None:
        why = f"runtime.num_samplers={rt.num_samplers}"
    elif cores is None:
        why = "auto: one per free CPU slot of each node"
    elif rt.pin_cores:
        why = f"auto: one per core of {cores} the learner leaves"
    else:
        why = f"auto: one per core of {cores}, the learner sharing them"
    if rt.pin_cores and cores is not None:
        learner = min(rt.learner_threads, max(1, cores - 1))
        what += f", pinned, learner on {learner} core(s) of its own"
    return f"{what} ({why})"


def _inference_nodes(samplers: list[str], cfg: Config) -> list[str]:
    return list(Counter(samplers)) if cfg.runtime.inference == "remote" else []


def added_samplers(plan: Plan, node: Node, cfg: Config) -> int:
    """How many samplers a node that joined mid-run gets: its free slots, when the sampler count is automatic."""
    if cfg.runtime.num_samplers is not None or node.node_id in plan.samplers:
        return 0
    return max(0, node.cpus - _reserved(node, node.node_id == plan.learner_node, cfg))
