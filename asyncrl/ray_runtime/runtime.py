"""The Ray runtime: every edge of the data flow, wired in ``poll``.

    sampler --(meta, one trajectory ref per policy)--> driver --(refs of policy p only)--> learner p
    learner p --(weights ref, one per version)--> WeightsEdge --> inference actors, or each sampler's own copy
    inference actor <--(observations / actions)--> its node's samplers (remote inference only)
    evaluator <--(latest weights of eval.policy)-- driver

The driver never fetches trajectories: it reads each collection's small metadata and hands the refs on; a ref is
pulled to a node once, however many actors there read it. What the actors are and how each is made lives in
``fleet.py``, the weights edge in ``weights.py``, deaths, hangs and stalls in ``faults.py``, a cluster's nodes
in ``membership.py``. Placement (``asyncrl/runtime/placement.py``) puts the learners on a GPU node if there is
one, samplers on every node by its free CPU slots, and, with remote inference, one inference actor per node with
samplers, used by those samplers only.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import ray

from asyncrl.config.schema import Config
from asyncrl.data import Weights
from asyncrl.env_api.factory import probe_spaces
from asyncrl.inference.policy_runner import MissingWeights
from asyncrl.outputs.checkpoint import check_checkpoint_fits
from asyncrl.ray_runtime.evaluations import Evaluations
from asyncrl.ray_runtime.faults import Faults
from asyncrl.ray_runtime.fleet import Fleet
from asyncrl.ray_runtime.in_flight import Call, InFlight
from asyncrl.ray_runtime.membership import Membership
from asyncrl.ray_runtime.start import start_ray
from asyncrl.runtime.builders import policy_ids
from asyncrl.runtime.checks import check_fits_env, check_population_fits
from asyncrl.runtime.contract import Events
from asyncrl.runtime.machine import resolve_device, with_hardware_defaults
from asyncrl.runtime.placement import Plan, describe_plan, plan_cluster, plan_local
from asyncrl.runtime.training_queue import TrainingQueue

log = logging.getLogger(__name__)

COLLECTS_IN_FLIGHT = 2  # per sampler: the next request is queued so a sampler never idles on the driver
TRAINS_IN_FLIGHT = 2  # per learner: one training, one queued


class RayRuntime:
    def __init__(self, cfg: Config, learner_states: dict[int, dict] | None = None,
                 restore: Callable[[], dict[int, dict] | None] | None = None):
        """``restore`` returns the learners' states of the latest checkpoint, to restart a dead learner."""
        self.spaces = spaces = probe_spaces(cfg.env)
        check_fits_env(cfg, spaces)
        if learner_states:
            check_checkpoint_fits(cfg, spaces, learner_states)
        self.policy_ids = policy_ids(cfg)
        self.clustered = bool(cfg.runtime.address)
        plan = None
        if not self.clustered:  # bad input fails before Ray starts: nothing to clean up
            cfg, plan = self._decide(cfg, resolve_device(cfg.runtime.device), None)
        actors = (plan.num_samplers + len(plan.inference_nodes) + len(self.policy_ids) + int(bool(cfg.eval.period))
                  if plan else 0)
        self.owns_ray, self.dashboard_url = start_ray(cfg, actors)
        if self.clustered:
            try:
                from asyncrl.ray_runtime.cluster import alive_nodes

                nodes = alive_nodes()
                # The driver's CPU stands for the cluster's: the learner runs on a GPU node or on this one.
                device = resolve_device(cfg.runtime.device, cluster_gpus=sum(n.gpus for n in nodes))
                cfg, plan = self._decide(cfg, device, nodes)
            except Exception:
                if self.owns_ray:
                    ray.shutdown()
                raise
        self.cfg, self.plan = cfg, plan
        self.queue = TrainingQueue(cfg.algo.batch_size, self.policy_ids)
        self.calls = InFlight()
        self.fleet = Fleet(cfg, plan, spaces, self.device, self.clustered, learner_states)
        self.faults = Faults(self.fleet, self.calls, self.queue, cfg.runtime.hang_timeout_s, restore)
        self.evaluations = Evaluations(self.fleet, self.calls, cfg.eval.policy)
        self.membership = Membership(self.fleet, self.calls, self.faults) if self.clustered else None
        self.steps_per_collect = cfg.runtime.num_envs * spaces.num_agents * cfg.algo.rollout
        self.max_buffered = cfg.runtime.max_batches_ahead * cfg.algo.batch_size
        self._fill_samplers()

    def _decide(self, cfg: Config, device: str, nodes) -> tuple[Config, Plan]:
        """What this machine (or cluster) decides: precision, inference, the layout; and the start line."""
        self.device = device
        cfg, self.hardware = with_hardware_defaults(cfg, device)
        cores = os.cpu_count() or 1
        plan = plan_local(cores, cfg) if nodes is None else plan_cluster(nodes, cfg)
        self.hardware += ", " + describe_plan(plan, cfg, cores if nodes is None else None)
        check_population_fits(cfg, self.spaces, plan.num_samplers)
        return cfg, plan

    # -- the loop: every edge of the data flow ------------------------------------------------------------------

    def poll(self, timeout: float = 1.0) -> Events:
        events = Events()
        for ref in self.calls.ready(timeout):
            call = self.calls.pop(ref)
            if call is None:  # forgotten earlier in this loop (a learner restarted, a sampler replaced)
                continue
            if call.kind == "collect":
                self._on_collect(ref, call, events)
            elif call.kind == "train":
                self._on_trained(ref, call, events)
            else:
                events.evaluated.extend(self.evaluations.result(ref, call.payload))
        if self.membership is not None:
            self.membership.check()
        self.faults.check()
        self._submit_training()
        self._fill_samplers()
        return events

    def _on_collect(self, ref: ray.ObjectRef, call: Call, events: Events) -> None:
        """sampler -> training queue: each policy's trajectory ref waits for that policy's learner."""
        if call.index not in self.fleet.samplers:  # a sampler of a node that left
            return
        try:
            meta = ray.get(ref)
        except ray.exceptions.RayActorError as e:
            self.faults.collect_failed(call.index, e, init_failed=e.actor_init_failed)
            return
        except MissingWeights as e:  # a new process that has not been sent its weights yet
            self.faults.collect_failed(call.index, e, init_failed=False)
            return
        self.faults.collected(call.index, meta.process_id)
        for pid, steps in meta.steps_per_policy.items():
            self.queue.add(pid, call.payload[pid], steps)
        events.collected.append(meta)

    def _on_trained(self, ref: ray.ObjectRef, call: Call, events: Events) -> None:
        """learner -> weights edge: the version it returned goes to every policy copy."""
        pid = call.index
        try:
            metrics = ray.get(ref)
        except ray.exceptions.RayActorError as e:
            self.faults.restart_learner(pid, e)
            return
        self.faults.trained(pid, int(metrics["stats/version"]))
        self.fleet.weights.publish(pid, call.payload)
        events.trained.append((pid, metrics))

    def _room_for_collect(self) -> bool:
        # A collect feeds every policy about equally, so the fullest policy buffer plus its share of what
        # is in flight decides.
        in_flight = len(self.calls.refs("collect")) * self.steps_per_collect / len(self.policy_ids)
        fullest = max(self.queue.buffered_steps(pid) for pid in self.policy_ids)
        return fullest + in_flight < self.max_buffered

    def _fill_samplers(self) -> None:
        """driver -> samplers. Backpressure: samplers work only while the learners are at most
        ``runtime.max_batches_ahead`` batches behind. While there is room, the sampler with the fewest collects
        in flight gets the next one: an idle sampler is served before a busy one gets a second call queued.
        Served in a fixed order, the first sampler of a learner-bound run took nearly every free slot (75 of 79
        collects, CartPole at 10 epochs) and the other's envs sat idle for dozens of versions."""
        samplers = self.fleet.samplers
        in_flight = {i: self.calls.count("collect", i) for i in samplers}
        while self._room_for_collect():
            i = min(in_flight, key=in_flight.__getitem__, default=None)
            if i is None or in_flight[i] >= COLLECTS_IN_FLIGHT:
                return
            meta, *trajectories = samplers[i].actor.collect.options(num_returns=1 + len(self.policy_ids)).remote()
            self.calls.add(meta, "collect", i, dict(zip(self.policy_ids, trajectories, strict=True)))
            self.faults.heartbeats.busy(("sampler", i))
            in_flight[i] += 1

    def _submit_training(self) -> None:
        """training queue -> learner: whole chunks of its own policy, ``algo.batch_size`` transitions."""
        for pid in self.policy_ids:
            while self.calls.count("train", pid) < TRAINS_IN_FLIGHT and (batch := self.queue.next_batch(pid)):
                metrics, weights = self.fleet.learners[pid].train.remote(*batch)
                self.calls.add(metrics, "train", pid, weights)
                self.faults.heartbeats.busy(("learner", pid))

    @property
    def env_steps(self) -> int:
        """Agent steps this runtime collected since it started."""
        return self.queue.collected_steps

    # -- evaluation ---------------------------------------------------------------------------------------------

    def start_evaluation(self, env_steps: int) -> bool:
        return self.evaluations.start(env_steps)

    def finish_evaluation(self, timeout: float) -> list:
        return self.evaluations.finish(timeout)

    # -- population ---------------------------------------------------------------------------------------------

    def copy_policy(self, source: int, target: int) -> None:
        """PBT's exploit. Calls to one actor run in order, so the copy lands after the target's queued steps."""
        learners = self.fleet.learners
        learners[target].copy_from.remote(learners[source].state_dict.remote())
        self.fleet.weights.publish(target, learners[target].weights.remote())

    def set_hyperparameters(self, policy: int, values: dict[str, float]) -> None:
        self.fleet.learners[policy].set_hyperparameters.remote(values)

    def set_reward_shaping(self, policy: int, coeffs: dict) -> None:
        self.fleet.shaping[policy] = coeffs
        for slot in self.fleet.samplers.values():
            slot.actor.set_reward_shaping.remote(policy, coeffs)

    def reward_shaping(self) -> dict | None:
        return ray.get(next(iter(self.fleet.samplers.values())).actor.reward_shaping.remote())

    def weights(self, policy: int) -> Weights:
        return ray.get(self.fleet.learners[policy].weights.remote())

    def set_opponents(self, snapshots: dict[int, Weights], dropped: list[int]) -> None:
        """The opponent pool is now ``snapshots``; ``dropped`` left it. New snapshots' weights reach the
        policy copies before any sampler may ask for them."""
        edge = self.fleet.weights
        refs = {sid: edge.opponents.get(sid) or ray.put(w) for sid, w in snapshots.items()}
        edge.set_opponents(refs, wait=bool(self.fleet.inference))
        for slot in self.fleet.samplers.values():
            slot.actor.set_opponents.remote(sorted(refs), dropped)
        for actor in self.fleet.inference.values():
            actor.drop.remote(dropped)

    # -- inspection and shutdown --------------------------------------------------------------------------------

    def layout(self) -> str:
        samplers = self.fleet.samplers
        nodes = len(set(s.node for s in samplers.values()))
        return (f"{len(samplers)} sampler(s) x {self.cfg.runtime.num_envs} envs"
                + (f" on {nodes} nodes" if self.clustered else ""))

    def component_times(self) -> dict[str, dict[str, float]]:
        """Components that do not report with their results: the remote inference actors, added up."""
        if not self.fleet.inference:
            return {}
        times: dict[str, float] = {}
        for t in ray.get([a.timing.remote() for a in self.fleet.inference.values()], timeout=10):
            for k, v in t.items():
                times[k] = times.get(k, 0.0) + v
        return {"inference": times}

    def learner_states(self) -> dict[int, dict]:
        states = ray.get([self.fleet.learners[pid].state_dict.remote() for pid in self.policy_ids])
        return dict(zip(self.policy_ids, states, strict=True))

    @property
    def inference(self):
        """The first node's inference actor (the only one on one machine); None with local inference."""
        return next(iter(self.fleet.inference.values()), None)

    @property
    def sampler_restarts(self) -> list[int]:
        return [self.fleet.samplers[i].restarts for i in sorted(self.fleet.samplers)]

    def learner_pid(self, policy: int = 0) -> int:
        return ray.get(self.fleet.learners[policy].pid.remote())

    def sampler_pids(self) -> list[int]:
        return ray.get([self.fleet.samplers[i].actor.pid.remote() for i in sorted(self.fleet.samplers)])

    def sampler_nodes(self) -> dict[int, str]:
        """Sampler index -> the node it was placed on."""
        return {i: s.node for i, s in self.fleet.samplers.items()}

    def shutdown(self) -> None:
        fleet = self.fleet
        try:
            ray.get([s.actor.close.remote() for s in fleet.samplers.values()], timeout=10)
        except Exception as e:  # a dead sampler's envs died with it
            log.warning("closing samplers: %s", e)
        if fleet.evaluator is not None:
            try:
                ray.get(fleet.evaluator.close.remote(), timeout=10)
            except Exception as e:  # a dead evaluator's env died with it
                log.warning("closing the evaluator: %s", e)
        for actor in fleet.all_actors():
            ray.kill(actor)
        if self.owns_ray:
            ray.shutdown()
