"""The calls the driver is waiting for: collects, training steps and evaluations, each with what its result needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import ray

Kind = Literal["collect", "train", "eval"]


@dataclass(frozen=True)
class Call:
    kind: Kind
    index: Any  # the sampler's index (collect), the policy (train, eval)
    payload: Any = None  # collect: {policy: trajectory ref}; train and eval: the weights ref they return or use


class InFlight:
    def __init__(self) -> None:
        self._calls: dict[ray.ObjectRef, Call] = {}

    def add(self, ref: ray.ObjectRef, kind: Kind, index: Any, payload: Any = None) -> None:
        self._calls[ref] = Call(kind, index, payload)

    def ready(self, timeout: float) -> list[ray.ObjectRef]:
        """The refs done within ``timeout`` (at least one unless none is), with all others already done."""
        refs = list(self._calls)
        ready, _ = ray.wait(refs, num_returns=1, timeout=timeout)
        if ready:
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        return ready

    def pop(self, ref: ray.ObjectRef) -> Call | None:
        """The call of a done ref; None if it was forgotten meanwhile (its actor is gone)."""
        return self._calls.pop(ref, None)

    def count(self, kind: Kind, index: Any) -> int:
        return sum(1 for c in self._calls.values() if c.kind == kind and c.index == index)

    def refs(self, kind: Kind, index: Any = None) -> list[ray.ObjectRef]:
        return [r for r, c in self._calls.items() if c.kind == kind and (index is None or c.index == index)]

    def forget(self, kind: Kind, index: Any) -> None:
        """Drop the calls on an actor that is gone: their results will never come, or will not count."""
        for ref in self.refs(kind, index):
            del self._calls[ref]
