"""A group of environments stepped together, with autoreset and per-agent episode bookkeeping.

Every env is seen as a multi-agent env (a Gymnasium env as one of a single agent), and each agent of each
env is one *slot*: a column of the sampler's arrays. Slots of one env are consecutive.

Not ``gymnasium.vector.SyncVectorEnv``: we need each agent's final observation and final ``info`` on the
step that ends an episode (to bootstrap truncated episodes and to report env-specific stats), and none of
the per-step info merging that the vector env does on the hot path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from asyncrl.data import ObsDict
from asyncrl.env_api.multi_agent import (
    ACTIVE,
    EPISODE_RETURN,
    GAME_CONTINUES,
    RESTART_REASON,
    RESTARTED,
    MultiAgentEnv,
    as_multi_agent,
)
from asyncrl.env_api.spaces import obs_space_as_dict


@dataclass
class EndedEpisode:
    """One agent's finished episode, before the sampler stamps it with the policy that played it."""

    slot: int
    ret: float
    length: int
    extra: dict[str, float]


@dataclass
class StepResult:
    """One step of the group, per slot. ``obs`` is the next observation (a reset one where an episode ended).

    ``terminated`` is also set on the steps of an agent that only waits for its env's other agents, and on
    the last step of a dropped episode: both are masked out by ``valid`` and end any bootstrap there.
    """

    obs: ObsDict
    rewards: np.ndarray  # float32 [N]
    terminated: np.ndarray  # bool [N]
    truncated: np.ndarray  # bool [N]
    valid: np.ndarray  # bool [N]: the agent was live and the step counts
    final_obs: dict[int, ObsDict]  # slot -> final observation, for truncated episodes only
    episodes: list[EndedEpisode]
    reset_envs: list[int]  # indices (in this group) of the envs that started a new episode
    restarted: list[tuple[int, str]]  # (env index in this group, why) of episodes the env dropped


class EnvGroup:
    def __init__(self, make_env: Callable[[int], gym.Env | MultiAgentEnv], env_indices: Sequence[int],
                 seeds: Sequence[int]):
        self.envs: list[MultiAgentEnv] = [as_multi_agent(make_env(i)) for i in env_indices]
        self.num_agents = self.envs[0].num_agents
        self.obs_space = obs_space_as_dict(self.envs[0].observation_space)
        self.action_space = self.envs[0].action_space
        self._wrap = not isinstance(self.envs[0].observation_space, gym.spaces.Dict)
        n = len(self)
        self._returns = np.zeros(n, dtype=np.float64)
        self._lengths = np.zeros(n, dtype=np.int64)
        self._live = np.ones(n, dtype=bool)  # the agent's episode has not ended yet
        self._seeds = list(seeds)
        # Envs that step in the background (``step_async``/``step_wait``; a VizDoom match), found once here.
        self._background = [callable(getattr(env, "step_async", None)) for env in self.envs]

    def __len__(self) -> int:
        """Slots: agents of all envs."""
        return len(self.envs) * self.num_agents

    def slots_of(self, env: int) -> range:
        return range(env * self.num_agents, (env + 1) * self.num_agents)

    def _as_dict(self, obs) -> ObsDict:
        return {"obs": obs} if self._wrap else obs

    def _stack(self, per_slot: list[ObsDict]) -> ObsDict:
        return {k: np.stack([o[k] for o in per_slot]) for k in self.obs_space.spaces}

    def reset(self) -> ObsDict:
        # Only the first reset is seeded: later resets continue each env's own RNG stream.
        obs = []
        for env, seed in zip(self.envs, self._seeds, strict=True):
            obs.extend(self._as_dict(o) for o in env.reset(seed=seed)[0])
        return self._stack(obs)

    def step(self, actions: Sequence) -> StepResult:
        n, k = len(self), self.num_agents
        rewards = np.zeros(n, dtype=np.float32)
        terminated = np.zeros(n, dtype=bool)
        truncated = np.zeros(n, dtype=bool)
        valid = np.ones(n, dtype=bool)
        next_obs: list[ObsDict] = []
        final_obs: dict[int, ObsDict] = {}
        episodes: list[EndedEpisode] = []
        reset_envs: list[int] = []
        restarted: list[tuple[int, str]] = []
        # Envs that can step in the background (a VizDoom match: its engines run on their own threads) all
        # start first, so that one's engines run while another's results are read: one after the other, a
        # sampler's matches would each leave the others' engines idle for a whole step.
        for e, env in enumerate(self.envs):
            if self._background[e]:
                env.step_async(list(actions[e * k:(e + 1) * k]))
        for e, env in enumerate(self.envs):
            first = e * k
            if self._background[e]:
                obs, rew, term, trunc, infos = env.step_wait()
            else:
                obs, rew, term, trunc, infos = env.step(list(actions[first:first + k]))
            if any(info.get(RESTARTED) for info in infos):
                # The env replaced a broken episode with a new one: drop it, train on none of this step.
                terminated[first:first + k], valid[first:first + k] = True, False
                self._returns[first:first + k], self._lengths[first:first + k] = 0.0, 0
                self._live[first:first + k] = True
                next_obs.extend(self._as_dict(o) for o in obs)
                reset_envs.append(e)
                reason = next((i[RESTART_REASON] for i in infos if i.get(RESTART_REASON)), "the env restarted")
                restarted.append((e, str(reason)))
                continue
            for a in range(k):
                s = first + a
                if not self._live[s] or not infos[a].get(ACTIVE, True):
                    terminated[s], valid[s] = True, False  # waiting for the others: nothing to learn
                    continue
                # A step both terminal and cut is terminal: nothing to bootstrap.
                rewards[s], terminated[s], truncated[s] = rew[a], term[a], trunc[a] and not term[a]
                self._returns[s] += rew[a]
                self._lengths[s] += 1
                if term[a] or trunc[a]:
                    if truncated[s]:
                        final_obs[s] = self._as_dict(obs[a])
                    self._live[s] = False
                    if infos[a].get(GAME_CONTINUES):
                        continue  # a life, not a game: the stats go on counting through the reset
                    extra = {name: float(v) for name, v in infos[a].get("episode_stats", {}).items()}
                    ret = float(infos[a].get(EPISODE_RETURN, self._returns[s]))
                    episodes.append(EndedEpisode(s, ret, int(self._lengths[s]), extra))
                    self._returns[s], self._lengths[s] = 0.0, 0
            if not self._live[first:first + k].any():
                obs, _ = env.reset()
                self._live[first:first + k] = True
                reset_envs.append(e)
            next_obs.extend(self._as_dict(o) for o in obs)
        return StepResult(self._stack(next_obs), rewards, terminated, truncated, valid, final_obs, episodes,
                          reset_envs, restarted)

    def set_reward_shaping(self, env: int, agent: int, coeffs: dict) -> bool:
        """Push one agent's shaping coefficients (PBT); False if the env has no shaping to set."""
        setter = getattr(self.envs[env], "set_reward_shaping", None)
        if setter is None:
            return False
        try:
            setter(coeffs, agent)
        except AttributeError:  # a Gymnasium env without shaping behind the single-agent adapter
            return False
        return True

    def get_reward_shaping(self, env: int, agent: int) -> dict | None:
        getter = getattr(self.envs[env], "get_reward_shaping", None)
        return None if getter is None else getter(agent)

    def close(self) -> None:
        for env in self.envs:
            env.close()
