"""Small environments with known optimal behaviour, for tests."""

from __future__ import annotations

import os

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


class CardDuel:
    """A two-player zero-sum card game as a PettingZoo parallel env (no PettingZoo import needed here).

    Each of ``rounds`` rounds deals each player a card 0..4 that only it sees (one-hot, plus the round
    clock), and each player folds (0) or bets (1). Both bet: the higher card wins 2 (a tie pays 0). One bets:
    it wins 1. Both fold: 0. Against a uniformly random opponent betting is best with every card and earns
    0.5 a round on average (random play earns 0); against an always-betting one, folding the 0 card is best.
    """

    metadata = {"name": "card_duel"}

    def __init__(self, rounds: int = 10):
        self.rounds = rounds
        self.possible_agents = ["p0", "p1"]
        self.agents: list[str] = []
        self._obs_space = gym.spaces.Box(0.0, 1.0, shape=(6,), dtype=np.float32)
        self._act_space = gym.spaces.Discrete(2)
        self._rng = np.random.default_rng()
        self._t, self._cards = 0, np.zeros(2, dtype=np.int64)

    def observation_space(self, agent):  # noqa: ARG002
        return self._obs_space

    def action_space(self, agent):  # noqa: ARG002
        return self._act_space

    def _deal(self) -> dict:
        self._cards = self._rng.integers(0, 5, size=2)
        obs = {}
        for i, a in enumerate(self.possible_agents):
            o = np.zeros(6, dtype=np.float32)
            o[self._cards[i]] = 1.0
            o[5] = self._t / self.rounds
            obs[a] = o
        return obs

    def reset(self, seed=None, options=None):  # noqa: ARG002
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.agents, self._t = list(self.possible_agents), 0
        return self._deal(), {a: {} for a in self.agents}

    def step(self, actions: dict):
        r0 = card_duel_payoff(int(self._cards[0]), int(self._cards[1]), int(actions["p0"]), int(actions["p1"]))
        self._t += 1
        done = self._t >= self.rounds
        obs = self._deal()
        rewards = {"p0": r0, "p1": -r0}
        terms = dict.fromkeys(self.agents, done)
        truncs = dict.fromkeys(self.agents, False)
        infos = {a: {} for a in self.agents}
        if done:
            self.agents = []
        return obs, rewards, terms, truncs, infos

    def close(self) -> None:
        pass


def card_duel_payoff(card0: int, card1: int, act0: int, act1: int) -> float:
    """Player 0's reward of one round."""
    if act0 and act1:
        return 2.0 * float(np.sign(card0 - card1))
    if act0 != act1:
        return 1.0 if act0 else -1.0
    return 0.0


def card_duel_parallel_env(rounds: int = 10) -> CardDuel:
    return CardDuel(rounds)


def make_counting_that_fails_once(cfg, env_index: int) -> gym.Env:  # noqa: ARG001
    """CountingEnv, except that building it fails once while the file ``kwargs.trigger`` exists (the file is
    removed as it fails): a process whose restart fails in its constructor."""
    kwargs = dict(cfg.kwargs)
    trigger = kwargs.pop("trigger")
    try:
        os.remove(trigger)
    except FileNotFoundError:
        return CountingEnv(**kwargs)
    raise RuntimeError(f"{trigger} said this start fails")
