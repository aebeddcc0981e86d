"""Building envs from ``env.factory`` and reading their spaces (no Ray, no model here).

The config loader reads the spaces to pick an env family's defaults, the runtimes and the evaluator to
size their models: one probe, shared.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

import gymnasium as gym

from asyncrl.env_api.multi_agent import is_multi_agent
from asyncrl.env_api.spaces import EnvSpaces, obs_space_as_dict

if TYPE_CHECKING:
    from asyncrl.config.schema import EnvConfig


class EnvFactoryError(Exception):
    """``env.factory`` does not name an importable function, or the env it names cannot be built."""


def load_env_factory(env_cfg: EnvConfig) -> Callable[[int], gym.Env]:
    module_name, _, func_name = env_cfg.factory.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), func_name)
    except (ImportError, AttributeError) as e:
        raise EnvFactoryError(f"env.factory={env_cfg.factory!r} cannot be imported ({e}); "
                              f"expected 'module:function', e.g. asyncrl_envs.gymnasium_env:make_env") from e
    return partial(factory, env_cfg)


def probe_spaces(env_cfg: EnvConfig) -> EnvSpaces:
    """Build one env to read its spaces, then close it (a VizDoom env starts no engine for this)."""
    try:
        env = load_env_factory(env_cfg)(0)
    # The factory's own check of id and kwargs, or an optional dependency it needs (ale-py, mujoco).
    except (ValueError, TypeError, KeyError, ImportError, gym.error.DependencyNotInstalled) as e:
        raise EnvFactoryError(f"env {env_cfg.name!r} (factory {env_cfg.factory}) cannot be built: "
                              f"{' '.join(str(e).split())}") from e
    try:
        num_agents = env.num_agents if is_multi_agent(env) else 1
        return EnvSpaces(obs_space_as_dict(env.observation_space), env.action_space, num_agents)
    finally:
        env.close()
