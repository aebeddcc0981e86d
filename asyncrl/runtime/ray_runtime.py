"""The Ray runtime: all wiring in one place.

The driver never fetches trajectories: it reads each collection's small metadata, passes the trajectory
refs to the learner, and passes each new weights ref (one ``ray.put`` per version, made by returning it
from the learner) to every consumer.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable

import ray

from asyncrl.config.schema import Config
from asyncrl.data import Weights
from asyncrl.runtime.components import (
    check_checkpoint_fits,
    check_eval_fits,
    check_population_fits,
    policy_ids,
    probe_spaces,
    resolve_device,
    state_size,
)
from asyncrl.runtime.coordinator import Coordinator
from asyncrl.runtime.events import Events
from asyncrl.runtime.heartbeat import Heartbeats
from asyncrl.runtime.ray_actors import EvaluatorActor, InferenceActor, LearnerActor, SamplerActor

log = logging.getLogger(__name__)

COLLECTS_IN_FLIGHT = 2  # per sampler: the next request is queued so a sampler never idles on the driver
TRAINS_IN_FLIGHT = 2  # per learner: one training, one queued
PING_EVERY_S = 5.0  # the remote inference actor gets a cheap call this often (at most), so a hung one shows


ADDRESS_TIMEOUT_S = 3.0  # a Ray head answers a TCP connect at once; a dead address must not hang the start


def _check_address_answers(address: str) -> None:
    """TCP-connect to a ``[ray://]host:port`` address: ray.init retries a dead one for a minute or more."""
    import socket

    from asyncrl.config.loader import ConfigError

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # 'auto', 'local' or a malformed address: ray.init judges those itself, at once
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=ADDRESS_TIMEOUT_S).close()
    except OSError as e:
        reason = (f"no reply in {ADDRESS_TIMEOUT_S:g} s" if isinstance(e, TimeoutError)
                  else e.strerror or str(e) or type(e).__name__)
        raise ConfigError(f"runtime.address={address!r} does not answer ({reason}): expected the host:port of a "
                          f"running Ray head (printed by 'ray start --head'), or no runtime.address for an "
                          f"embedded local Ray") from e


def start_ray(cfg: Config, num_actors: int) -> tuple[bool, str | None]:
    """Join ``runtime.address`` or start an embedded local Ray (without a dashboard: it costs a core's share
    on a small machine). Returns whether we connected (and so disconnect at the end), and the dashboard's
    URL when the cluster has one."""
    if ray.is_initialized():
        return False, None
    # ray.init replaces the caller's SIGTERM handler with one that calls sys.exit (and Ray's C++ core adds
    # one that prints a stack): the trainer's, which turns SIGTERM into a stop with a final checkpoint and
    # status 'interrupted', is put back.
    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        if cfg.runtime.address:
            from asyncrl.config.loader import ConfigError

            _check_address_answers(cfg.runtime.address)
            try:
                context = ray.init(address=cfg.runtime.address, logging_level=logging.WARNING)
            except (ValueError, ConnectionError) as e:  # a malformed address, or 'auto' with no cluster running
                raise ConfigError(f"runtime.address={cfg.runtime.address!r} cannot be joined "
                                  f"({(str(e).splitlines() or [type(e).__name__])[0]}): expected host:port of a "
                                  f"running Ray head, or no runtime.address for an embedded local Ray") from e
            url = getattr(context, "dashboard_url", None)
            return True, (url if not url or "://" in url else f"http://{url}")
        # Every actor asks for one logical CPU; the threads they use are set per actor, so logical CPUs may
        # exceed the physical ones on a small machine.
        num_cpus = cfg.runtime.num_cpus or max(os.cpu_count() or 1, num_actors)
        ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level=logging.WARNING,
                 configure_logging=True, log_to_driver=True)
        return True, None
    finally:
        if sigterm is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, sigterm)


