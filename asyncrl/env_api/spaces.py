"""What the trainer sees of an env: one agent's observation space (always a Dict), its action space, and how
many agents each env has."""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym


@dataclass(frozen=True)
class EnvSpaces:
    obs: gym.spaces.Dict  # one agent's
    action: gym.Space
    num_agents: int = 1


def obs_space_as_dict(space: gym.Space) -> gym.spaces.Dict:
    """The trainer always sees a Dict observation space; a plain space becomes {"obs": space}."""
    return space if isinstance(space, gym.spaces.Dict) else gym.spaces.Dict({"obs": space})
