"""What a runtime reports from one poll: collections finished and learner steps done."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from asyncrl.data import Weights
from asyncrl.sampling.sampler import CollectMeta


@dataclass
class Events:
    collected: list[CollectMeta] = field(default_factory=list)
    trained: list[tuple[int, dict[str, float]]] = field(default_factory=list)  # (policy_id, metrics)
    # (metrics, a call that fetches the weights they were measured with) of finished evaluations
    evaluated: list[tuple[dict, Callable[[], Weights]]] = field(default_factory=list)
