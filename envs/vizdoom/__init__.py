"""VizDoom scenarios for asyncrl, preprocessed as Sample Factory does.

The trainer builds envs through ``env.factory: asyncrl_envs.vizdoom:make_env``; ``env.id`` names the scenario
(``scenario_names()`` lists them) and ``env.frameskip`` is the engine frameskip. Multiplayer matches
(``match_names()``) are multi-agent envs built by ``asyncrl_envs.vizdoom:make_match``.
"""

from __future__ import annotations

from typing import Any

from .env import DoomEnv
from .match import DoomMatch, MultiAgentEnv
from .scenarios import (
    MATCHES,
    SCENARIOS,
    DoomSpec,
    Head,
    MatchSpec,
    get_match_spec,
    get_spec,
    match_names,
    scenario_names,
)

__all__ = ["MATCHES", "SCENARIOS", "DoomEnv", "DoomMatch", "DoomSpec", "Head", "MatchSpec", "MultiAgentEnv",
           "get_match_spec", "get_spec", "make_env", "make_match", "match_names", "scenario_names"]

# cfg.kwargs keys make_env accepts (all optional).
KWARGS = ("width", "height", "render_resolution", "num_bots", "doom_map", "pin_core", "step_timeout",
          "engine_restart_episodes")


def make_env(cfg: Any, env_index: int) -> DoomEnv:
    """Build scenario ``cfg.id`` with frameskip ``cfg.frameskip`` and options ``cfg.kwargs``:

    width, height      size after the resize (default 128 x 72, SF's res_w x res_h)
    render_resolution  what the engine renders (default "160X120"; SF's wide_aspect_ratio is "256X144")
    num_bots           bots in doom_deathmatch and doom_duel_bots (default the spec's: 7 and 1)
    doom_map           e.g. "map02" (default the .cfg's map)
    pin_core           pin this process and its engines to this core (int), or None (default): no pinning
    step_timeout       seconds a step may block before the engine counts as hung, is killed and replaced
                       (default 10); a dead or hung engine's episode is dropped, a new one starts
    engine_restart_episodes  a healthy engine is replaced between episodes after this many (default 2000;
                       0: never): the engine keeps ~0.3 kB per episode, which adds up over a week

    The engine starts on the first ``reset``; the trainer seeds it through ``reset(seed=...)``.
    """
    del env_index  # every copy is the same scenario; seeds differ
    kwargs = dict(cfg.kwargs or {})
    unknown = sorted(set(kwargs) - set(KWARGS))
    if unknown:
        raise ValueError(f"env.kwargs has unknown keys {unknown} for asyncrl_envs.vizdoom; valid keys: {', '.join(KWARGS)}")
    return DoomEnv(get_spec(cfg.id), frameskip=cfg.frameskip, **kwargs)


# cfg.kwargs keys make_match accepts (all optional).
MATCH_KWARGS = ("num_agents", "num_bots", "timelimit_minutes", "respawn_delay", "port_range", "step_timeout",
                "init_timeout", "connect_timeout", "width", "height", "render_resolution", "doom_map")


def make_match(cfg: Any, env_index: int) -> DoomMatch:
    """Build match ``cfg.id`` (e.g. ``doom_duel``) with frameskip ``cfg.frameskip`` and options ``cfg.kwargs``:

    num_agents, num_bots   agents (one engine each; default the spec's) and built-in bots added on every reset
    timelimit_minutes      the engine's ``+timelimit``, which ends each episode (default the spec's 4.0)
    respawn_delay          seconds before a dead player respawns (default the spec's 2)
    port_range             (low, high) UDP ports to lease the host's from (default ports.DEFAULT_RANGE)
    step_timeout           seconds a step may take before the match counts as hung and restarts (default 5)
    init_timeout           the same while engines start (default 30)
    connect_timeout        the engines' +viz_connect_timeout in seconds (default 10)
    width, height, render_resolution, doom_map   as make_env

    A multi-agent env (``MultiAgentEnv``): per-agent lists from reset/step. Engines start on the first reset.
    """
    del env_index  # every copy is the same match; ports are leased, seeds come through reset(seed=...)
    kwargs = dict(cfg.kwargs or {})
    unknown = sorted(set(kwargs) - set(MATCH_KWARGS))
    if unknown:
        raise ValueError(f"env.kwargs has unknown keys {unknown} for asyncrl_envs.vizdoom:make_match; "
                         f"valid keys: {', '.join(MATCH_KWARGS)}")
    if "port_range" in kwargs:
        kwargs["port_range"] = tuple(kwargs["port_range"])
    return DoomMatch(get_match_spec(cfg.id), frameskip=cfg.frameskip, **kwargs)