class RayRuntime:
    def __init__(self, cfg: Config, coordinator: Coordinator, learner_states: dict[int, dict] | None = None,
                 restore: Callable[[], dict[int, dict] | None] | None = None):
        """``restore`` returns the learners' states of the latest checkpoint, to restart a dead learner."""
        self.cfg, self.coordinator, self.restore = cfg, coordinator, restore
        rt = cfg.runtime
        remote_inference = rt.inference == "remote"
        # Bad input (env, population, checkpoint, device) fails before Ray starts: nothing to clean up.
        spaces = probe_spaces(cfg.env)
        check_population_fits(cfg, spaces)
        check_eval_fits(cfg, spaces)
        if learner_states:
            check_checkpoint_fits(cfg, spaces, learner_states)
        device = resolve_device(rt.device)
        self.policy_ids = policy_ids(cfg)
        self.owns_ray, self.dashboard_url = start_ray(cfg, rt.num_samplers + len(self.policy_ids)
                                                      + int(remote_inference))
        gpus = 1 if device == "cuda" else 0
        # Several learners share one GPU: each asks for its fraction, so Ray places them all on it.
        self.learner_gpus = gpus / len(self.policy_ids)
        self.spaces, self.device, self.gpus = spaces, device, gpus
        self.learners = {pid: self._new_learner(pid, (learner_states or {}).get(pid)) for pid in self.policy_ids}
        self.published_version = dict.fromkeys(self.policy_ids, 0)
        self.learner_restarts = 0
        # Held for the run's lifetime: Ray re-runs a dead sampler's constructor with these very refs.
        self.initial_weights = weights = [self.learners[pid].weights.remote() for pid in self.policy_ids]
        self.latest_weights = dict(zip(self.policy_ids, weights, strict=True))  # refs, for evaluation
        self.evaluator = (EvaluatorActor.options(max_restarts=-1).remote(cfg, spaces) if cfg.eval.period else None)
        self.eval_in_flight = False
        self.inference = (InferenceActor.options(num_gpus=gpus / 2 if gpus else 0, max_concurrency=1000,
                                                 max_restarts=-1).remote(cfg, spaces, device, *weights)
                          if remote_inference else None)
        size = state_size(cfg, spaces)
        # Ray recreates a dead sampler with its constructor's arguments (its envs and engines anew); the
        # weights it starts with are stale until the next broadcast, which comes with the next batch.
        self.samplers = [SamplerActor.options(max_restarts=-1).remote(cfg, i, spaces, size, self.inference, *weights)
                         for i in range(rt.num_samplers)]
        self.sampler_restarts = [0] * rt.num_samplers
        self.restarting = [False] * rt.num_samplers
        self.steps_per_collect = rt.num_envs * spaces.num_agents * cfg.algo.rollout
        self.max_buffered = rt.max_batches_ahead * cfg.algo.batch_size
        self.pending: dict[ray.ObjectRef, tuple] = {}
        self.collects_in_flight = [0] * rt.num_samplers
        self.trains_in_flight = dict.fromkeys(self.policy_ids, 0)
        self.heartbeats = Heartbeats(rt.hang_timeout_s)
        self.hung_restarts = 0  # components restarted because they stopped making progress
        self.inference_ping: ray.ObjectRef | None = None
        self.last_ping = time.monotonic()
        # What PBT and the opponent pool pushed to the samplers, pushed again to a restarted one.
        self.shaping: dict[int, dict] = {}
        self.opponents: dict[int, ray.ObjectRef] = {}
        for i in range(rt.num_samplers):
            self._fill_sampler(i)

    def _new_learner(self, pid: int, state: dict | None, hyperparameters: bool | None = None):
        keep = self.cfg.pbt.enabled if hyperparameters is None else hyperparameters
        return LearnerActor.options(num_gpus=self.learner_gpus).remote(self.cfg, self.spaces, pid, self.device,
                                                                       state, keep)

    @property
    def learner(self):
        """Policy 0's learner (the only one without a population)."""
        return self.learners[self.policy_ids[0]]

    # -- submitting work ----------------------------------------------------------------------------------

    def _room_for_collect(self) -> bool:
        # A collect feeds every policy about equally, so the fullest policy buffer plus its share of what
        # is in flight decides.
        in_flight = sum(self.collects_in_flight) * self.steps_per_collect / len(self.policy_ids)
        fullest = max(self.coordinator.buffered_steps(pid) for pid in self.policy_ids)
        return fullest + in_flight < self.max_buffered

    def _fill_sampler(self, i: int) -> None:
        # Backpressure: a sampler only works while the learners are at most max_batches_ahead behind.
        while self.collects_in_flight[i] < COLLECTS_IN_FLIGHT and self._room_for_collect():
            trajectories, meta = self.samplers[i].collect.remote()
            self.pending[meta] = ("collect", i, trajectories)
            self.collects_in_flight[i] += 1
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

    def _publish(self, pid: int, weights: ray.ObjectRef) -> None:
        """A policy's new weights: the newest for evaluation, and sent to every consumer."""
        self.latest_weights[pid] = weights
        self._broadcast(weights)

    def _broadcast(self, weights: ray.ObjectRef, samplers: list | None = None) -> None:
        if self.inference is not None:
            self.inference.set_weights.remote(weights)
        else:
            for sampler in self.samplers if samplers is None else samplers:
                sampler.set_weights.remote(weights)

    # -- the loop ------------------------------------------------------------------------------------------

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
                self.collects_in_flight[index] -= 1
                try:
                    meta = ray.get(ref)
                except ray.exceptions.RayActorError as e:
                    self._on_sampler_death(index, e)
                    continue
                self.restarting[index] = False
                self.heartbeats.progress(("sampler", index), self.collects_in_flight[index] > 0)
                self.coordinator.add(payload, meta)
                events.collected.append(meta)
            elif kind == "eval":
                self.eval_in_flight = False
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayActorError as e:  # Ray restarts the evaluator; the next one runs there
                    log.warning("the evaluator died during an evaluation (%s)", str(e).splitlines()[0][:200])
                    continue
                events.evaluated.append((result, lambda weights=payload: ray.get(weights)))
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
        self._check_inference()
        # After every ready result was taken in: a component that delivered meanwhile is not hung. While the
        # remote inference actor owes a ping, samplers waiting for actions are not blamed: it is the suspect.
        suspect_inference = self.inference_ping is not None
        for name, quiet_s in self.heartbeats.hung():
            if name[0] != "sampler" or not suspect_inference:
                self._restart_hung(name, quiet_s)
        self._submit_training()
        for i in range(len(self.samplers)):
            self._fill_sampler(i)
        return events

    # -- heartbeats ----------------------------------------------------------------------------------------

    def _check_inference(self) -> None:
        """A cheap call to the remote inference actor every few seconds: its reply is its heartbeat."""
        if self.inference is None:
            return
        if self.inference_ping is None:
            if time.monotonic() - self.last_ping >= min(PING_EVERY_S, self.heartbeats.timeout_s / 4 or PING_EVERY_S):
                self.inference_ping = self.inference.pid.remote()
                self.heartbeats.busy(("inference",))
            return
        ready, _ = ray.wait([self.inference_ping], timeout=0)
        if ready:
            self.inference_ping, self.last_ping = None, time.monotonic()
            try:
                ray.get(ready[0])
            except ray.exceptions.RayActorError:
                self.heartbeats.restarted(("inference",), still_busy=False)  # Ray restarts it; the next ping tells
                return
            self.heartbeats.progress(("inference",), still_busy=False)

    def _restart_hung(self, name: tuple, quiet_s: float) -> None:
        """Kill a component that has had work in flight for too long without a result. Samplers and the
        inference actor are restarted by Ray (their calls in flight fail and are handled as a death); a
        learner is replaced from the latest checkpoint when its failed training call comes back."""
        kind = name[0]
        label = kind if len(name) == 1 else f"{kind} {name[1]}"
        self.hung_restarts += 1
        log.warning("%s made no progress for %.0f s with work in flight (hung?): killing it to restart it "
                    "(hang #%d; runtime.hang_timeout_s=%g)", label, quiet_s, self.hung_restarts,
                    self.heartbeats.timeout_s)
        self.heartbeats.restarted(name)
        if kind == "sampler":
            ray.kill(self.samplers[name[1]], no_restart=False)
        elif kind == "learner":
            ray.kill(self.learners[name[1]], no_restart=True)
        else:
            ray.kill(self.inference, no_restart=False)
            self.inference_ping = None
            # Samplers waiting for actions were stuck on inference, not on themselves: their clocks restart.
            for i in range(len(self.samplers)):
                self.heartbeats.restarted(("sampler", i), self.collects_in_flight[i] > 0)

    def _on_sampler_death(self, index: int, error: Exception) -> None:
        # Every collect in flight on the dead process fails, and so may those sent while Ray restarts
        # it: the sampler counts as restarting until its next successful collect, and is logged once.
        # The chunks it was cutting are lost, which costs samples, not correctness: none was trained on.
        if self.restarting[index]:
            return
        self.restarting[index] = True
        self.heartbeats.restarted(("sampler", index), self.collects_in_flight[index] > 0)
        self.sampler_restarts[index] += 1
        log.warning("sampler %d died (%s); Ray restarts it (restart #%d)", index,
                    str(error).splitlines()[0][:200], self.sampler_restarts[index])
        # Calls to a restarting actor wait for its new process: it gets the population's state back.
        sampler = self.samplers[index]
        for pid, coeffs in self.shaping.items():
            sampler.set_reward_shaping.remote(pid, coeffs)
        if self.opponents:
            for weights in self.opponents.values():
                self._broadcast(weights, [sampler])
            sampler.set_opponents.remote(sorted(self.opponents), [])

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

    # -- population ----------------------------------------------------------------------------------------

    def copy_policy(self, source: int, target: int) -> None:
        """PBT's exploit. Calls to one actor run in order, so the copy lands after the target's queued steps."""
        self.learners[target].copy_from.remote(self.learners[source].state_dict.remote())
        self._publish(target, self.learners[target].weights.remote())

    def set_hyperparameters(self, policy: int, values: dict[str, float]) -> None:
        self.learners[policy].set_hyperparameters.remote(values)

    def set_reward_shaping(self, policy: int, coeffs: dict) -> None:
        self.shaping[policy] = coeffs
        for sampler in self.samplers:
            sampler.set_reward_shaping.remote(policy, coeffs)

    def reward_shaping(self) -> dict | None:
        return ray.get(self.samplers[0].reward_shaping.remote())

    def weights(self, policy: int) -> Weights:
        return ray.get(self.learners[policy].weights.remote())

    def set_opponents(self, snapshots: dict[int, Weights], dropped: list[int]) -> None:
        """The opponent pool is now ``snapshots``; ``dropped`` left it. New snapshots' weights reach
        inference before any sampler may ask for them."""
        new = {sid: ray.put(w) for sid, w in snapshots.items() if sid not in self.opponents}
        self.opponents = {sid: self.opponents.get(sid) or new[sid] for sid in snapshots}
        if self.inference is not None:
            ray.get([self.inference.set_weights.remote(ref) for ref in new.values()])
        else:
            for ref in new.values():
                self._broadcast(ref)
        for sampler in self.samplers:
            sampler.set_opponents.remote(sorted(self.opponents), dropped)
        if self.inference is not None:
            self.inference.drop.remote(dropped)

    def component_times(self) -> dict[str, dict[str, float]]:
        """Components that do not report with their results: the remote inference actor."""
        if self.inference is None:
            return {}
        return {"inference": ray.get(self.inference.timing.remote(), timeout=10)}

    def learner_pid(self, policy: int = 0) -> int:
        return ray.get(self.learners[policy].pid.remote())

    def sampler_pids(self) -> list[int]:
        return ray.get([s.pid.remote() for s in self.samplers])

    def learner_states(self) -> dict[int, dict]:
        states = ray.get([self.learners[pid].state_dict.remote() for pid in self.policy_ids])
        return dict(zip(self.policy_ids, states, strict=True))

    def shutdown(self) -> None:
        try:
            ray.get([s.close.remote() for s in self.samplers], timeout=10)
        except Exception as e:  # a dead sampler's envs died with it
            log.warning("closing samplers: %s", e)
        if self.evaluator is not None:
            try:
                ray.get(self.evaluator.close.remote(), timeout=10)
            except Exception as e:  # a dead evaluator's env died with it
                log.warning("closing the evaluator: %s", e)
        for actor in [*self.samplers, *self.learners.values(), self.inference, self.evaluator]:
            if actor is not None:
                ray.kill(actor)
        if self.owns_ray:
            ray.shutdown()
