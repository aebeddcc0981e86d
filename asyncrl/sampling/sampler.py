"""The sampler: steps a vector of envs in one group or two alternating ones and cuts time-major trajectories.

While group A's observations are at inference, group B steps its envs with the actions it already has
(double buffering). With remote inference the two overlap in time; with local inference they run one
after the other and the split costs nothing.

Each column of a chunk is one agent slot (an agent of an env). A ``PolicyMapping`` says which policy plays
each slot; a group's observations go to inference as one request per policy, and at the end of a chunk
each policy gets the columns it played, with a ``valid`` mask when it did not play all of their steps.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np

from asyncrl.data import EpisodeStats, ObsDict, PolicyOutput, Trajectory
from asyncrl.inference.client import InferenceClient
from asyncrl.models.distributions import ActionSpec
from asyncrl.sampling.env_group import EnvGroup
from asyncrl.sampling.policy_mapping import PolicyMapping, is_opponent
from asyncrl.timing import Stopwatch

log = logging.getLogger(__name__)


@dataclass
class CollectMeta:
    """The small part of a collection that the driver reads; trajectories travel by reference."""

    sampler_index: int
    steps_per_policy: dict[int, int]
    episodes: list[EpisodeStats] = field(default_factory=list)
    # Seconds since the previous collect: env (stepping, resets), inference (a local forward pass, or
    # waiting for remote actions), other (the sampler's own bookkeeping), idle (no collect asked for).
    timing: dict[str, float] = field(default_factory=dict)
    # Episodes an env dropped since the previous collect because its simulator failed: "env 3: why".
    env_restarts: list[str] = field(default_factory=list)
    # The OS process that collected it: a new one tells the driver that the sampler was restarted, even
    # when it died with no call in flight to fail (idle under backpressure, or between two calls).
    process_id: int = field(default_factory=os.getpid)


class _Buffers:
    """Preallocated arrays for one chunk of all the sampler's slots; handed out whole at its end."""

    def __init__(self, obs_space: gym.spaces.Dict, spec: ActionSpec, rollout: int, n: int, state_size: int):
        t = rollout
        self.obs = {k: np.zeros((t + 1, n, *s.shape), dtype=s.dtype) for k, s in obs_space.spaces.items()}
        self.actions = np.zeros((t, n, spec.action_dim), dtype=spec.dtype)
        self.rewards = np.zeros((t, n), dtype=np.float32)
        self.terminated = np.zeros((t, n), dtype=bool)
        self.truncated = np.zeros((t, n), dtype=bool)
        self.valid = np.zeros((t, n), dtype=bool)
        self.owner = np.zeros((t, n), dtype=np.int64)  # the policy that played each step
        self.final_values = np.zeros((t, n), dtype=np.float32)
        self.logp = np.zeros((t, n), dtype=np.float32)
        self.values = np.zeros((t, n), dtype=np.float32)
        self.versions = np.zeros((t, n), dtype=np.int64)
        self.rnn_state = np.zeros((n, state_size), dtype=np.float32) if state_size else None


@dataclass
class _Request:
    """One policy's part of a group's inference: which of the group's slots (None: all) and the handle."""

    policy_id: int
    slots: np.ndarray | None
    handle: object


class _Group:
    """One half of the sampler's envs, the columns (slots) it fills in the chunk, and its requests in flight."""

    def __init__(self, envs: EnvGroup, first_env: int, state_size: int):
        self.envs, self.first_env = envs, first_env
        self.cols = slice(first_env * envs.num_agents, first_env * envs.num_agents + len(envs))
        self.obs: ObsDict = envs.reset()
        self.state = np.zeros((len(envs), state_size), dtype=np.float32) if state_size else None
        self.pending: list[_Request] = []


