"""PettingZoo parallel envs as asyncrl multi-agent envs, so any of them trains with self-play.

``env.factory: asyncrl_envs.pettingzoo_env:make_env`` with ``env.id: "module:function"`` naming a function that
returns a ``pettingzoo.ParallelEnv`` (for example ``pettingzoo.mpe.simple_tag_v3:parallel_env``, whose
keyword arguments come from ``env.kwargs``). Every agent must have the same observation and action spaces.
"""

from __future__ import annotations

import importlib
from typing import Any

from asyncrl.env_api.multi_agent import ACTIVE


class PettingZooAdapter:
    """Per-agent lists in ``possible_agents`` order. An agent that PettingZoo removed before the others is
    reported inactive (``info["active"] = False``) until the episode ends for everyone."""

    def __init__(self, env):
        self.env = env
        self.agents = list(env.possible_agents)
        self.num_agents = len(self.agents)
        self.observation_space = env.observation_space(self.agents[0])
        self.action_space = env.action_space(self.agents[0])
        for agent in self.agents[1:]:
            if env.observation_space(agent) != self.observation_space or env.action_space(agent) != self.action_space:
                raise ValueError(f"PettingZoo env {type(env).__name__}: agent {agent!r} has other spaces than "
                                 f"{self.agents[0]!r}; asyncrl needs one observation and action space for all")
        self._last_obs: dict[str, Any] = {}

    def reset(self, seed: int | None = None) -> tuple[list[Any], list[dict]]:
        obs, infos = self.env.reset(seed=seed)
        self._last_obs = dict(obs)
        return [obs[a] for a in self.agents], [dict(infos.get(a, {})) for a in self.agents]

    def step(self, actions: list[Any]) -> tuple[list[Any], list[float], list[bool], list[bool], list[dict]]:
        live = set(self.env.agents)
        obs, rewards, terms, truncs, infos = self.env.step(
            {a: act for a, act in zip(self.agents, actions, strict=True) if a in live})
        self._last_obs.update(obs)
        out_infos = []
        for a in self.agents:
            info = dict(infos.get(a, {}))
            if a not in live:
                info[ACTIVE] = False
            out_infos.append(info)
        return ([self._last_obs[a] for a in self.agents], [float(rewards.get(a, 0.0)) for a in self.agents],
                [bool(terms.get(a, False)) for a in self.agents], [bool(truncs.get(a, False)) for a in self.agents],
                out_infos)

    def close(self) -> None:
        self.env.close()


def make_env(cfg: Any, env_index: int) -> PettingZooAdapter:
    del env_index
    module_name, _, func_name = cfg.id.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), func_name)
    except (ImportError, AttributeError, ValueError) as e:
        raise ValueError(f"env.id={cfg.id!r} does not name a PettingZoo env function ({e}); expected "
                         f"'module:function', e.g. pettingzoo.mpe.simple_tag_v3:parallel_env") from e
    return PettingZooAdapter(factory(**dict(cfg.kwargs or {})))
