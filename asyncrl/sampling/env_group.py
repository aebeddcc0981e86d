"""A group of environments stepped together, with autoreset and per-env episode bookkeeping.

Not ``gymnasium.vector.SyncVectorEnv``: we need each env's final observation and final ``info`` on the
step that ends an episode (to bootstrap truncated episodes and to report env-specific stats), and none of
the per-step info merging that the vector env does on the hot path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from asyncrl.data import EpisodeStats, ObsDict


def obs_space_as_dict(space: gym.Space) -> gym.spaces.Dict:
    """The trainer always sees a Dict observation space; a plain space becomes {"obs": space}."""
    return space if isinstance(space, gym.spaces.Dict) else gym.spaces.Dict({"obs": space})


@dataclass
class StepResult:
    """One step of the group. ``obs`` is the next observation (a reset one where an episode ended)."""

    obs: ObsDict
    rewards: np.ndarray  # float32 [N]
    terminated: np.ndarray  # bool [N]
    truncated: np.ndarray  # bool [N]
    final_obs: dict[int, ObsDict]  # env index -> final observation, for truncated episodes only
    episodes: list[tuple[int, EpisodeStats]]  # (env index, stats) of the episodes that ended


class EnvGroup:
    def __init__(self, make_env: Callable[[int], gym.Env], env_indices: Sequence[int], seeds: Sequence[int],
                 policy_id: int = 0):
        self.envs = [make_env(i) for i in env_indices]
        self.policy_id = policy_id
        self.obs_space = obs_space_as_dict(self.envs[0].observation_space)
        self._wrap = not isinstance(self.envs[0].observation_space, gym.spaces.Dict)
        self._returns = np.zeros(len(self.envs), dtype=np.float64)
        self._lengths = np.zeros(len(self.envs), dtype=np.int64)
        self._seeds = list(seeds)

    def __len__(self) -> int:
        return len(self.envs)

    def _as_dict(self, obs) -> ObsDict:
        return {"obs": obs} if self._wrap else obs

    def _stack(self, per_env: list[ObsDict]) -> ObsDict:
        return {k: np.stack([o[k] for o in per_env]) for k in self.obs_space.spaces}

    def reset(self) -> ObsDict:
        # Only the first reset is seeded: later resets continue each env's own RNG stream.
        obs = [self._as_dict(env.reset(seed=seed)[0]) for env, seed in zip(self.envs, self._seeds, strict=True)]
        return self._stack(obs)

    def step(self, actions: Sequence) -> StepResult:
        n = len(self.envs)
        rewards = np.zeros(n, dtype=np.float32)
        terminated = np.zeros(n, dtype=bool)
        truncated = np.zeros(n, dtype=bool)
        next_obs: list[ObsDict] = []
        final_obs: dict[int, ObsDict] = {}
        episodes: list[tuple[int, EpisodeStats]] = []
        for i, (env, action) in enumerate(zip(self.envs, actions, strict=True)):
            obs, reward, term, trunc, info = env.step(action)
            # A step both terminal and cut is terminal: nothing to bootstrap.
            rewards[i], terminated[i], truncated[i] = reward, term, trunc and not term
            self._returns[i] += reward
            self._lengths[i] += 1
            if term or trunc:
                if trunc and not term:
                    final_obs[i] = self._as_dict(obs)
                extra = {k: float(v) for k, v in info.get("episode_stats", {}).items()}
                episodes.append((i, EpisodeStats(self.policy_id, float(self._returns[i]),
                                                 int(self._lengths[i]), extra)))
                self._returns[i], self._lengths[i] = 0.0, 0
                obs, _ = env.reset()
            next_obs.append(self._as_dict(obs))
        return StepResult(self._stack(next_obs), rewards, terminated, truncated, final_obs, episodes)

    def close(self) -> None:
        for env in self.envs:
            env.close()
