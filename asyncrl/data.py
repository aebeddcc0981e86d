"""The data that crosses component boundaries: one file, imported by everyone.

Everything here is numpy, so it travels through Ray's object store without pickling torch tensors and
is read zero-copy on the same node. Shapes are time-major: ``T`` is the rollout length, ``B`` the number
of environments (columns) in the chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ObsDict = dict[str, np.ndarray]


@dataclass
class EpisodeStats:
    """One finished episode, as the sampler saw it.

    ``ret`` is the sum of the env's rewards (after the env's own wrappers, before the learner's
    ``reward_scale``); ``length`` counts agent steps. ``extra`` holds numeric stats the env reported in
    ``info["episode_stats"]`` on the last step (e.g. ``true_objective``, ``frags``, ``unscaled_return``).
    """

    policy_id: int
    ret: float
    length: int
    extra: dict[str, float] = field(default_factory=dict)


@dataclass
class Trajectory:
    """A time-major chunk of experience of ``T`` steps for ``B`` envs, all played by one policy.

    Fields (dtype, shape):
      obs              dict of arrays, each [T+1, B, *obs_shape]; row T is the observation after the last
                       step, used to bootstrap.
      actions          int64 [T, B, A] for all-discrete action spaces, float32 [T, B, A] otherwise.
      rewards          float32 [T, B]  the env's rewards, unscaled by the algorithm.
      terminated       bool [T, B]     the episode ended in a terminal state: no bootstrap.
      truncated        bool [T, B]     the episode was cut (time limit): bootstrap from ``final_values``.
      final_values     float32 [T, B]  behaviour value of the final observation where truncated, else 0.
      behaviour_logp   float32 [T, B]  log-probability of the action under the behaviour policy.
      behaviour_values float32 [T, B]  behaviour value estimate of ``obs[t]`` (in reward units).
      policy_versions  int64 [T, B]    version of the weights that chose each action.
      rnn_state        float32 [B, S] or None: the core's state before step 0 (already reset where an
                       episode starts at step 0).
      valid            bool [T, B] or None (all valid): the steps this policy played with a live agent.
                       A column of a multi-agent env may change hands when an episode ends, and an agent
                       whose episode ended before the others' waits in masked (terminated) steps.
      episodes         finished episodes in this chunk.
    """

    policy_id: int
    obs: ObsDict
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    final_values: np.ndarray
    behaviour_logp: np.ndarray
    behaviour_values: np.ndarray
    policy_versions: np.ndarray
    rnn_state: np.ndarray | None
    episodes: list[EpisodeStats] = field(default_factory=list)
    valid: np.ndarray | None = None

    @property
    def rollout(self) -> int:
        return self.rewards.shape[0]

    @property
    def num_envs(self) -> int:
        return self.rewards.shape[1]

    @property
    def num_steps(self) -> int:
        """Agent steps (transitions) of this policy held: T * B where every step is valid."""
        return self.rewards.size if self.valid is None else int(self.valid.sum())

    def validate(self) -> None:
        """Check shapes and dtypes at the boundary; raises ValueError naming the field."""
        t, b = self.rewards.shape
        for name in ("terminated", "truncated", "final_values", "behaviour_logp", "behaviour_values",
                     "policy_versions", "valid"):
            if getattr(self, name) is None:
                continue
            shape = getattr(self, name).shape
            if shape != (t, b):
                raise ValueError(f"Trajectory.{name} has shape {shape}, expected {(t, b)}")
        if self.actions.shape[:2] != (t, b) or self.actions.ndim != 3:
            raise ValueError(f"Trajectory.actions has shape {self.actions.shape}, expected ({t}, {b}, A)")
        for key, value in self.obs.items():
            if value.shape[:2] != (t + 1, b):
                raise ValueError(f"Trajectory.obs[{key!r}] has shape {value.shape}, expected ({t + 1}, {b}, ...)")
        if self.rnn_state is not None and self.rnn_state.shape[0] != b:
            raise ValueError(f"Trajectory.rnn_state has shape {self.rnn_state.shape}, expected ({b}, S)")


def concat_trajectories(chunks: list[Trajectory]) -> Trajectory:
    """Join chunks of one policy and one rollout length along the env axis (B)."""
    if len(chunks) == 1:
        return chunks[0]
    first = chunks[0]
    if any(c.policy_id != first.policy_id or c.rollout != first.rollout for c in chunks):
        raise ValueError("concat_trajectories needs chunks of one policy and one rollout length")

    def cat(name: str, axis: int) -> np.ndarray:
        return np.concatenate([getattr(c, name) for c in chunks], axis=axis)

    return Trajectory(
        policy_id=first.policy_id,
        obs={k: np.concatenate([c.obs[k] for c in chunks], axis=1) for k in first.obs},
        actions=cat("actions", 1),
        rewards=cat("rewards", 1),
        terminated=cat("terminated", 1),
        truncated=cat("truncated", 1),
        final_values=cat("final_values", 1),
        behaviour_logp=cat("behaviour_logp", 1),
        behaviour_values=cat("behaviour_values", 1),
        policy_versions=cat("policy_versions", 1),
        rnn_state=None if first.rnn_state is None else cat("rnn_state", 0),
        episodes=[e for c in chunks for e in c.episodes],
        valid=None if all(c.valid is None for c in chunks) else np.concatenate(
            [np.ones(c.rewards.shape, dtype=bool) if c.valid is None else c.valid for c in chunks], axis=1),
    )


@dataclass
class PolicyOutput:
    """What inference returns for a batch of ``N`` observations.

    actions   int64 or float32 [N, A]
    logp      float32 [N]      log-probability of ``actions``
    values    float32 [N]      value estimate in reward units (return normalization undone)
    rnn_state float32 [N, S] or None: the core's state after this step
    version   the weights' version that produced this output
    """

    actions: np.ndarray
    logp: np.ndarray
    values: np.ndarray
    rnn_state: np.ndarray | None
    version: int


@dataclass
class Weights:
    """A published version of one policy's parameters and buffers (normalizer statistics included)."""

    policy_id: int
    version: int
    state: dict[str, np.ndarray]
