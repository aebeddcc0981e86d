"""The policy as a module that needs only torch: observations in, greedy action and value out.

Traced (not scripted) from ``ActorCritic.act(..., deterministic=True)``, so the exported graph is the
model's own code path, observation normalization included; nothing of asyncrl is needed to run it.

TorchScript takes the observation dict: ``policy(obs) -> (action, value)``, or with a recurrent core
``policy(obs, state) -> (action, value, new_state)``. ONNX has no dict inputs: one input per observation
key (in the observation space's order), then ``rnn_state``. Shapes: every input and output has a leading
batch dim ``N``; ``action`` is ``[N, A]`` (int64 indices of each discrete component, 0-based, or float32
Gaussian means, unclipped), ``value`` ``[N]`` in reward units, ``state`` ``[N, S]`` (zeros to start).
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from asyncrl.models.actor_critic import ActorCritic

METADATA_NAME = "asyncrl_policy.json"  # TorchScript: an extra file in the archive; ONNX: a metadata key


class DictPolicy(nn.Module):
    """``forward(obs)`` or, with a core, ``forward(obs, state)``; ``state_size`` is a buffer."""

    def __init__(self, model: ActorCritic):
        super().__init__()
        self.model = model
        self.register_buffer("state_size", torch.tensor(model.state_size))

    def forward(self, obs: dict[str, torch.Tensor], state: torch.Tensor | None = None):
        actions, _, values, new_state = self.model.act(obs, state, deterministic=True)
        return (actions, values) if new_state is None else (actions, values, new_state)


class FlatPolicy(nn.Module):
    """ONNX's form: ``forward(*obs_in_key_order[, state])``."""

    def __init__(self, model: ActorCritic):
        super().__init__()
        self.model = model
        self.keys = list(model.obs_space.spaces)

    def forward(self, *inputs: torch.Tensor):
        obs = dict(zip(self.keys, inputs[: len(self.keys)], strict=True))
        state = inputs[len(self.keys)] if len(inputs) > len(self.keys) else None
        actions, _, values, new_state = self.model.act(obs, state, deterministic=True)
        return (actions, values) if new_state is None else (actions, values, new_state)


def example_obs(obs_space: gym.spaces.Dict, n: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    """``n`` samples of the space, batched, with the dtypes an env gives (they fix ONNX's input types)."""
    obs_space.seed(seed)
    samples = [obs_space.sample() for _ in range(n)]
    return {k: torch.as_tensor(np.stack([np.asarray(s[k]) for s in samples])) for k in obs_space.spaces}


def metadata(model: ActorCritic, source: dict) -> dict:
    spec = model.action_spec
    return {
        **source,
        "inputs": {k: {"shape": list(s.shape), "dtype": str(s.dtype)} for k, s in model.obs_space.spaces.items()},
        "state_size": model.state_size,
        "action_space": str(spec.space),
        "action_dim": spec.action_dim,
        "action_dtype": str(spec.dtype),
        "action_low": spec.low.tolist(),
        "action_high": spec.high.tolist(),
        "outputs": ["action", "value"] + (["state"] if model.state_size else []),
    }


def _frozen(model: ActorCritic) -> ActorCritic:
    """A copy for tracing, in eval mode, without gradients (the caller's model is left as it was)."""
    model = copy.deepcopy(model).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def to_torchscript(model: ActorCritic, path: Path, source: dict) -> None:
    wrapper = DictPolicy(_frozen(model))
    obs = example_obs(model.obs_space)
    args = (obs,) if model.state_size == 0 else (obs, model.initial_state(2))
    with warnings.catch_warnings():
        # The action distribution checks its input's width in Python; the tracer warns that this
        # becomes a constant, which it is. Recent torch (2.13 here) also calls TorchScript deprecated for
        # torch.export, whose files need torch.export.load and more of torch; TorchScript still loads
        # anywhere torch (or libtorch in C++) does.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(wrapper, args)
        torch.jit.save(traced, str(path), _extra_files={METADATA_NAME: json.dumps(metadata(model, source))})


def to_onnx(model: ActorCritic, path: Path, source: dict, opset: int = 17) -> None:
    """Needs the ``onnx`` package (the caller checks). Uses torch's TorchScript-based exporter, which
    handles the GRU/LSTM and needs no onnxscript."""
    import onnx

    wrapper = FlatPolicy(_frozen(model))
    obs = example_obs(model.obs_space)
    args = tuple(obs.values()) + (() if model.state_size == 0 else (model.initial_state(2),))
    inputs = list(obs) + ([] if model.state_size == 0 else ["rnn_state"])
    outputs = ["action", "value"] + ([] if model.state_size == 0 else ["rnn_state_out"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's constant warning and the exporter's deprecation notice
        torch.onnx.export(wrapper, args, str(path), dynamo=False, input_names=inputs, output_names=outputs,
                          dynamic_axes={name: {0: "batch"} for name in inputs + outputs}, opset_version=opset)
    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_NAME, json.dumps(metadata(model, source))
    onnx.save(proto, str(path))
