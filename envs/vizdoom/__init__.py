"""VizDoom scenarios for asyncrl, preprocessed as Sample Factory does.

The trainer builds envs through ``env.factory: envs.vizdoom:make_env``; ``env.id`` names the scenario
(``scenario_names()`` lists them) and ``env.frameskip`` is the engine frameskip.
"""

from __future__ import annotations

from typing import Any

from envs.vizdoom.env import DoomEnv
from envs.vizdoom.scenarios import SCENARIOS, DoomSpec, Head, get_spec, scenario_names

__all__ = ["SCENARIOS", "DoomEnv", "DoomSpec", "Head", "get_spec", "make_env", "scenario_names"]

# cfg.kwargs keys make_env accepts (all optional).
KWARGS = ("width", "height", "render_resolution", "num_bots", "doom_map", "pin_core")


def make_env(cfg: Any, env_index: int) -> DoomEnv:
    """Build scenario ``cfg.id`` with frameskip ``cfg.frameskip`` and options ``cfg.kwargs``:

    width, height      size after the resize (default 128 x 72, SF's res_w x res_h)
    render_resolution  what the engine renders (default "160X120"; SF's wide_aspect_ratio is "256X144")
    num_bots           bots in doom_deathmatch (default the spec's 7)
    doom_map           e.g. "map02" (default the .cfg's map)
    pin_core           pin this process and its engines to this core (int), or None (default): no pinning

    The engine starts on the first ``reset``; the trainer seeds it through ``reset(seed=...)``.
    """
    del env_index  # every copy is the same scenario; seeds differ
    kwargs = dict(cfg.kwargs or {})
    unknown = sorted(set(kwargs) - set(KWARGS))
    if unknown:
        raise ValueError(f"env.kwargs has unknown keys {unknown} for envs.vizdoom; valid keys: {', '.join(KWARGS)}")
    return DoomEnv(get_spec(cfg.id), frameskip=cfg.frameskip, **kwargs)
