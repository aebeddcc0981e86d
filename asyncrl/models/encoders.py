"""Observation encoders, chosen per key of a ``spaces.Dict`` observation space.

Inputs are already preprocessed (``ObsPreprocessor``): float Box tensors ``[N, *shape]``, Discrete keys
as integer ``[N]``. Every encoder exposes ``out_size``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from gymnasium import spaces
from torch import nn

if TYPE_CHECKING:  # the models only read attributes of their config slice
    from asyncrl.config.schema import ModelConfig

ACTIVATIONS: dict[str, type[nn.Module]] = {"elu": nn.ELU, "relu": nn.ReLU, "tanh": nn.Tanh}


def is_image(space: spaces.Space) -> bool:
    """A 3-d Box, read as CHW."""
    return isinstance(space, spaces.Box) and len(space.shape) == 3


class MlpEncoder(nn.Module):
    """Flattens a Box (or one-hots a Discrete), then ``layers`` Linear+nonlinearity (none: identity)."""

    def __init__(self, space: spaces.Space, layers: list[int], nonlinearity: str):
        super().__init__()
        if isinstance(space, spaces.Discrete):
            self.num_classes, in_size = int(space.n), int(space.n)
        elif isinstance(space, spaces.Box):
            self.num_classes, in_size = 0, math.prod(space.shape)
        else:
            raise ValueError(f"MlpEncoder supports Box and Discrete observations, got {space}")
        self.start = int(getattr(space, "start", 0))
        modules: list[nn.Module] = []
        for size in layers:
            modules += [nn.Linear(in_size, int(size)), ACTIVATIONS[nonlinearity]()]
            in_size = int(size)
        self.mlp = nn.Sequential(*modules)
        self.out_size = in_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.num_classes:
            x = nn.functional.one_hot(x.long() - self.start, self.num_classes).float()
        return self.mlp(x.reshape(x.shape[0], -1))


class ConvEncoder(nn.Module):
    """Sample Factory's ``convnet_simple``: 8x8/4→32, 4x4/2→64, 3x3/2→128 (no padding), then an FC."""

    def __init__(self, shape: tuple[int, ...], fc_size: int, nonlinearity: str):
        super().__init__()
        act = ACTIVATIONS[nonlinearity]
        c, h, w = shape
        self.conv = nn.Sequential(
            nn.Conv2d(c, 32, 8, stride=4),
            act(),
            nn.Conv2d(32, 64, 4, stride=2),
            act(),
            nn.Conv2d(64, 128, 3, stride=2),
            act(),
        )
        for k, s in ((8, 4), (4, 2), (3, 2)):
            h, w = (h - k) // s + 1, (w - k) // s + 1
        if h < 1 or w < 1:
            raise ValueError(f"image of shape {tuple(shape)} is too small for convnet_simple")
        self.conv_out_size = 128 * h * w
        self.fc = nn.Sequential(nn.Linear(self.conv_out_size, fc_size), act())
        self.out_size = fc_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).flatten(1))


class DictEncoder(nn.Module):
    """One encoder per key, outputs concatenated in sorted key order."""

    def __init__(self, encoders: dict[str, nn.Module]):
        super().__init__()
        self.keys = sorted(encoders)
        self.encoders = nn.ModuleDict({k: encoders[k] for k in self.keys})
        self.out_size = sum(e.out_size for e in self.encoders.values())

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([self.encoders[k](obs[k]) for k in self.keys], dim=-1)


def build_encoder(obs_space: spaces.Dict, cfg: ModelConfig) -> DictEncoder:
    """``auto``: conv for 3-d Box keys, MLP for the rest; ``mlp``: MLP for every key;
    ``convnet_simple``: like auto, but the space must hold an image."""
    images = [k for k, s in obs_space.spaces.items() if is_image(s)]
    if cfg.encoder == "convnet_simple" and not images:
        raise ValueError(f"model.encoder=convnet_simple needs a 3-d (CHW) Box observation, got {obs_space}")
    encoders: dict[str, nn.Module] = {}
    for key, space in obs_space.spaces.items():
        if cfg.encoder != "mlp" and key in images:
            encoders[key] = ConvEncoder(space.shape, cfg.conv_fc_size, cfg.nonlinearity)
        else:
            encoders[key] = MlpEncoder(space, list(cfg.mlp_layers), cfg.nonlinearity)
    return DictEncoder(encoders)
