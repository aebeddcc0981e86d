"""The multi-agent env interface the sampler steps, and the adapter that makes a Gymnasium env one.

A multi-agent env has ``num_agents`` agents with identical per-agent spaces, and returns per-agent lists:

    reset(seed) -> (obs[], infos[])
    step(actions[]) -> (obs[], rewards[], terminated[], truncated[], infos[])

Rules the sampler relies on (Sample Factory's ``MultiAgentEnv`` has the first one too):

- The env is reset by the caller once every agent's episode has ended.
- An agent whose episode ended before the others' waits: on every later step of that episode the env
  reports ``infos[i]["active"] = False`` (its observation, reward and flags are then ignored).
- A step whose infos carry ``"episode_restarted": True`` (a crashed simulator was replaced) has already
  started a new episode: its observations are the new episode's first. The broken episode is dropped:
  no stats, and its last step is not trained on. ``infos[0]["restart_reason"]`` may say what happened; it
  reaches the run's log.
- ``infos[i]["episode_stats"]`` on an agent's last step holds numeric stats of its episode (frags, ...).
- ``infos[i]["game_continues"] = True`` on a terminal step ends the episode for learning only (Atari's lost
  life): the episode's stats carry on, and the caller's reset continues the same game.
- ``infos[i]["episode_return"]`` on the last step of an episode is the return its stats record, in place of
  the sum of the rewards trained on (Atari's unclipped score).

An env that steps in the background may also offer ``step_async(actions[])`` (start the step, return at once)
and ``step_wait()`` (its result, as ``step`` returns it): the sampler then starts all such envs of a group
before it reads any, so their simulators run at the same time.
"""

from __future__ import annotations

from typing import Any, Protocol

import gymnasium as gym

ACTIVE = "active"
RESTARTED = "episode_restarted"
RESTART_REASON = "restart_reason"
GAME_CONTINUES = "game_continues"
EPISODE_RETURN = "episode_return"


class MultiAgentEnv(Protocol):
    num_agents: int
    observation_space: gym.Space
    action_space: gym.Space

    def reset(self, seed: int | None = None) -> tuple[list[Any], list[dict]]: ...

    def step(self, actions: list[Any]) -> tuple[list[Any], list[float], list[bool], list[bool], list[dict]]: ...

    def close(self) -> None: ...


def is_multi_agent(env: Any) -> bool:
    """Multi-agent envs say how many agents they have; a Gymnasium env does not."""
    return isinstance(getattr(env, "num_agents", None), int) and not isinstance(env, gym.Env)


class SingleAgent:
    """A Gymnasium env seen as a multi-agent env of one agent, so the sampler has one code path."""

    num_agents = 1

    def __init__(self, env: gym.Env):
        self.env = env
        self.observation_space, self.action_space = env.observation_space, env.action_space

    def reset(self, seed: int | None = None) -> tuple[list[Any], list[dict]]:
        obs, info = self.env.reset(seed=seed)
        return [obs], [info]

    def step(self, actions: list[Any]) -> tuple[list[Any], list[float], list[bool], list[bool], list[dict]]:
        obs, reward, terminated, truncated, info = self.env.step(actions[0])
        return [obs], [float(reward)], [bool(terminated)], [bool(truncated)], [info]

    def set_reward_shaping(self, coeffs: dict, agent: int) -> None:  # noqa: ARG002
        self.env.unwrapped.set_reward_shaping(coeffs)

    def get_reward_shaping(self, agent: int) -> dict | None:  # noqa: ARG002
        getter = getattr(self.env.unwrapped, "get_reward_shaping", None)
        return None if getter is None else getter()

    def close(self) -> None:
        self.env.close()


def as_multi_agent(env: Any) -> MultiAgentEnv:
    return env if is_multi_agent(env) else SingleAgent(env)