class Sampler:
    """``num_envs`` envs in ``num_groups`` (1 or 2) groups; ``collect()`` returns one chunk of ``rollout`` steps
    of every slot. Two groups overlap env stepping with remote inference; with inference in the sampler's own
    process nothing overlaps, and one group gives the policy batches twice as large."""

    def __init__(self, make_env: Callable[[int], gym.Env], num_envs: int, rollout: int, client: InferenceClient,
                 state_size: int, sampler_index: int = 0, seed: int = 0, population_size: int = 1,
                 resample_every: int = 1, mix_in_one_env: bool = True, opponent_rate: float = 0.0,
                 num_groups: int = 2, bootstrap_truncated: bool = True, draw_per: str = "env"):
        """``bootstrap_truncated`` False: time-outs are trained on as terminal (``algo.bootstrap_truncated``), so
        the value of a cut episode's last observation is not asked for."""
        if num_groups not in (1, 2):
            raise ValueError(f"num_groups={num_groups}: expected 1 or 2")
        self.client, self.rollout, self.index = client, rollout, sampler_index
        self.bootstrap_truncated = bootstrap_truncated
        first = sampler_index * num_envs
        half = (num_envs + 1) // 2 if num_groups == 2 else num_envs
        self.groups: list[_Group] = []
        for lo, hi in ((0, half), (half, num_envs)):
            if hi > lo:
                env_ids = range(first + lo, first + hi)
                envs = EnvGroup(make_env, env_ids, [seed * 1_000_003 + i for i in env_ids])
                self.groups.append(_Group(envs, lo, state_size))
        self.num_agents = self.groups[0].envs.num_agents
        self.num_envs = num_envs
        self.num_slots = num_envs * self.num_agents
        self.action_spec = ActionSpec.from_space(self.groups[0].envs.action_space)
        self.state_size = state_size
        self.mapping = PolicyMapping(num_envs, self.num_agents, population_size, first, resample_every,
                                     mix_in_one_env, opponent_rate, seed=seed * 7919 + sampler_index,
                                     draw_per=draw_per)
        self.shaping: dict[int, dict] = {}  # policy -> reward-shaping coefficients pushed by PBT
        # Both groups write their columns of one chunk, so the chunk leaves without a concatenation copy.
        self.buf = self._new_buffers()
        self.episodes: list[EpisodeStats] = []
        self.env_restarts: list[str] = []
        self.watch = Stopwatch()
        self._last_collect_end: float | None = None
        # The first requests go out with the first collect, not here: weights are delivered to a sampler after
        # it is built (and again after Ray restarts it), so at construction there may be no policy to ask.
        self._started = False

    @property
    def obs_space(self) -> gym.spaces.Dict:
        return self.groups[0].envs.obs_space

    def _new_buffers(self) -> _Buffers:
        buf = _Buffers(self.obs_space, self.action_spec, self.rollout, self.num_slots, self.state_size)
        if buf.rnn_state is not None:
            for g in self.groups:
                buf.rnn_state[g.cols] = g.state
        return buf

    def collect(self) -> tuple[list[Trajectory], CollectMeta]:
        start = time.perf_counter()
        if self._last_collect_end is not None:
            self.watch.add("idle", start - self._last_collect_end)
        if not self._started:
            for g in self.groups:
                self._submit(g)
            self._started = True
        for t in range(self.rollout):
            for g in self.groups:
                self._step_group(g, t)
        b = self.buf
        for g in self.groups:
            for k, v in g.obs.items():
                b.obs[k][self.rollout, g.cols] = v
        trajectories = self._split_by_policy(b, self.episodes)
        self.buf, self.episodes = self._new_buffers(), []
        steps = {t.policy_id: t.num_steps for t in trajectories}
        episodes = [e for t in trajectories for e in t.episodes]
        self._last_collect_end = end = time.perf_counter()
        timing = self.watch.take()
        timing["other"] = max(0.0, end - start - timing.get("env", 0.0) - timing.get("inference", 0.0))
        restarts, self.env_restarts = self.env_restarts, []
        return trajectories, CollectMeta(self.index, steps, episodes, timing, restarts)

    def _split_by_policy(self, b: _Buffers, episodes: list[EpisodeStats]) -> list[Trajectory]:
        """One trajectory per population policy that played in this chunk: the columns it played (a copy
        unless it played them all), masked to its own live steps. Snapshot opponents are never trained."""
        out = []
        for pid in np.unique(b.owner):
            if is_opponent(int(pid)):
                continue
            mine = (b.owner == pid) & b.valid
            cols = np.flatnonzero(mine.any(axis=0))
            if len(cols) == 0:
                continue
            take = slice(None) if len(cols) == self.num_slots else cols
            valid = mine[:, take]
            out.append(Trajectory(
                int(pid), {k: v[:, take] for k, v in b.obs.items()}, b.actions[:, take], b.rewards[:, take],
                b.terminated[:, take], b.truncated[:, take], b.final_values[:, take], b.logp[:, take],
                b.values[:, take], b.versions[:, take], None if b.rnn_state is None else b.rnn_state[take],
                [e for e in episodes if e.policy_id == pid], None if valid.all() else valid))
        return out

    # -- inference --------------------------------------------------------------------------------------------

    def _submit(self, g: _Group) -> None:
        pids = self.mapping.policy_of[g.cols]
        policies = np.unique(pids)
        if len(policies) == 1:  # the common case: no gather, no scatter
            g.pending = [_Request(int(policies[0]), None, self.client.submit(int(policies[0]), g.obs, g.state))]
            return
        g.pending = []
        for pid in policies:
            idx = np.flatnonzero(pids == pid)
            obs = {k: v[idx] for k, v in g.obs.items()}
            state = None if g.state is None else g.state[idx]
            g.pending.append(_Request(int(pid), idx, self.client.submit(int(pid), obs, state)))

    def _results(self, g: _Group) -> tuple[PolicyOutput, np.ndarray | int]:
        """The group's inference results merged back into slot order, and the versions that produced them."""
        if len(g.pending) == 1 and g.pending[0].slots is None:
            out = self.client.result(g.pending[0].handle)
            return out, out.version
        n = len(g.envs)
        actions = np.zeros((n, self.action_spec.action_dim), dtype=self.action_spec.dtype)
        logp, values = np.zeros(n, dtype=np.float32), np.zeros(n, dtype=np.float32)
        versions = np.zeros(n, dtype=np.int64)
        state = None if g.state is None else np.zeros_like(g.state)
        for req in g.pending:
            out = self.client.result(req.handle)
            actions[req.slots], logp[req.slots], values[req.slots] = out.actions, out.logp, out.values
            versions[req.slots] = out.version
            if state is not None:
                state[req.slots] = out.rnn_state
        return PolicyOutput(actions, logp, values, state, -1), versions

    # -- stepping ---------------------------------------------------------------------------------------------

    def _step_group(self, g: _Group, t: int) -> None:
        with self.watch("inference"):
            out, versions = self._results(g)
        b, c = self.buf, g.cols
        for k, v in g.obs.items():
            b.obs[k][t, c] = v
        b.actions[t, c] = out.actions
        b.logp[t, c] = out.logp
        b.values[t, c] = out.values
        b.versions[t, c] = versions
        b.owner[t, c] = self.mapping.policy_of[c]
        with self.watch("env"):
            res = g.envs.step(self.action_spec.to_env_batch(out.actions))
        b.rewards[t, c] = res.rewards
        b.terminated[t, c] = res.terminated
        b.truncated[t, c] = res.truncated
        b.valid[t, c] = res.valid
        state = out.rnn_state
        if res.final_obs and self.bootstrap_truncated:
            b.final_values[t, c] = self._final_values(g, res.final_obs, state)
        if state is not None:
            state = state.copy() if not state.flags.writeable else state
            state[res.terminated | res.truncated] = 0.0  # a new episode starts from a blank memory
        g.state = state
        owners = b.owner[t, c]
        self.episodes.extend(EpisodeStats(int(owners[e.slot]), e.ret, e.length, e.extra) for e in res.episodes
                             if not is_opponent(int(owners[e.slot])))
        self.env_restarts.extend(f"env {self.index * self.num_envs + g.first_env + env}: {why}"
                                 for env, why in res.restarted)
        for env in res.reset_envs:
            if self.mapping.episode_ended(g.first_env + env):
                self._apply_shaping(g, env)
        g.obs = res.obs
        with self.watch("inference"):
            self._submit(g)

    def _final_values(self, g: _Group, final_obs: dict[int, ObsDict], state: np.ndarray | None) -> np.ndarray:
        """V(final observation) of truncated episodes, by the policy that played them, with the memory the
        agent had at that point. Truncation is rare (once per episode at most), so synchronous calls are cheap."""
        values = np.zeros(len(g.envs), dtype=np.float32)
        pids = self.mapping.policy_of[g.cols]
        for pid in np.unique([pids[s] for s in final_obs]):
            idx = sorted(s for s in final_obs if pids[s] == pid)
            obs = {k: np.stack([final_obs[i][k] for i in idx]) for k in final_obs[idx[0]]}
            sub_state = None if state is None else state[idx]
            values[idx] = self.client.result(self.client.submit(int(pid), obs, sub_state)).values
        return values

    # -- population -------------------------------------------------------------------------------------------

    def set_reward_shaping(self, policy_id: int, coeffs: dict) -> None:
        """PBT changed a policy's shaping: every slot that policy plays now (and later) uses it."""
        self.shaping[policy_id] = coeffs
        for g in self.groups:
            for env in range(len(g.envs.envs)):
                self._apply_shaping(g, env)

    def _apply_shaping(self, g: _Group, env: int) -> None:
        if not self.shaping:
            return
        slots = self.mapping.slots(g.first_env + env)
        for agent, pid in enumerate(self.mapping.policy_of[slots]):
            if int(pid) in self.shaping:
                g.envs.set_reward_shaping(env, agent, self.shaping[int(pid)])

    def reward_shaping(self) -> dict | None:
        """The env's initial shaping coefficients (agent 0 of the first env), or None if it has none."""
        return self.groups[0].envs.get_reward_shaping(0, 0)

    def set_opponents(self, snapshot_ids: list[int]) -> None:
        self.mapping.set_opponents(snapshot_ids)

    def close(self) -> None:
        for g in self.groups:
            g.envs.close()
