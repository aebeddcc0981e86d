"""What a run has seen so far: agent steps and episodes in all, per policy, and each policy's recent episodes.

The trainer keeps one ``Progress`` and feeds it every collection's metadata; PBT reads its objectives from it,
the console and the summary their returns. It never touches trajectories (no Ray, no torch here).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from asyncrl.data import EpisodeStats


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

    def restore(self, returns: Iterable[float], extras: dict[str, Iterable[float]]) -> None:
        """Take back a checkpoint's recent returns and stats (lengths are not saved: none until the next episode)."""
        self.returns.extend(returns)
        for name, values in extras.items():
            self.extras.setdefault(name, deque(maxlen=self.window)).extend(values)

    def mean_return(self, last: int | None = None) -> float | None:
        if not self.returns:
            return None
        values = list(self.returns)[-last:] if last else self.returns
        return float(np.mean(values))

    def summary(self) -> dict[str, float]:
        if not self.returns:
            return {}
        out = {"stats/return_mean": float(np.mean(self.returns))}
        if self.lengths:
            out["stats/episode_len"] = float(np.mean(self.lengths))
        out |= {f"stats/{k}": float(np.mean(v)) for k, v in self.extras.items() if v}
        return out


class Progress:
    def __init__(self, policy_ids: tuple[int, ...] = (0,), stats_window: int = 100, env_steps: int = 0,
                 episodes: int = 0, policy_steps: dict[int, int] | None = None):
        self.env_steps = env_steps  # agent steps collected, all policies, over every session of the run
        self.episodes = episodes
        self.policy_steps = {pid: int((policy_steps or {}).get(pid, 0)) for pid in policy_ids}
        self.stats = {pid: PolicyStats(stats_window) for pid in policy_ids}

    def record(self, steps_per_policy: dict[int, int], episodes: Iterable[EpisodeStats]) -> None:
        """One collection: its steps per policy and the episodes that ended in it."""
        for pid, steps in steps_per_policy.items():
            self.env_steps += steps
            self.policy_steps[pid] += steps
        for ep in episodes:
            self.stats[ep.policy_id].add(ep)
            self.episodes += 1

    def mean_return(self) -> float | None:
        """The population's mean of its policies' recent mean returns (policy 0's alone without one)."""
        means = [m for s in self.stats.values() if (m := s.mean_return()) is not None]
        return float(np.mean(means)) if means else None
