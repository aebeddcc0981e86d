"""Running mean/std statistics (per element) and the observation preprocessing built on them."""

from __future__ import annotations

import torch
from gymnasium import spaces
from torch import nn

NORM_EPS = 1e-5


class RunningMeanStd(nn.Module):
    """Mean and variance of a stream of ``[N, *shape]`` batches, kept per element in float64 buffers.

    ``enabled=False`` gives an identity normalizer with the same buffers and methods, so callers need no
    branch. ``clip`` bounds the normalized value in ``normalize`` and ``denormalize`` (None: no bound).
    """

    def __init__(self, shape: tuple[int, ...] = (), *, clip: float | None = None, enabled: bool = True):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        self.clip = clip
        self.enabled = enabled
        self.register_buffer("mean", torch.zeros(self.shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(self.shape, dtype=torch.float64))
        # Starts at 0, so the first batch's statistics replace the (0, 1) prior exactly.
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Merge the moments of a batch ``x [N, *shape]`` (Chan et al.'s parallel algorithm)."""
        if tuple(x.shape[1:]) != self.shape:
            raise ValueError(f"RunningMeanStd.update expected [N, *{self.shape}], got {tuple(x.shape)}")
        n = x.shape[0]
        if not self.enabled or n == 0:
            return
        x = x.to(self.mean.device, torch.float64)
        # Population variance: merging population moments is exact, and a batch of one is fine.
        batch_mean, batch_var = x.mean(0), x.var(0, correction=0)
        delta = batch_mean - self.mean
        total = self.count + n
        m2 = self.var * self.count + batch_var * n + delta.square() * self.count * n / total
        self.mean.add_(delta * n / total)
        self.var.copy_(m2 / total)
        self.count.copy_(total)

    def _std(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mean.to(like.dtype), torch.sqrt(self.var + NORM_EPS).to(like.dtype)

    def normalize(self, x: torch.Tensor, clip: float | None = None) -> torch.Tensor:
        """``(x - mean) / sqrt(var + 1e-5)`` clipped to ``±clip`` (default ``self.clip``); keeps x's dtype."""
        if not self.enabled:
            return x
        mean, std = self._std(x)
        y = (x - mean) / std
        clip = self.clip if clip is None else clip
        return y if clip is None else y.clamp(-clip, clip)

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Inverse of ``normalize``; like Sample Factory, the input is clipped to ``±self.clip`` first."""
        if not self.enabled:
            return x
        mean, std = self._std(x)
        if self.clip is not None:
            x = x.clamp(-self.clip, self.clip)
        return x * std + mean


class ObsPreprocessor(nn.Module):
    """Turns raw observations into the encoder's float input.

    Box keys become float32; uint8 Box keys are divided by 255 *before* normalization (Sample Factory's
    ``obs_scale``); every Box key then gets its own per-element ``RunningMeanStd`` (images too, per
    pixel). Discrete keys pass through unchanged (the encoder one-hots them).
    """

    def __init__(self, obs_space: spaces.Dict, *, enabled: bool = True, clip: float = 5.0):
        super().__init__()
        self.shapes = {k: tuple(s.shape) for k, s in obs_space.spaces.items() if isinstance(s, spaces.Box)}
        self.uint8_keys = frozenset(
            k for k, s in obs_space.spaces.items() if isinstance(s, spaces.Box) and s.dtype == "uint8"
        )
        self.normalizers = nn.ModuleDict(
            {k: RunningMeanStd(shape, clip=clip, enabled=enabled) for k, shape in self.shapes.items()}
        )

    def _to_float(self, key: str, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        return x / 255.0 if key in self.uint8_keys else x

    def forward(self, obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {
            k: self.normalizers[k].normalize(self._to_float(k, x)) if k in self.shapes else x
            for k, x in obs.items()
        }

    @torch.no_grad()
    def update(self, obs: dict[str, torch.Tensor]) -> None:
        """Update from observations with any leading dims: each ``[..., *shape]``."""
        for k, shape in self.shapes.items():
            self.normalizers[k].update(self._to_float(k, obs[k]).reshape(-1, *shape))
