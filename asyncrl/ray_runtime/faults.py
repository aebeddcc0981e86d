"""What the driver does when a component dies, hangs, or the run as a whole stops moving.

- A sampler that dies is restarted by Ray; the driver sees it by a failed collect or, when it died idle, by the
  next collect coming from a new process, and sends the new process what it lacks. One whose restart fails is
  replaced by a fresh actor in the same slot.
- A learner that dies is replaced from the latest checkpoint, with a version above every one it published.
- A remote inference actor is pinged every few seconds: a failed ping or a new process id is a restart, and the
  new process is sent the weights.
- A component with work in flight and no result for ``runtime.hang_timeout_s`` is named and killed (heartbeats).
- Env steps that stop for that long while no component is to blame are a stall: every sampler and inference
  actor is replaced; if the steps do not come back (5x that), the run fails with one line (``RunStalled``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import ray

from asyncrl.ray_runtime.fleet import Fleet
from asyncrl.ray_runtime.in_flight import InFlight
from asyncrl.runtime.heartbeat import Heartbeats
from asyncrl.runtime.stall import RunStalled, StallWatch, Verdict
from asyncrl.runtime.training_queue import TrainingQueue

log = logging.getLogger(__name__)

PING_EVERY_S = 5.0  # each remote inference actor gets a cheap call this often (at most), so a hung one shows


def _first_line(error: Exception | str) -> str:
    return str(error).splitlines()[0][:200]


class Faults:
    def __init__(self, fleet: Fleet, calls: InFlight, queue: TrainingQueue, hang_timeout_s: float,
                 restore: Callable[[], dict[int, dict] | None] | None):
        """``restore`` returns the learners' states of the latest checkpoint, to restart a dead learner."""
        self.fleet, self.calls, self.queue, self.restore = fleet, calls, queue, restore
        self.heartbeats = Heartbeats(hang_timeout_s)
        self.stall = StallWatch(hang_timeout_s)
        self.published_version = dict.fromkeys(fleet.policy_ids, 0)
        self.learner_restarts = 0
        self.hung_restarts = 0  # components killed because they stopped making progress
        self.replaced = 0  # actors Ray could not restart, replaced by fresh ones
        self.pings: dict[str, ray.ObjectRef] = {}  # inference node -> its outstanding ping
        self.inference_pids: dict[str, int] = {}  # node -> the process its inference actor last answered from
        # The first ping goes out with the first poll: a restart is seen as a new process id, which needs the
        # first process's id to compare with (a kill before that ping would otherwise pass unseen).
        self.last_ping = dict.fromkeys(fleet.inference, float("-inf"))

    def _where(self, node: str) -> str:
        return f" on node {node[:8]}" if self.fleet.clustered else ""

    # -- samplers ----------------------------------------------------------------------------------------------

    def collect_failed(self, index: int, error: Exception, init_failed: bool) -> None:
        """A collect failed because its process died (or is new and lacks its weights)."""
        if init_failed:  # Ray cannot bring it back: its constructor failed in the new process
            self.replace_sampler(index, error)
        else:
            self._sampler_died(index, error)

    def collected(self, index: int, process_id: int) -> None:
        """A good collect came from ``process_id``. A sampler that died with nothing in flight fails no call:
        Ray restarts it and queues the next calls for the new process, so its death shows only here, as a new
        process. Its reward shaping and opponents died with it and are sent again."""
        slot = self.fleet.samplers[index]
        if process_id != slot.dead_process_id:  # (else a collect the dead process finished before it died)
            if slot.process_id is not None and process_id != slot.process_id and not slot.restarting:
                self._sampler_died(index, f"its process {slot.process_id} was replaced by {process_id}")
            slot.process_id, slot.restarting = process_id, False
        self.heartbeats.progress(("sampler", index), self.calls.count("collect", index) > 0)

    def _sampler_died(self, index: int, error: Exception | str) -> None:
        # Every collect in flight on the dead process fails, and so may those sent while Ray restarts
        # it: the sampler counts as restarting until its next successful collect, and is logged once.
        # The chunks it was cutting are lost, which costs samples, not correctness: none was trained on.
        slot = self.fleet.samplers[index]
        if not slot.restarting:
            slot.restarting = True
            slot.dead_process_id = slot.process_id
            slot.restarts += 1
            # Its clock runs from the death on: a restart that never succeeds shows as hung.
            self.heartbeats.restarted(("sampler", index), still_busy=True)
            log.warning("sampler %d died (%s); Ray restarts it (restart #%d)", index, _first_line(error),
                        slot.restarts)
        # Calls to a restarting actor wait for its new process, which starts with nothing.
        self.fleet.bring_sampler_up_to_date(index)

    def replace_sampler(self, index: int, why: Exception | str) -> None:
        """A fresh actor in place of one Ray could not restart (or that stays stuck): same index, node and core."""
        old = self.fleet.remove_sampler(index)
        self.calls.forget("collect", index)
        self.replaced += 1
        log.warning("sampler %d could not be restarted (%s): replaced by a fresh actor (replacement #%d)", index,
                    _first_line(why), self.replaced)
        self.fleet.add_sampler(old.node, index, old.core_index)
        new = self.fleet.samplers[index]
        new.restarts = old.restarts + (0 if old.restarting else 1)
        new.restarting, new.dead_process_id = True, old.process_id
        self.heartbeats.restarted(("sampler", index), still_busy=False)

    # -- learners ----------------------------------------------------------------------------------------------

    def trained(self, pid: int, version: int) -> None:
        self.published_version[pid] = max(self.published_version[pid], version)
        self.heartbeats.progress(("learner", pid), self.calls.count("train", pid) > 0)

    def restart_learner(self, pid: int, error: Exception) -> None:
        """Recreate a dead learner from the latest checkpoint; the batches it held are lost."""
        self.calls.forget("train", pid)
        self.learner_restarts += 1
        self.heartbeats.restarted(("learner", pid), still_busy=False)
        state = (self.restore() or {}).get(pid) if self.restore else None
        if state is not None:
            # A version above every published one: samplers accept only newer weights, and the
            # experience collected by the lost versions counts as lagging behind the restored learner.
            state = {**state, "version": max(int(state["version"]), self.published_version[pid]) + 1}
        log.warning("learner %d died (%s); restarting it from %s (restart #%d)", pid, _first_line(error),
                    "the latest checkpoint" if state is not None else "scratch: no checkpoint yet",
                    self.learner_restarts)
        ray.kill(self.fleet.learners[pid])
        # A checkpoint holds the hyperparameters PBT had given this policy.
        learner = self.fleet.learners[pid] = self.fleet.new_learner(pid, state, hyperparameters=True)
        self.fleet.weights.publish(pid, learner.weights.remote())

    # -- inference ---------------------------------------------------------------------------------------------

    def ping_inference(self) -> None:
        """A cheap call to each remote inference actor every few seconds: its reply is its heartbeat."""
        every = min(PING_EVERY_S, self.heartbeats.timeout_s / 4 or PING_EVERY_S)
        for node, actor in self.fleet.inference.items():
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
                    self.replace_inference(node, e)
                    continue
                # Ray restarts it, and calls sent from now on wait for the new process, which has no weights.
                log.warning("the inference actor%s died (%s): Ray restarts it; weights sent again", self._where(node),
                            _first_line(e))
                self.fleet.weights.bring_up_to_date(actor)
                self.inference_pids.pop(node, None)  # the next ping's answer is the new process's id
                self.heartbeats.restarted(("inference", node), still_busy=False)
                continue
            self.heartbeats.progress(("inference", node), still_busy=False)
            if self.inference_pids.get(node) not in (None, pid):
                # Restarted by Ray: the new process has no weights, and its samplers' requests wait for them.
                log.warning("the inference actor%s was restarted (process %d replaced by %d): weights sent again",
                            self._where(node), self.inference_pids[node], pid)
                self.fleet.weights.bring_up_to_date(actor)
            self.inference_pids[node] = pid

    def replace_inference(self, node: str, why: Exception | str) -> None:
        """A fresh inference actor on ``node``, and fresh samplers there: one blocked on the old actor's replies
        would only see the new handle after its client's retry window (RayInferenceClient.RETRY_FOR_S)."""
        ray.kill(self.fleet.inference[node], no_restart=True)
        self.pings.pop(node, None)
        self.inference_pids.pop(node, None)
        self.replaced += 1
        log.warning("the inference actor%s could not be restarted (%s): replaced by a fresh actor, with its "
                    "samplers (replacement #%d)", self._where(node), _first_line(why), self.replaced)
        self.fleet.inference[node] = self.fleet.new_inference(node)
        self.heartbeats.restarted(("inference", node), still_busy=False)
        self.last_ping[node] = float("-inf")  # pinged at the next poll
        for i in [i for i, slot in self.fleet.samplers.items() if slot.node == node]:
            self.replace_sampler(i, "its inference actor was replaced")

    def inference_added(self, node: str) -> None:
        self.last_ping[node] = float("-inf")  # pinged at the next poll

    def inference_gone(self, node: str) -> None:
        self.pings.pop(node, None)
        self.heartbeats.forget(("inference", node))

    # -- hangs and stalls --------------------------------------------------------------------------------------

    def check(self) -> None:
        """Once per poll, after every ready result was taken in (a component that delivered meanwhile is not
        hung): inference pings, components with work in flight and no result, a run whose steps stopped."""
        self.ping_inference()
        # While an inference actor owes a ping, the samplers it serves are not blamed: it is the suspect.
        suspects = set(self.pings)
        for name, quiet_s in self.heartbeats.hung():
            if name[0] != "sampler" or self.fleet.samplers[name[1]].node not in suspects:
                self._kill_hung(name, quiet_s)
        self._check_stall()

    def _kill_hung(self, name: tuple, quiet_s: float) -> None:
        """Kill a component that has had work in flight for too long without a result. Samplers and inference
        actors are restarted by Ray (their calls in flight fail and are handled as a death); a learner is
        replaced from the latest checkpoint when its failed training call comes back."""
        kind = name[0]
        label = {"sampler": f"sampler {name[1]}", "learner": f"learner {name[1]}"}.get(kind, "inference")
        if kind == "inference" and len(self.fleet.inference) > 1:
            label += f" on node {name[1][:8]}"
        self.hung_restarts += 1
        self.stall.handled()
        log.warning("%s made no progress for %.0f s with work in flight (hung?): killing it to restart it "
                    "(hang #%d; runtime.hang_timeout_s=%g)", label, quiet_s, self.hung_restarts,
                    self.heartbeats.timeout_s)
        self.heartbeats.restarted(name)
        if kind == "sampler":
            ray.kill(self.fleet.samplers[name[1]].actor, no_restart=False)
        elif kind == "learner":
            ray.kill(self.fleet.learners[name[1]], no_restart=True)
        else:
            ray.kill(self.fleet.inference[name[1]], no_restart=False)
            self.pings.pop(name[1], None)
            # Its samplers were stuck on inference, not on themselves: their clocks restart.
            for i, slot in self.fleet.samplers.items():
                if slot.node == name[1]:
                    self.heartbeats.restarted(("sampler", i), self.calls.count("collect", i) > 0)

    def _check_stall(self) -> None:
        """Env steps that stop advancing while no single component is to blame (all alive and waiting, or Ray
        restarting one without success): name what is stuck and replace every sampler and inference actor;
        if that does not bring the steps back either, the run has failed."""
        verdict = self.stall.observe(self.queue.collected_steps, defer=self.heartbeats.judging())
        if verdict is Verdict.OK:
            return
        quiet = self.stall.quiet_s()
        if verdict is Verdict.FAILED:
            raise RunStalled(f"no env step for {quiet:.0f} s, even after replacing the samplers and inference "
                             f"actors {self.stall.since_recovery_s():.0f} s ago "
                             f"({self.stuck_report()}); runtime.hang_timeout_s={self.stall.timeout_s:g}")
        inference = self.fleet.inference
        log.warning("no env step for %.0f s (runtime.hang_timeout_s=%g): %s; replacing every sampler%s", quiet,
                    self.stall.timeout_s, self.stuck_report(), " and inference actor" if inference else "")
        for node in list(inference):
            self.replace_inference(node, "the run stalled")
        for i in list(self.fleet.samplers):
            if inference.get(self.fleet.samplers[i].node) is None:  # (else replaced with its inference)
                self.replace_sampler(i, "the run stalled")

    def stuck_report(self) -> str:
        """What each component is doing, for the stall's log line."""
        parts = []
        for i, slot in sorted(self.fleet.samplers.items()):
            state = "restarting" if slot.restarting else "alive"
            parts.append(f"sampler {i} {state}, {self.calls.count('collect', i)} collect(s) in flight")
        for pid in self.fleet.policy_ids:
            parts.append(f"learner {pid} {self.calls.count('train', pid)} batch(es) in flight, "
                         f"{self.queue.buffered_steps(pid)} steps buffered")
        for node in self.fleet.inference:
            parts.append(f"inference{' ' + node[:8] if self.fleet.clustered else ''} "
                         f"{'owes a ping' if node in self.pings else 'answering'}")
        return "; ".join(parts)
