"""The sampler: steps a vector of envs in two alternating groups and cuts time-major trajectories.

While group A's observations are at inference, group B steps its envs with the actions it already has
(double buffering). With remote inference the two overlap in time; with local inference they run one
after the other and the split costs nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np

from asyncrl.data import EpisodeStats, ObsDict, PolicyOutput, Trajectory
from asyncrl.inference.client import InferenceClient
from asyncrl.models.distributions import ActionSpec
from asyncrl.sampling.env_group import EnvGroup

log = logging.getLogger(__name__)


@dataclass
class CollectMeta:
    """The small part of a collection that the driver reads; trajectories travel by reference."""

    sampler_index: int
    steps_per_policy: dict[int, int]
    episodes: list[EpisodeStats] = field(default_factory=list)


class _Buffers:
    """Preallocated arrays for one chunk of all the sampler's envs; handed out whole at its end."""

    def __init__(self, obs_space: gym.spaces.Dict, spec: ActionSpec, rollout: int, n: int, state_size: int):
        t = rollout
        self.obs = {k: np.zeros((t + 1, n, *s.shape), dtype=s.dtype) for k, s in obs_space.spaces.items()}
        self.actions = np.zeros((t, n, spec.action_dim), dtype=spec.dtype)
        self.rewards = np.zeros((t, n), dtype=np.float32)
        self.terminated = np.zeros((t, n), dtype=bool)
        self.truncated = np.zeros((t, n), dtype=bool)
        self.final_values = np.zeros((t, n), dtype=np.float32)
        self.logp = np.zeros((t, n), dtype=np.float32)
        self.values = np.zeros((t, n), dtype=np.float32)
        self.versions = np.zeros((t, n), dtype=np.int64)
        self.rnn_state = np.zeros((n, state_size), dtype=np.float32) if state_size else None


class _Group:
    """One half of the sampler's envs, the columns it fills in the chunk, and its request in flight."""

    def __init__(self, envs: EnvGroup, cols: slice, state_size: int):
        self.envs, self.cols = envs, cols
        self.obs: ObsDict = envs.reset()
        self.state = np.zeros((len(envs), state_size), dtype=np.float32) if state_size else None
        self.pending = None  # the inference handle for self.obs


class Sampler:
    """``num_envs`` envs in two groups; ``collect()`` returns one chunk of ``rollout`` steps for each."""

    def __init__(self, make_env: Callable[[int], gym.Env], num_envs: int, rollout: int, client: InferenceClient,
                 state_size: int, sampler_index: int = 0, seed: int = 0, policy_id: int = 0):
        self.client, self.rollout, self.index, self.policy_id = client, rollout, sampler_index, policy_id
        first = sampler_index * num_envs
        halves = [range(first, first + (num_envs + 1) // 2), range(first + (num_envs + 1) // 2, first + num_envs)]
        self.groups: list[_Group] = []
        for env_ids in (h for h in halves if len(h)):
            seeds = [seed * 1_000_003 + i for i in env_ids]
            envs = EnvGroup(make_env, env_ids, seeds, policy_id)
            cols = slice(env_ids.start - first, env_ids.stop - first)
            self.groups.append(_Group(envs, cols, state_size))
        self.action_spec = ActionSpec.from_space(self.groups[0].envs.envs[0].action_space)
        self.num_envs, self.state_size = num_envs, state_size
        # Both groups write their columns of one chunk, so the chunk leaves without a concatenation copy.
        self.buf = self._new_buffers()
        self.episodes: list[EpisodeStats] = []
        for g in self.groups:
            g.pending = self.client.submit(policy_id, g.obs, g.state)

    @property
    def obs_space(self) -> gym.spaces.Dict:
        return self.groups[0].envs.obs_space

    def _new_buffers(self) -> _Buffers:
        buf = _Buffers(self.obs_space, self.action_spec, self.rollout, self.num_envs, self.state_size)
        if buf.rnn_state is not None:
            for g in self.groups:
                buf.rnn_state[g.cols] = g.state
        return buf

    def collect(self) -> tuple[list[Trajectory], CollectMeta]:
        for t in range(self.rollout):
            for g in self.groups:
                self._step_group(g, t)
        b = self.buf
        for g in self.groups:
            for k, v in g.obs.items():
                b.obs[k][self.rollout, g.cols] = v
        traj = Trajectory(self.policy_id, b.obs, b.actions, b.rewards, b.terminated, b.truncated, b.final_values,
                          b.logp, b.values, b.versions, b.rnn_state, self.episodes)
        self.buf, self.episodes = self._new_buffers(), []
        # One trajectory per policy: the learner takes whole chunks.
        return [traj], CollectMeta(self.index, {self.policy_id: traj.num_steps}, traj.episodes)

    def _step_group(self, g: _Group, t: int) -> None:
        out: PolicyOutput = self.client.result(g.pending)
        b, c = self.buf, g.cols
        for k, v in g.obs.items():
            b.obs[k][t, c] = v
        b.actions[t, c] = out.actions
        b.logp[t, c] = out.logp
        b.values[t, c] = out.values
        b.versions[t, c] = out.version
        res = g.envs.step(self.action_spec.to_env_batch(out.actions))
        b.rewards[t, c] = res.rewards
        b.terminated[t, c] = res.terminated
        b.truncated[t, c] = res.truncated
        state = out.rnn_state
        if res.final_obs:
            b.final_values[t, c] = self._final_values(res.final_obs, state, len(g.envs))
        if state is not None:
            state = state.copy() if not state.flags.writeable else state
            state[res.terminated | res.truncated] = 0.0  # a new episode starts from a blank memory
        g.state = state
        self.episodes.extend(e for _, e in res.episodes)
        g.obs = res.obs
        g.pending = self.client.submit(self.policy_id, g.obs, g.state)

    def _final_values(self, final_obs: dict[int, ObsDict], state: np.ndarray | None, n: int) -> np.ndarray:
        """V(final observation) of truncated episodes, with the memory the agent had at that point.

        Truncation is rare (once per episode at most), so a synchronous extra inference call is cheap.
        """
        idx = sorted(final_obs)
        obs = {k: np.stack([final_obs[i][k] for i in idx]) for k in final_obs[idx[0]]}
        sub_state = None if state is None else state[idx]
        out = self.client.result(self.client.submit(self.policy_id, obs, sub_state))
        values = np.zeros(n, dtype=np.float32)
        values[idx] = out.values
        return values

    def close(self) -> None:
        for g in self.groups:
            g.envs.close()
