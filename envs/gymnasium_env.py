"""Any registered Gymnasium environment, built by id (env=CartPole-v1, env=Acrobot-v1, ...)."""

from __future__ import annotations

import gymnasium as gym


def make_env(cfg, env_index: int) -> gym.Env:
    """Build ``cfg.id`` with ``cfg.kwargs``; the trainer seeds it through ``reset(seed=...)``."""
    del env_index  # every copy is the same env; seeds differ
    return gym.make(cfg.id, **dict(cfg.kwargs))
