"""The weights edge: learner -> policy copies (remote inference actors, or each sampler's own copy).

Every version is one object-store ref (the learner returns its weights with each training step), passed to every
consumer; a node pulls it once however many actors there read it. The newest ref of each policy and of each
opponent snapshot is kept, so that a new, restarted or replaced consumer is brought up to date by one call.
A copy takes only versions newer than its own, so sending one twice costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import ray


class WeightsEdge:
    def __init__(self, consumers: Callable[[], Iterable[ray.actor.ActorHandle]]):
        """``consumers``: the actors that hold policy copies right now (they change with restarts and nodes)."""
        self.consumers = consumers
        self.latest: dict[int, ray.ObjectRef] = {}  # policy -> its newest weights
        self.opponents: dict[int, ray.ObjectRef] = {}  # snapshot id -> its frozen weights, oldest first

    def publish(self, policy: int, weights: ray.ObjectRef) -> None:
        """A policy's new version: the newest from now on, and sent to every consumer."""
        self.latest[policy] = weights
        self._to_consumers(weights)

    def bring_up_to_date(self, actor: ray.actor.ActorHandle) -> None:
        """Everything a fresh policy copy needs: every policy's newest weights and the opponent pool's."""
        for ref in [*self.latest.values(), *self.opponents.values()]:
            actor.set_weights.remote(ref)

    def set_opponents(self, snapshots: dict[int, ray.ObjectRef], wait: bool) -> None:
        """The pool is now ``snapshots`` (refs already put); the new ones are sent to every consumer. ``wait``:
        until they landed, where other actors (samplers asking a remote inference actor) may ask for them at
        once; a sampler's own copy takes its calls in order, so the snapshot is there before it is used."""
        new = [ref for sid, ref in snapshots.items() if sid not in self.opponents]
        self.opponents = dict(snapshots)
        calls = [actor.set_weights.remote(ref) for actor in self.consumers() for ref in new]
        if wait:
            ray.get(calls)

    def _to_consumers(self, weights: ray.ObjectRef) -> None:
        for actor in self.consumers():
            actor.set_weights.remote(weights)
