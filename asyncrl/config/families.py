"""Env families: which defaults an env gets, read from its spaces (a pure function, no env built here).

One set of hyperparameters does not fit every env: Sample Factory's VizDoom settings (lr 1e-4, one epoch of
one minibatch, an entropy bonus) leave Acrobot at -500 and Pendulum where random actions score, and a 64x64
tanh MLP with PPO's epochs is the wrong network for pixels. So ``family=auto`` (the default) picks the
defaults of ``conf/family/<family>.yaml`` from the observation and action spaces; the env's own config, a
recipe and the command line override them, in that order.

Some env configs pin their family instead (``defaults: [override /family: atari]`` in conf/env/atari.yaml):
Atari frames take PPO's Atari settings, not the VizDoom ones the ``image`` family holds.
"""

from __future__ import annotations

from gymnasium import spaces


def _has_box(space: spaces.Space) -> bool:
    if isinstance(space, spaces.Box):
        return True
    if isinstance(space, spaces.Tuple):
        return any(_has_box(s) for s in space.spaces)
    if isinstance(space, spaces.Dict):
        return any(_has_box(s) for s in space.spaces.values())
    return False


def _short(space: spaces.Space) -> str:
    if isinstance(space, spaces.Box):
        return f"Box{tuple(space.shape)} {space.dtype}"
    return str(space)


def family_of(obs: spaces.Dict, action: spaces.Space) -> str:
    """``image`` when any observation key is a 3-d Box (a frame, CHW), else ``vector_continuous`` when any
    action component is a Box, else ``vector_discrete``."""
    if any(isinstance(s, spaces.Box) and len(s.shape) == 3 for s in obs.spaces.values()):
        return "image"
    return "vector_continuous" if _has_box(action) else "vector_discrete"


def describe_spaces(obs: spaces.Dict, action: spaces.Space) -> str:
    """One clause for the start line: ``observations obs=Box(4,) float32, actions Discrete(2)``."""
    keys = ", ".join(f"{k}={_short(s)}" for k, s in obs.spaces.items())
    return f"observations {keys}, actions {_short(action)}"
