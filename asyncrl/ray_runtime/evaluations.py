"""In-training evaluation on the evaluator actor: one at a time, with the latest weights of ``eval.policy``.

The evaluator is restarted by Ray when it dies; a death shows as a failed evaluation, or as the next evaluation
coming from a new process (its first process's id is asked at once, so that a death before the first shows too).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

import ray

from asyncrl.data import Weights
from asyncrl.ray_runtime.fleet import Fleet
from asyncrl.ray_runtime.in_flight import InFlight

log = logging.getLogger(__name__)


class Evaluations:
    def __init__(self, fleet: Fleet, calls: InFlight, policy: int):
        self.fleet, self.calls, self.policy = fleet, calls, policy
        self.running = False
        self.evaluator_pid: int | None = None  # the process of the latest evaluation
        evaluator = fleet.evaluator
        self.first_pid_ref = evaluator.pid.remote() if evaluator is not None else None

    def start(self, env_steps: int) -> bool:
        """Evaluate the policy's latest weights; False without an evaluator or while one is still running."""
        if self.fleet.evaluator is None or self.running:
            return False
        weights = self.fleet.weights.latest[self.policy]
        self.calls.add(self.fleet.evaluator.evaluate.remote(weights, env_steps), "eval", self.policy, weights)
        self.running = True
        return True

    def finish(self, timeout: float) -> list:
        """The evaluation still running when the budget ran out, waited for up to ``timeout`` seconds: the last
        weights' score is what a finished run is judged by. Empty when none runs or it did not finish."""
        refs = self.calls.refs("eval")
        if not refs:
            return []
        ready, _ = ray.wait(refs, timeout=timeout)
        if not ready:
            log.warning("the evaluation in flight did not finish within %.0f s; the run ends without it", timeout)
            return []
        return self.result(ready[0], self.calls.pop(ready[0]).payload)

    def result(self, ref: ray.ObjectRef, weights: ray.ObjectRef) -> list[tuple[dict, Callable[[], Weights]]]:
        """A finished evaluation as [(metrics, a call that fetches its weights)]; empty if the evaluator died
        (Ray restarts it; the next evaluation runs there)."""
        self.running = False
        try:
            result, process_id = ray.get(ref)
        except ray.exceptions.RayActorError as e:
            log.warning("the evaluator died during an evaluation (%s)%s", str(e).splitlines()[0][:200],
                        "; replaced by a fresh actor" if e.actor_init_failed else "")
            if e.actor_init_failed:  # Ray could not restart it
                ray.kill(self.fleet.evaluator, no_restart=True)
                self.fleet.evaluator = self.fleet.new_evaluator()
            self.evaluator_pid, self.first_pid_ref = None, None
            return []
        if self.evaluator_pid is None and self.first_pid_ref is not None:
            with contextlib.suppress(ray.exceptions.RayError):
                self.evaluator_pid = ray.get(self.first_pid_ref, timeout=5)
            self.first_pid_ref = None
        if self.evaluator_pid not in (None, process_id):
            log.warning("the evaluator died between evaluations (its process %d was replaced by %d)",
                        self.evaluator_pid, process_id)
        self.evaluator_pid = process_id
        return [(result, lambda: ray.get(weights))]
