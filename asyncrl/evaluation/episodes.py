"""Play whole episodes with one policy in one env: seeded, greedy or sampled, the RNN state carried.

Single-agent: one env, one policy. Multi-agent envs would need one row (and one state, one video) per
agent; that is not supported yet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch

from asyncrl.env_api.spaces import obs_space_as_dict
from asyncrl.models.actor_critic import ActorCritic

FrameHook = Callable[[dict[str, np.ndarray]], None]  # called with each observation the agent sees


@dataclass
class Episode:
    ret: float
    length: int
    seed: int
    cut: bool  # stopped by max_steps before the env ended it
    stats: dict[str, float] = field(default_factory=dict)  # numeric info["episode_stats"] of the last step


def numeric_stats(info: dict) -> dict[str, float]:
    """The numbers in ``info["episode_stats"]`` (booleans as 0 or 1; strings and arrays are left out)."""
    stats = info.get("episode_stats") or {}
    return {k: float(v) for k, v in stats.items() if isinstance(v, int | float | np.number | np.bool_)}


def play_episode(model: ActorCritic, env: gym.Env, seed: int, greedy: bool, max_steps: int,
                 on_obs: FrameHook | None = None) -> Episode:
    """One episode from ``env.reset(seed=seed)``; the core's state starts at zeros."""
    wrap = not isinstance(env.observation_space, gym.spaces.Dict)
    keys = list(obs_space_as_dict(env.observation_space).spaces)
    spec = model.action_spec
    raw, info = env.reset(seed=seed)
    state = model.initial_state(1)
    ret, length = 0.0, 0
    while True:
        obs = {"obs": raw} if wrap else raw
        if on_obs is not None:
            on_obs(obs)
        if length >= max_steps:
            return Episode(ret, length, seed, cut=True)
        batch = {k: torch.as_tensor(np.asarray(obs[k])[None]) for k in keys}
        actions, _, _, state = model.act(batch, state, deterministic=greedy)
        raw, reward, terminated, truncated, info = env.step(spec.to_env(actions[0].numpy()))
        ret += float(reward)
        length += 1
        if terminated or truncated:
            if on_obs is not None:
                on_obs({"obs": raw} if wrap else raw)
            return Episode(ret, length, seed, cut=False, stats=numeric_stats(info))


def play(model: ActorCritic, env: gym.Env, episodes: int, seed: int, greedy: bool, max_steps: int,
         on_obs: FrameHook | None = None) -> list[Episode]:
    """Episode ``i`` starts from ``reset(seed=seed + i)``, and sampled actions draw from torch's RNG
    seeded with ``seed + i`` too (the caller's RNG state is restored after): in a deterministic env an
    episode depends on its seed alone, not on the episodes before it."""
    out = []
    with torch.random.fork_rng(devices=[]):
        for i in range(episodes):
            torch.manual_seed(seed + i)
            out.append(play_episode(model, env, seed + i, greedy, max_steps, on_obs))
    return out
