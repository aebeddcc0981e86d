"""What a runtime reports from one poll: collections finished and learner steps done."""

from __future__ import annotations

from dataclasses import dataclass, field

from asyncrl.sampling.sampler import CollectMeta


@dataclass
class Events:
    collected: list[CollectMeta] = field(default_factory=list)
    trained: list[tuple[int, dict[str, float]]] = field(default_factory=list)  # (policy_id, metrics)
