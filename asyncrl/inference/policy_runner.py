"""Runs the current policy of each population member on batches of observations (no Ray here)."""

from __future__ import annotations

import os

import gymnasium as gym
import numpy as np
import torch

from asyncrl.config.schema import ModelConfig
from asyncrl.data import ObsDict, PolicyOutput, Weights
from asyncrl.models.actor_critic import ActorCritic, load_numpy_state_dict


class MissingWeights(Exception):
    """A policy was asked for actions before its weights arrived: a copy just (re)started, which the driver
    answers by sending the weights (a restarted actor keeps nothing it was sent)."""


class PolicyRunner:
    def __init__(self, obs_space: gym.spaces.Dict, action_space: gym.Space, model_cfg: ModelConfig,
                 policy_ids: tuple[int, ...] = (0,), device: str = "cpu", deterministic: bool = False,
                 precision: str = "fp32"):
        self.device = torch.device(device)
        self.deterministic = deterministic
        self.body_dtype = torch.bfloat16 if precision == "bf16" else None
        self._spaces, self._model_cfg = (obs_space, action_space), model_cfg
        self.models: dict[int, ActorCritic] = {}
        self.versions: dict[int, int] = {}  # -1: no weights received yet
        for pid in policy_ids:
            self._add(pid)

    def _add(self, policy_id: int) -> None:
        model = ActorCritic(*self._spaces, self._model_cfg).to(self.device).eval()
        model.body_dtype = self.body_dtype
        if self.body_dtype is not None:
            # Weights kept in bfloat16 (cast once per version by load_state_dict) rather than cast by
            # autocast on every forward: for a batch of 8 frames the cast costs more than it saves.
            for module in model.body_modules():
                module.to(self.body_dtype)
        self.models[policy_id] = model
        self.versions[policy_id] = -1

    def set_weights(self, weights: Weights) -> None:
        """Load a newer version of a policy; a policy id not seen before (an opponent snapshot) is added."""
        if weights.policy_id not in self.models:
            self._add(weights.policy_id)
        # Versions only move forward: a late, stale broadcast must not roll a policy back.
        if weights.version > self.versions[weights.policy_id]:
            load_numpy_state_dict(self.models[weights.policy_id], weights.state)
            self.versions[weights.policy_id] = weights.version

    def drop(self, policy_ids: list[int]) -> None:
        """Forget snapshots that left the opponent pool."""
        for pid in policy_ids:
            self.models.pop(pid, None)
            self.versions.pop(pid, None)

    def missing(self) -> list[int]:
        """The policies that have no weights yet."""
        return [pid for pid, version in self.versions.items() if version < 0]

    def infer(self, policy_id: int, obs: ObsDict, rnn_state: np.ndarray | None) -> PolicyOutput:
        if self.versions.get(policy_id, -1) < 0:
            raise MissingWeights(f"no weights for policy {policy_id} in process {os.getpid()} yet")
        model = self.models[policy_id]
        with torch.inference_mode():
            obs_t = {k: torch.as_tensor(v, device=self.device) for k, v in obs.items()}
            state = None if rnn_state is None else torch.as_tensor(rnn_state, device=self.device)
            actions, logp, values, new_state = model.act(obs_t, state, deterministic=self.deterministic)
        return PolicyOutput(
            actions=actions.cpu().numpy(),
            logp=logp.float().cpu().numpy(),
            values=values.float().cpu().numpy(),
            rnn_state=None if new_state is None else new_state.float().cpu().numpy(),
            version=self.versions[policy_id],
        )
