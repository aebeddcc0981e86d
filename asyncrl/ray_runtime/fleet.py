"""Every actor of a run, and how each is made, placed and brought up to date.

Restartable actors (samplers, inference, the evaluator) get small constructor arguments by value, never object
refs: Ray re-runs the constructor with the same arguments when it restarts one, and frees the refs among them once
the first construction is done (its issue 53727). Weights, the inference actor's handle and the population's
state are sent after construction, and sent again whenever a restart shows (a failed call, a new process id, or
a ``MissingWeights`` answer). Learners are not restarted by Ray: the driver replaces a dead one from the latest
checkpoint (``faults.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import ray

from asyncrl.config.schema import Config
from asyncrl.env_api.spaces import EnvSpaces
from asyncrl.ray_runtime.actors import EvaluatorActor, InferenceActor, LearnerActor, SamplerActor
from asyncrl.ray_runtime.weights import WeightsEdge
from asyncrl.runtime.builders import policy_ids, state_size
from asyncrl.runtime.placement import Plan


@dataclass
class SamplerSlot:
    actor: ray.actor.ActorHandle
    node: str
    core_index: int  # its rank among its node's samplers: a replacement takes the same core
    restarts: int = 0
    restarting: bool = False  # died; counts as restarting until its next good collect
    process_id: int | None = None  # the OS process of its latest good collect
    dead_process_id: int | None = None  # the process whose death was last handled


class Fleet:
    def __init__(self, cfg: Config, plan: Plan, spaces: EnvSpaces, device: str, clustered: bool,
                 learner_states: dict[int, dict] | None):
        self.cfg, self.plan, self.spaces, self.device, self.clustered = cfg, plan, spaces, device, clustered
        self.policy_ids = policy_ids(cfg)
        self.gpus = 1 if device == "cuda" else 0
        self.state_size = state_size(cfg, spaces)
        self.weights = WeightsEdge(self.weight_consumers)
        self.learners = {pid: self.new_learner(pid, (learner_states or {}).get(pid)) for pid in self.policy_ids}
        for pid, learner in self.learners.items():
            self.weights.latest[pid] = learner.weights.remote()
        # What PBT and the opponent pool pushed to the samplers, pushed again to a restarted or new one.
        self.shaping: dict[int, dict] = {}
        self.evaluator = self.new_evaluator() if cfg.eval.period else None
        self.inference: dict[str, ray.actor.ActorHandle] = {node: self.new_inference(node)
                                                            for node in plan.inference_nodes}
        self.samplers: dict[int, SamplerSlot] = {}
        self.next_sampler = 0
        for node in plan.samplers:
            self.add_sampler(node)

    def weight_consumers(self) -> list[ray.actor.ActorHandle]:
        """Who holds policy copies: the inference actors when inference is remote, else every sampler."""
        if self.cfg.runtime.inference == "remote":
            return list(self.inference.values())
        return [s.actor for s in self.samplers.values()]

    def _on(self, node: str) -> dict:
        """Actor options that place it on ``node`` (none on the embedded local Ray: one node)."""
        if not self.clustered:
            return {}
        from asyncrl.ray_runtime.cluster import on_node

        return on_node(node)

    def new_learner(self, pid: int, state: dict | None, hyperparameters: bool | None = None):
        keep = self.cfg.pbt.enabled if hyperparameters is None else hyperparameters
        # Several learners share one GPU: each asks for its fraction, so Ray places them all on it.
        gpus = self.gpus / len(self.policy_ids)
        return LearnerActor.options(num_gpus=gpus, **self._on(self.plan.learner_node)).remote(
            self.cfg, self.spaces, pid, self.device, state, keep)

    def new_evaluator(self):
        return EvaluatorActor.options(max_restarts=-1, **self._on(self.plan.learner_node)).remote(self.cfg)

    def new_inference(self, node: str):
        """An inference actor for ``node``'s samplers, with every policy's newest weights."""
        gpus = self.gpus / 2 if self.gpus and node == self.plan.learner_node else 0
        actor = InferenceActor.options(num_gpus=gpus, max_concurrency=1000, max_restarts=-1, **self._on(node)).remote(
            self.cfg, self.device if gpus else "cpu")
        self.weights.bring_up_to_date(actor)
        return actor

    def add_sampler(self, node: str, index: int | None = None, core_index: int | None = None) -> int:
        """A new sampler on ``node``, served by that node's inference actor when inference is remote; ``index``
        and ``core_index`` given: the fresh replacement of that sampler."""
        if index is None:
            index = self.next_sampler
            self.next_sampler += 1
            core_index = sum(1 for s in self.samplers.values() if s.node == node)
        actor = SamplerActor.options(max_restarts=-1, **self._on(node)).remote(self.cfg, index, core_index,
                                                                               self.state_size)
        self.samplers[index] = SamplerSlot(actor, node, core_index)
        self.bring_sampler_up_to_date(index)
        return index

    def bring_sampler_up_to_date(self, index: int) -> None:
        """What a new or restarted sampler process lacks: its inference actor or its weights, the population's
        reward shaping and opponent pool."""
        slot = self.samplers[index]
        if slot.node in self.inference:
            slot.actor.set_inference.remote(self.inference[slot.node])
        else:
            self.weights.bring_up_to_date(slot.actor)
        for pid, coeffs in self.shaping.items():
            slot.actor.set_reward_shaping.remote(pid, coeffs)
        if self.weights.opponents:
            slot.actor.set_opponents.remote(sorted(self.weights.opponents), [])

    def remove_sampler(self, index: int) -> SamplerSlot:
        slot = self.samplers.pop(index)
        ray.kill(slot.actor, no_restart=True)
        return slot

    def all_actors(self) -> list[ray.actor.ActorHandle]:
        return [*(s.actor for s in self.samplers.values()), *self.learners.values(), *self.inference.values(),
                *([self.evaluator] if self.evaluator is not None else [])]
