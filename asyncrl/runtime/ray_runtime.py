"""The Ray runtime: all wiring in one place.

The driver never fetches trajectories: it reads each collection's small metadata, passes the trajectory
refs to the learner, and passes each new weights ref (one ``ray.put`` per version, made by returning it
from the learner) to every consumer. A ref is pulled to a node once, however many samplers there read it,
so weights cross the network once per version per node.

Placement (``placement.py``) puts the learners on a GPU node if there is one, samplers on every node by its
free CPU slots, and, with remote inference, one inference actor on each node with samplers, used by those
samplers only. On a cluster (``runtime.address``) the node list is read again every few seconds: a node that
joins gets samplers (when their number is automatic), a node that leaves takes its samplers with it and the
run goes on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import ray

from asyncrl.config.schema import Config
from asyncrl.data import Weights
from asyncrl.inference.policy_runner import MissingWeights
from asyncrl.runtime.components import (
    check_checkpoint_fits,
    check_eval_fits,
    check_population_fits,
    policy_ids,
    resolve_device,
    state_size,
    with_hardware_defaults,
)
from asyncrl.runtime.coordinator import Coordinator
from asyncrl.runtime.events import Events
from asyncrl.runtime.heartbeat import Heartbeats
from asyncrl.runtime.placement import (
    Plan,
    added_samplers,
    describe_plan,
    learner_node,
    plan_cluster,
    plan_local,
)
from asyncrl.runtime.ray_actors import EvaluatorActor, InferenceActor, LearnerActor, SamplerActor
from asyncrl.runtime.ray_start import start_ray
from asyncrl.runtime.stall import RunStalled, StallWatch, Verdict
from asyncrl.sampling.env_factory import probe_spaces

log = logging.getLogger(__name__)

COLLECTS_IN_FLIGHT = 2  # per sampler: the next request is queued so a sampler never idles on the driver
TRAINS_IN_FLIGHT = 2  # per learner: one training, one queued
PING_EVERY_S = 5.0  # each remote inference actor gets a cheap call this often (at most), so a hung one shows
NODE_CHECK_S = 5.0  # a cluster's node list is read this often


@dataclass
class _Sampler:
    actor: ray.actor.ActorHandle
    node: str
    core_index: int  # its rank among its node's samplers: a replacement takes the same core
    in_flight: int = 0
    restarts: int = 0
    restarting: bool = False  # died; counts as restarting until its next good collect
    process_id: int | None = None  # the OS process of its latest good collect
    dead_process_id: int | None = None  # the process whose death was last handled


class RayRuntime:
    def __init__(self, cfg: Config, coordinator: Coordinator, learner_states: dict[int, dict] | None = None,
                 restore: Callable[[], dict[int, dict] | None] | None = None):
        """``restore`` returns the learners' states of the latest checkpoint, to restart a dead learner."""
        self.cfg, self.coordinator, self.restore = cfg, coordinator, restore
        rt = cfg.runtime
        self.spaces = spaces = probe_spaces(cfg.env)
        check_eval_fits(cfg, spaces)
        if learner_states:
            check_checkpoint_fits(cfg, spaces, learner_states)
        self.policy_ids = policy_ids(cfg)
        self.clustered = bool(rt.address)
        plan, device = None, None
        if not self.clustered:  # bad input fails before Ray starts: nothing to clean up
            device = resolve_device(rt.device)
            cfg, self.hardware = with_hardware_defaults(cfg, device)
            self.cfg = cfg
            plan = plan_local(os.cpu_count() or 1, cfg)
            self.hardware += ", " + describe_plan(plan, cfg, os.cpu_count() or 1)
            check_population_fits(cfg, spaces, plan.num_samplers)
        actors = (plan.num_samplers + len(plan.inference_nodes) + len(self.policy_ids) + int(bool(cfg.eval.period))
                  if plan else 0)
        self.owns_ray, self.dashboard_url = start_ray(cfg, actors)
        if self.clustered:
            try:
                from asyncrl.runtime.cluster import alive_nodes

                nodes = alive_nodes()
                device = resolve_device(rt.device, cluster_gpus=sum(n.gpus for n in nodes))
                # The driver's CPU stands for the cluster's: the learner runs on a GPU node or on this one.
                cfg, self.hardware = with_hardware_defaults(cfg, device)
                self.cfg = cfg
                plan = plan_cluster(nodes, cfg)
                self.hardware += ", " + describe_plan(plan, cfg)
                check_population_fits(cfg, spaces, plan.num_samplers)
            except Exception:
                if self.owns_ray:
                    ray.shutdown()
                raise
        self.plan: Plan = plan
        self.device = device
        self.gpus = gpus = 1 if device == "cuda" else 0
        # Several learners share one GPU: each asks for its fraction, so Ray places them all on it.
        self.learner_gpus = gpus / len(self.policy_ids)
        self.learners = {pid: self._new_learner(pid, (learner_states or {}).get(pid)) for pid in self.policy_ids}
        self.published_version = dict.fromkeys(self.policy_ids, 0)
        self.learner_restarts = 0
        self.replaced = 0  # actors Ray could not restart, replaced by fresh ones
        # Each policy's newest weights (refs): what every new, restarted or replaced consumer is sent.
        self.latest_weights = {pid: self.learners[pid].weights.remote() for pid in self.policy_ids}
        # What PBT and the opponent pool pushed to the samplers, pushed again to a restarted or new one.
        self.shaping: dict[int, dict] = {}
        self.opponents: dict[int, ray.ObjectRef] = {}
        self.evaluator = self._new_evaluator() if cfg.eval.period else None
        self.eval_in_flight = False
        self.evaluator_pid: int | None = None  # the process of the latest evaluation
        # Asked at once, so that a death before the first evaluation shows too.
        self.evaluator_pid_ref = self.evaluator.pid.remote() if self.evaluator else None
        self.inference_actors: dict[str, ray.actor.ActorHandle] = {}
        self.inference_pids: dict[str, int] = {}  # node -> the process its inference actor last answered from
        for node in plan.inference_nodes:
            self.inference_actors[node] = self._new_inference(node)
        self.state_size = state_size(cfg, spaces)
        self.samplers: dict[int, _Sampler] = {}
        self.next_sampler = 0
        for node in plan.samplers:
            self._add_sampler(node)
        self.steps_per_collect = rt.num_envs * spaces.num_agents * cfg.algo.rollout
        self.max_buffered = rt.max_batches_ahead * cfg.algo.batch_size
        self.pending: dict[ray.ObjectRef, tuple] = {}
        self.trains_in_flight = dict.fromkeys(self.policy_ids, 0)
        self.heartbeats = Heartbeats(rt.hang_timeout_s)
        self.stall = StallWatch(rt.hang_timeout_s)
        self.hung_restarts = 0  # components restarted because they stopped making progress
        self.pings: dict[str, ray.ObjectRef] = {}  # inference node -> its outstanding ping
        # The first ping goes out with the first poll: a restart is seen as a new process id, which needs the
        # first process's id to compare with (a kill before that ping would otherwise pass unseen).
        self.last_ping = dict.fromkeys(self.inference_actors, float("-inf"))
        self.next_node_check = time.monotonic() + NODE_CHECK_S
        for i in self.samplers:
            self._fill_sampler(i)

    # -- actors ------------------------------------------------------------------------------------------------

    def _on(self, node: str) -> dict:
        """Actor options that place it on ``node`` (none on the embedded local Ray: one node)."""
        if not self.clustered:
            return {}
        from asyncrl.runtime.cluster import on_node

        return on_node(node)

    def _new_learner(self, pid: int, state: dict | None, hyperparameters: bool | None = None):
        keep = self.cfg.pbt.enabled if hyperparameters is None else hyperparameters
        return LearnerActor.options(num_gpus=self.learner_gpus, **self._on(self.plan.learner_node)).remote(
            self.cfg, self.spaces, pid, self.device, state, keep)

    # Restartable actors get small constructor arguments by value, never object refs: Ray re-runs the constructor
    # with the same arguments when it restarts one, and frees the refs among them once the first construction is
    # done (its issue 53727). Weights and the population's state are sent after construction, and sent again
    # whenever a restart shows (a failed call, a new process id, or a MissingWeights answer).

    def _new_evaluator(self):
        return EvaluatorActor.options(max_restarts=-1, **self._on(self.plan.learner_node)).remote(self.cfg)

    def _new_inference(self, node: str):
        gpus = self.gpus / 2 if self.gpus and node == self.plan.learner_node else 0
        actor = InferenceActor.options(num_gpus=gpus, max_concurrency=1000, max_restarts=-1, **self._on(node)).remote(
            self.cfg, self.device if gpus else "cpu")
        self._send_weights(actor)
        return actor

    def _send_weights(self, actor) -> None:
        """Every policy's newest weights and the opponent pool's to a policy copy (sampler or inference)."""
        for ref in [*self.latest_weights.values(), *self.opponents.values()]:
            actor.set_weights.remote(ref)

    def _add_sampler(self, node: str, index: int | None = None, core_index: int | None = None) -> int:
        """A new sampler on ``node``, served by that node's inference actor when inference is remote; ``index``
        and ``core_index`` given: the fresh replacement of that sampler."""
        if index is None:
            index = self.next_sampler
            self.next_sampler += 1
            core_index = sum(1 for s in self.samplers.values() if s.node == node)
        actor = SamplerActor.options(max_restarts=-1, **self._on(node)).remote(self.cfg, index, core_index,
                                                                               self.state_size)
        self.samplers[index] = _Sampler(actor, node, core_index)
        self._push_sampler_state(index)
        return index

    @property
    def learner(self):
        """Policy 0's learner (the only one without a population)."""
        return self.learners[self.policy_ids[0]]

    @property
    def inference(self):
        """The first node's inference actor (the only one on one machine); None with local inference."""
        return next(iter(self.inference_actors.values()), None)

    @property
    def sampler_restarts(self) -> list[int]:
        return [self.samplers[i].restarts for i in sorted(self.samplers)]

    def layout(self) -> str:
        nodes = len(set(s.node for s in self.samplers.values()))
        return (f"{len(self.samplers)} sampler(s) x {self.cfg.runtime.num_envs} envs"
                + (f" on {nodes} nodes" if self.clustered else ""))

    # -- submitting work ---------------------------------------------------------------------------------------

    def _room_for_collect(self) -> bool:
        # A collect feeds every policy about equally, so the fullest policy buffer plus its share of what
        # is in flight decides.
        in_flight = sum(s.in_flight for s in self.samplers.values()) * self.steps_per_collect / len(self.policy_ids)
        fullest = max(self.coordinator.buffered_steps(pid) for pid in self.policy_ids)
        return fullest + in_flight < self.max_buffered

    def _fill_sampler(self, i: int) -> None:
        # Backpressure: a sampler only works while the learners are at most max_batches_ahead behind.
        slot = self.samplers[i]
        while slot.in_flight < COLLECTS_IN_FLIGHT and self._room_for_collect():
            trajectories, meta = slot.actor.collect.remote()
            self.pending[meta] = ("collect", i, trajectories)
            slot.in_flight += 1
            self.heartbeats.busy(("sampler", i))

    def _submit_training(self) -> None:
        for pid in self.policy_ids:
            while self.trains_in_flight[pid] < TRAINS_IN_FLIGHT and (batch := self.coordinator.next_batch(pid)):
                metrics, weights = self.learners[pid].train.remote(*batch)
                self.pending[metrics] = ("train", pid, weights)
                self.trains_in_flight[pid] += 1
                self.heartbeats.busy(("learner", pid))

    def start_evaluation(self, env_steps: int) -> bool:
        """Evaluate ``eval.policy``'s latest weights on the evaluator; False while one is still running."""
        if self.evaluator is None or self.eval_in_flight:
            return False
        weights = self.latest_weights[self.cfg.eval.policy]
        self.pending[self.evaluator.evaluate.remote(weights, env_steps)] = ("eval", self.cfg.eval.policy, weights)
        self.eval_in_flight = True
        return True

    def finish_evaluation(self, timeout: float) -> list:
        """The evaluation still running when the budget ran out, waited for up to ``timeout`` seconds: the
        last weights' score is what a finished run is judged by. Empty when none runs or it did not finish."""
        refs = [ref for ref, (kind, _, _) in self.pending.items() if kind == "eval"]
        if not refs:
            return []
        ready, _ = ray.wait(refs, timeout=timeout)
        if not ready:
            log.warning("the evaluation in flight did not finish within %.0f s; the run ends without it", timeout)
            return []
        _, _, weights = self.pending.pop(ready[0])
        return self._evaluation_result(ready[0], weights)

    def _evaluation_result(self, ref: ray.ObjectRef, weights: ray.ObjectRef) -> list:
        """A finished evaluation as [(metrics, a call that fetches its weights)]; empty if the evaluator died
        (Ray restarts it; the next evaluation runs there)."""
        self.eval_in_flight = False
        try:
            result, process_id = ray.get(ref)
        except ray.exceptions.RayActorError as e:
            log.warning("the evaluator died during an evaluation (%s)%s", str(e).splitlines()[0][:200],
                        "; replaced by a fresh actor" if e.actor_init_failed else "")
            if e.actor_init_failed:  # Ray could not restart it
                ray.kill(self.evaluator, no_restart=True)
                self.evaluator = self._new_evaluator()
            self.evaluator_pid, self.evaluator_pid_ref = None, None
            return []
        if self.evaluator_pid is None and self.evaluator_pid_ref is not None:  # its first process's
            with contextlib.suppress(ray.exceptions.RayError):
                self.evaluator_pid = ray.get(self.evaluator_pid_ref, timeout=5)
            self.evaluator_pid_ref = None
        if self.evaluator_pid not in (None, process_id):
            log.warning("the evaluator died between evaluations (its process %d was replaced by %d)",
                        self.evaluator_pid, process_id)
        self.evaluator_pid = process_id
        return [(result, lambda: ray.get(weights))]

    def _publish(self, pid: int, weights: ray.ObjectRef) -> None:
        """A policy's new weights: the newest for evaluation, and sent to every consumer."""
        self.latest_weights[pid] = weights
        self._broadcast(weights)

    def _broadcast(self, weights: ray.ObjectRef) -> None:
        """The weights edge: to the inference actors when inference is remote, else to every sampler's copy."""
        consumers = self.inference_actors.values() if self.inference_actors else [s.actor for s in self.samplers.values()]
        for actor in consumers:
            actor.set_weights.remote(weights)

    # -- the loop ----------------------------------------------------------------------------------------------

    def poll(self, timeout: float = 1.0) -> Events:
        events = Events()
        ready, _ = ray.wait(list(self.pending), num_returns=1, timeout=timeout)
        if ready:  # take everything else that is already done too
            ready, _ = ray.wait(list(self.pending), num_returns=len(self.pending), timeout=0)
        for ref in ready:
            if ref not in self.pending:  # dropped by a learner restart earlier in this loop
                continue
            kind, index, payload = self.pending.pop(ref)
            if kind == "collect":
                self._on_collect(ref, index, payload, events)
            elif kind == "eval":
                events.evaluated.extend(self._evaluation_result(ref, payload))
            else:
                try:
                    metrics = ray.get(ref)
                except ray.exceptions.RayActorError as e:
                    self._restart_learner(index, e)
                    continue
                self.trains_in_flight[index] -= 1
                self.heartbeats.progress(("learner", index), self.trains_in_flight[index] > 0)
                self.published_version[index] = max(self.published_version[index], int(metrics["stats/version"]))
                self._publish(index, payload)
                events.trained.append((index, metrics))
        if self.clustered and time.monotonic() >= self.next_node_check:
            self.next_node_check = time.monotonic() + NODE_CHECK_S
            self._check_nodes()
        self._check_inference()
        # After every ready result was taken in: a component that delivered meanwhile is not hung. While an
        # inference actor owes a ping, the samplers it serves are not blamed: it is the suspect.
        suspects = set(self.pings)
        for name, quiet_s in self.heartbeats.hung():
            if name[0] != "sampler" or self.samplers[name[1]].node not in suspects:
                self._restart_hung(name, quiet_s)
        self._check_stall()
        self._submit_training()
        for i in self.samplers:
            self._fill_sampler(i)
        return events

    def _on_collect(self, ref: ray.ObjectRef, index: int, trajectories: ray.ObjectRef, events: Events) -> None:
        slot = self.samplers.get(index)
        if slot is None:  # a sampler of a node that left
            return
        slot.in_flight -= 1
        try:
            meta = ray.get(ref)
        except ray.exceptions.RayActorError as e:
            if e.actor_init_failed:  # Ray cannot bring it back: its constructor failed in the new process
                self._replace_sampler(index, e)
            else:
                self._on_sampler_death(index, e)
            return
        except MissingWeights as e:  # a new process that has not been sent its weights yet
            self._on_sampler_death(index, e)
            return
        self._check_process(index, meta.process_id)
        self.heartbeats.progress(("sampler", index), slot.in_flight > 0)
        self.coordinator.add(trajectories, meta)
        events.collected.append(meta)

    # -- heartbeats and faults ---------------------------------------------------------------------------------

    def _check_inference(self) -> None:
        """A cheap call to each remote inference actor every few seconds: its reply is its heartbeat."""
        every = min(PING_EVERY_S, self.heartbeats.timeout_s / 4 or PING_EVERY_S)
        for node, actor in self.inference_actors.items():
            ping = self.pings.get(node)
            if ping is None:
                if time.monotonic() - self.last_ping[node] >= every:
                    self.pings[node] = actor.pid.remote()
                    self.heartbeats.busy(("inference", node))
                continue
            if not ray.wait([ping], timeout=0)[0]:
                continue
            del self.pings[node]
            self.last_ping[node] = time.monotonic()
            try:
                pid = ray.get(ping)
            except ray.exceptions.RayActorError as e:
                if e.actor_init_failed:
                    self._replace_inference(node, e)
                    continue
                # Ray restarts it, and calls sent from now on wait for the new process, which has no weights.
                log.warning("the inference actor%s died (%s): Ray restarts it; weights sent again",
                            f" on node {node[:8]}" if self.clustered else "", str(e).splitlines()[0][:200])
                self._send_weights(actor)
                self.inference_pids.pop(node, None)  # the next ping's answer is the new process's id
                self.heartbeats.restarted(("inference", node), still_busy=False)
                continue
            self.heartbeats.progress(("inference", node), still_busy=False)
            if self.inference_pids.get(node) not in (None, pid):
                # Restarted by Ray: the new process has no weights, and its samplers' requests wait for them.
                log.warning("the inference actor%s was restarted (process %d replaced by %d): weights sent again",
                            f" on node {node[:8]}" if self.clustered else "", self.inference_pids[node], pid)
                self._send_weights(actor)
            self.inference_pids[node] = pid

    def _check_stall(self) -> None:
        """Env steps that stop advancing while no single component is to blame (all alive and waiting, or Ray
        restarting one without success): name what is stuck and replace every sampler and inference actor;
        if that does not bring the steps back either, the run has failed."""
        verdict = self.stall.observe(self.coordinator.env_steps, defer=self.heartbeats.judging())
        if verdict is Verdict.OK:
            return
        quiet = self.stall.quiet_s()
        if verdict is Verdict.FAILED:
            raise RunStalled(f"no env step for {quiet:.0f} s, even after replacing the samplers and inference "
                             f"actors {self.stall.since_recovery_s():.0f} s ago "
                             f"({self.stuck_report()}); runtime.hang_timeout_s={self.stall.timeout_s:g}")
        log.warning("no env step for %.0f s (runtime.hang_timeout_s=%g): %s; replacing every sampler%s", quiet,
                    self.stall.timeout_s, self.stuck_report(), " and inference actor" if self.inference_actors else "")
        for node in list(self.inference_actors):
            self._replace_inference(node, "the run stalled")
        for i in list(self.samplers):
            if self.inference_actors.get(self.samplers[i].node) is None:  # (else replaced with its inference)
                self._replace_sampler(i, "the run stalled")

    def stuck_report(self) -> str:
        """What each component is doing, for the stall's log line."""
        parts = []
        for i, slot in sorted(self.samplers.items()):
            state = "restarting" if slot.restarting else "alive"
            parts.append(f"sampler {i} {state}, {slot.in_flight} collect(s) in flight")
        for pid in self.policy_ids:
            parts.append(f"learner {pid} {self.trains_in_flight[pid]} batch(es) in flight, "
                         f"{self.coordinator.buffered_steps(pid)} steps buffered")
        for node in self.inference_actors:
            parts.append(f"inference{' ' + node[:8] if self.clustered else ''} "
                         f"{'owes a ping' if node in self.pings else 'answering'}")
        return "; ".join(parts)

    def _restart_hung(self, name: tuple, quiet_s: float) -> None:
        """Kill a component that has had work in flight for too long without a result. Samplers and inference
        actors are restarted by Ray (their calls in flight fail and are handled as a death); a learner is
        replaced from the latest checkpoint when its failed training call comes back."""
        kind = name[0]
        label = {"sampler": f"sampler {name[1]}", "learner": f"learner {name[1]}"}.get(kind, "inference")
        if kind == "inference" and len(self.inference_actors) > 1:
            label += f" on node {name[1][:8]}"
        self.hung_restarts += 1
        self.stall.handled()
        log.warning("%s made no progress for %.0f s with work in flight (hung?): killing it to restart it "
                    "(hang #%d; runtime.hang_timeout_s=%g)", label, quiet_s, self.hung_restarts,
                    self.heartbeats.timeout_s)
        self.heartbeats.restarted(name)
        if kind == "sampler":
            ray.kill(self.samplers[name[1]].actor, no_restart=False)
        elif kind == "learner":
            ray.kill(self.learners[name[1]], no_restart=True)
        else:
            ray.kill(self.inference_actors[name[1]], no_restart=False)
            self.pings.pop(name[1], None)
            # Its samplers were stuck on inference, not on themselves: their clocks restart.
            for i, slot in self.samplers.items():
                if slot.node == name[1]:
                    self.heartbeats.restarted(("sampler", i), slot.in_flight > 0)

    def _check_process(self, index: int, process_id: int) -> None:
        """A good collect came from ``process_id``. A sampler that died with nothing in flight fails no call:
        Ray restarts it and queues the next calls for the new process, so its death shows only here, as a new
        process. Its reward shaping and opponents died with it and are sent again."""
        slot = self.samplers[index]
        if process_id == slot.dead_process_id:  # a collect the dead process finished before it died
            return
        if slot.process_id is not None and process_id != slot.process_id and not slot.restarting:
            self._on_sampler_death(index, f"its process {slot.process_id} was replaced by {process_id}")
        slot.process_id, slot.restarting = process_id, False

    def _on_sampler_death(self, index: int, error: Exception | str) -> None:
        # Every collect in flight on the dead process fails, and so may those sent while Ray restarts
        # it: the sampler counts as restarting until its next successful collect, and is logged once.
        # The chunks it was cutting are lost, which costs samples, not correctness: none was trained on.
        slot = self.samplers[index]
        if not slot.restarting:
            slot.restarting = True
            slot.dead_process_id = slot.process_id
            slot.restarts += 1
            # Its clock runs from the death on: a restart that never succeeds shows as hung.
            self.heartbeats.restarted(("sampler", index), still_busy=True)
            log.warning("sampler %d died (%s); Ray restarts it (restart #%d)", index,
                        str(error).splitlines()[0][:200], slot.restarts)
        # Calls to a restarting actor wait for its new process, which starts with nothing: weights and the
        # population's state are sent again (a copy takes only newer versions, so a repeat costs nothing).
        self._push_sampler_state(index)

    def _push_sampler_state(self, index: int) -> None:
        slot = self.samplers[index]
        sampler = slot.actor
        if slot.node in self.inference_actors:
            sampler.set_inference.remote(self.inference_actors[slot.node])
        else:
            self._send_weights(sampler)
        for pid, coeffs in self.shaping.items():
            sampler.set_reward_shaping.remote(pid, coeffs)
        if self.opponents:
            sampler.set_opponents.remote(sorted(self.opponents), [])

    def _replace_sampler(self, index: int, why: Exception | str) -> None:
        """A fresh actor in place of one Ray could not restart (or that stays stuck): same index, node and core."""
        slot = self.samplers[index]
        ray.kill(slot.actor, no_restart=True)
        self._forget_collects(index)
        self.replaced += 1
        log.warning("sampler %d could not be restarted (%s): replaced by a fresh actor (replacement #%d)", index,
                    str(why).splitlines()[0][:200], self.replaced)
        restarts = slot.restarts + (0 if slot.restarting else 1)
        self._add_sampler(slot.node, index, slot.core_index)
        new = self.samplers[index]
        new.restarts, new.restarting, new.dead_process_id = restarts, True, slot.process_id
        self.heartbeats.restarted(("sampler", index), still_busy=False)

    def _replace_inference(self, node: str, why: Exception | str) -> None:
        """A fresh inference actor on ``node``, and fresh samplers there: one blocked on the old actor's replies
        would only see the new handle after its client's retry window (RayInferenceClient.RETRY_FOR_S)."""
        ray.kill(self.inference_actors[node], no_restart=True)
        self.pings.pop(node, None)
        self.inference_pids.pop(node, None)
        self.replaced += 1
        log.warning("the inference actor%s could not be restarted (%s): replaced by a fresh actor, with its "
                    "samplers (replacement #%d)", f" on node {node[:8]}" if self.clustered else "",
                    str(why).splitlines()[0][:200], self.replaced)
        self.inference_actors[node] = self._new_inference(node)
        self.heartbeats.restarted(("inference", node), still_busy=False)
        self.last_ping[node] = float("-inf")  # pinged at the next poll
        for i in [i for i, slot in self.samplers.items() if slot.node == node]:
            self._replace_sampler(i, "its inference actor was replaced")

    def _restart_learner(self, pid: int, error: Exception) -> None:
        """Recreate a dead learner from the latest checkpoint; the batches it held are lost."""
        for ref in [r for r, (kind, index, _) in self.pending.items() if kind == "train" and index == pid]:
            del self.pending[ref]
        self.trains_in_flight[pid] = 0
        self.learner_restarts += 1
        self.heartbeats.restarted(("learner", pid), still_busy=False)
        state = (self.restore() or {}).get(pid) if self.restore else None
        if state is not None:
            # A version above every published one: samplers accept only newer weights, and the
            # experience collected by the lost versions counts as lagging behind the restored learner.
            state = {**state, "version": max(int(state["version"]), self.published_version[pid]) + 1}
        log.warning("learner %d died (%s); restarting it from %s (restart #%d)", pid,
                    str(error).splitlines()[0][:200],
                    "the latest checkpoint" if state is not None else "scratch: no checkpoint yet",
                    self.learner_restarts)
        ray.kill(self.learners[pid])
        # A checkpoint holds the hyperparameters PBT had given this policy.
        self.learners[pid] = self._new_learner(pid, state, hyperparameters=True)
        self._publish(pid, self.learners[pid].weights.remote())

    # -- nodes that join or leave (a cluster) ------------------------------------------------------------------

    def _check_nodes(self) -> None:
        from asyncrl.runtime.cluster import alive_nodes

        nodes = alive_nodes()
        alive = {n.node_id for n in nodes}
        if not nodes:
            return
        gone = {s.node for s in self.samplers.values()} - alive
        for node in gone:
            lost = [i for i, s in self.samplers.items() if s.node == node]
            for i in lost:
                self._drop_sampler(i)
            log.warning("node %s left the cluster: its %d sampler(s) went with it; the run goes on with %d",
                        node[:8], len(lost), len(self.samplers))
        for node in [n for n in self.inference_actors if n not in alive]:
            ray.kill(self.inference_actors.pop(node), no_restart=True)
            self.pings.pop(node, None)
            self.heartbeats.forget(("inference", node))
        if self.plan.learner_node not in alive:
            self.plan.learner_node = learner_node(nodes).node_id  # where dead learners come back
        if not self.samplers:  # never none: one beside the learners, on the node that hosts them
            self._start_samplers(self.plan.learner_node, 1)
        for node in nodes:
            if (count := added_samplers(self.plan, node, self.cfg)) > 0:
                self._start_samplers(node.node_id, count)
                log.info("node %s joined the cluster with %d CPU(s): started %d sampler(s) there", node.node_id[:8],
                         node.cpus, count)

    def _start_samplers(self, node: str, count: int) -> None:
        if self.cfg.runtime.inference == "remote" and node not in self.inference_actors:
            self.inference_actors[node] = self._new_inference(node)
            self.last_ping[node] = float("-inf")  # pinged at the next poll
        for _ in range(count):
            index = self._add_sampler(node)
            self.plan.samplers.append(node)
            self._fill_sampler(index)

    def _drop_sampler(self, index: int) -> None:
        slot = self.samplers.pop(index)
        ray.kill(slot.actor, no_restart=True)
        self._forget_collects(index)
        self.heartbeats.forget(("sampler", index))

    def _forget_collects(self, index: int) -> None:
        """Drop the collects in flight on sampler ``index``'s actor, which is gone."""
        for ref in [r for r, (kind, i, _) in self.pending.items() if kind == "collect" and i == index]:
            del self.pending[ref]

    # -- population --------------------------------------------------------------------------------------------

    def copy_policy(self, source: int, target: int) -> None:
        """PBT's exploit. Calls to one actor run in order, so the copy lands after the target's queued steps."""
        self.learners[target].copy_from.remote(self.learners[source].state_dict.remote())
        self._publish(target, self.learners[target].weights.remote())

    def set_hyperparameters(self, policy: int, values: dict[str, float]) -> None:
        self.learners[policy].set_hyperparameters.remote(values)

    def set_reward_shaping(self, policy: int, coeffs: dict) -> None:
        self.shaping[policy] = coeffs
        for slot in self.samplers.values():
            slot.actor.set_reward_shaping.remote(policy, coeffs)

    def reward_shaping(self) -> dict | None:
        return ray.get(next(iter(self.samplers.values())).actor.reward_shaping.remote())

    def weights(self, policy: int) -> Weights:
        return ray.get(self.learners[policy].weights.remote())

    def set_opponents(self, snapshots: dict[int, Weights], dropped: list[int]) -> None:
        """The opponent pool is now ``snapshots``; ``dropped`` left it. New snapshots' weights reach
        inference before any sampler may ask for them."""
        new = {sid: ray.put(w) for sid, w in snapshots.items() if sid not in self.opponents}
        self.opponents = {sid: self.opponents.get(sid) or new[sid] for sid in snapshots}
        if self.inference_actors:
            ray.get([a.set_weights.remote(ref) for a in self.inference_actors.values() for ref in new.values()])
        else:
            for ref in new.values():
                self._broadcast(ref)
        for slot in self.samplers.values():
            slot.actor.set_opponents.remote(sorted(self.opponents), dropped)
        for actor in self.inference_actors.values():
            actor.drop.remote(dropped)

    # -- inspection and shutdown -------------------------------------------------------------------------------

    def component_times(self) -> dict[str, dict[str, float]]:
        """Components that do not report with their results: the remote inference actors, added up."""
        if not self.inference_actors:
            return {}
        times: dict[str, float] = {}
        for t in ray.get([a.timing.remote() for a in self.inference_actors.values()], timeout=10):
            for k, v in t.items():
                times[k] = times.get(k, 0.0) + v
        return {"inference": times}

    def learner_pid(self, policy: int = 0) -> int:
        return ray.get(self.learners[policy].pid.remote())

    def sampler_pids(self) -> list[int]:
        return ray.get([self.samplers[i].actor.pid.remote() for i in sorted(self.samplers)])

    def sampler_nodes(self) -> dict[int, str]:
        """Sampler index -> the node it was placed on."""
        return {i: s.node for i, s in self.samplers.items()}

    def learner_states(self) -> dict[int, dict]:
        states = ray.get([self.learners[pid].state_dict.remote() for pid in self.policy_ids])
        return dict(zip(self.policy_ids, states, strict=True))

    def shutdown(self) -> None:
        try:
            ray.get([s.actor.close.remote() for s in self.samplers.values()], timeout=10)
        except Exception as e:  # a dead sampler's envs died with it
            log.warning("closing samplers: %s", e)
        if self.evaluator is not None:
            try:
                ray.get(self.evaluator.close.remote(), timeout=10)
            except Exception as e:  # a dead evaluator's env died with it
                log.warning("closing the evaluator: %s", e)
        for actor in [*(s.actor for s in self.samplers.values()), *self.learners.values(),
                      *self.inference_actors.values(), self.evaluator]:
            if actor is not None:
                ray.kill(actor)
        if self.owns_ray:
            ray.shutdown()
