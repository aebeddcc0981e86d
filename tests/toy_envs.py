"""Small environments with known optimal behaviour, for tests."""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class CueMemoryEnv(gym.Env):
    """Remember a cue across a delay longer than one rollout chunk.

    Step 0 shows one of two cues; the next ``delay`` observations are blank except for a clock-free
    "wait" flag; on the last step the observation says "answer now" and the action must name the cue:
    +1 if right, -1 if wrong. Actions on the other steps do nothing. Without memory the best mean return
    is 0; with memory it is 1.
    """

    def __init__(self, delay: int = 12):
        self.delay = delay
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(4,), dtype=np.float32)  # cue0, cue1, wait, answer
        self.action_space = gym.spaces.Discrete(2)
        self._t, self._cue = 0, 0

    def _obs(self) -> np.ndarray:
        obs = np.zeros(4, dtype=np.float32)
        if self._t == 0:
            obs[self._cue] = 1.0
        elif self._t < self.delay:
            obs[2] = 1.0
        else:
            obs[3] = 1.0
        return obs

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._t, self._cue = 0, int(self.np_random.integers(2))
        return self._obs(), {}

    def step(self, action):
        if self._t < self.delay:
            self._t += 1
            return self._obs(), 0.0, False, False, {}
        reward = 1.0 if int(action) == self._cue else -1.0
        return self._obs(), reward, True, False, {"episode_stats": {"correct": float(reward > 0)}}


def make_cue_memory(cfg, env_index: int) -> gym.Env:  # noqa: ARG001
    return CueMemoryEnv(**dict(cfg.kwargs))


class CountingEnv(gym.Env):
    """obs = [steps taken]; reward 1 per step; terminates at ``terminate_at`` steps unless a time limit of
    ``truncate_at`` steps comes first. Its value for a fake critic is easy to predict."""

    def __init__(self, terminate_at: int = 5, truncate_at: int = 1000):
        self.terminate_at, self.truncate_at = terminate_at, truncate_at
        self.observation_space = gym.spaces.Box(0, 1e6, shape=(1,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(3)
        self._t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._t = 0
        return np.array([0.0], dtype=np.float32), {}

    def step(self, action):
        self._t += 1
        obs = np.array([self._t], dtype=np.float32)
        terminated = self._t >= self.terminate_at
        truncated = self._t >= self.truncate_at
        info = {"episode_stats": {"last_action": float(action)}} if terminated or truncated else {}
        return obs, 1.0, terminated, truncated, info


def make_counting(cfg, env_index: int) -> gym.Env:  # noqa: ARG001
    return CountingEnv(**dict(cfg.kwargs))
