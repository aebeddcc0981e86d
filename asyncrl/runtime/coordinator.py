"""Bookkeeping shared by every runtime: what was collected, what is ready to train, what was seen.

Payloads are opaque here (trajectories in the serial runtime, object refs in the Ray runtime), so this
class never touches the data and never imports Ray.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from asyncrl.data import EpisodeStats
from asyncrl.sampling.sampler import CollectMeta


@dataclass
class PolicyStats:
    """Recent episodes of one policy."""

    window: int
    returns: deque = field(init=False)
    lengths: deque = field(init=False)
    extras: dict[str, deque] = field(default_factory=dict)
    episodes: int = 0

    def __post_init__(self) -> None:
        self.returns, self.lengths = deque(maxlen=self.window), deque(maxlen=self.window)

    def add(self, ep: EpisodeStats) -> None:
        self.episodes += 1
        self.returns.append(ep.ret)
        self.lengths.append(ep.length)
        for k, v in ep.extra.items():
            self.extras.setdefault(k, deque(maxlen=self.window)).append(v)

    def mean_return(self, last: int | None = None) -> float | None:
        if not self.returns:
            return None
        values = list(self.returns)[-last:] if last else self.returns
        return float(np.mean(values))

    def summary(self) -> dict[str, float]:
        if not self.returns:
            return {}
        out = {"stats/return_mean": float(np.mean(self.returns))}
        if self.lengths:  # a resumed run restores returns, not lengths: none until its first episode
            out["stats/episode_len"] = float(np.mean(self.lengths))
        out |= {f"stats/{k}": float(np.mean(v)) for k, v in self.extras.items() if v}
        return out


class Coordinator:
    def __init__(self, batch_size: int, policy_ids: tuple[int, ...] = (0,), stats_window: int = 100,
                 env_steps: int = 0, episodes: int = 0, policy_steps: dict[int, int] | None = None):
        self.batch_size = batch_size
        self.policy_ids = policy_ids
        self.env_steps = env_steps  # agent steps collected, all policies
        self.policy_steps = {pid: int((policy_steps or {}).get(pid, 0)) for pid in policy_ids}
        self.episodes = episodes
        self.stats = {pid: PolicyStats(stats_window) for pid in policy_ids}
        self._buffers: dict[int, list[tuple[Any, int]]] = {pid: [] for pid in policy_ids}

    def add(self, payload: Any, meta: CollectMeta) -> None:
        for pid, steps in meta.steps_per_policy.items():
            self._buffers[pid].append((payload, steps))
            self.env_steps += steps
            self.policy_steps[pid] += steps
        for ep in meta.episodes:
            self.stats[ep.policy_id].add(ep)
            self.episodes += 1

    def buffered_steps(self, policy_id: int) -> int:
        return sum(steps for _, steps in self._buffers[policy_id])

    def next_batch(self, policy_id: int) -> list[Any] | None:
        """Whole chunks, oldest first, until ``batch_size`` transitions; None while too few are buffered."""
        if self.buffered_steps(policy_id) < self.batch_size:
            return None
        buf, taken, steps = self._buffers[policy_id], [], 0
        while steps < self.batch_size:
            payload, n = buf.pop(0)
            taken.append(payload)
            steps += n
        return taken
