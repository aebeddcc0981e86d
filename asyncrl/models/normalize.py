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
        x = x.to(self.mean.device)
        x = x if x.is_floating_point() else x.float()
        # The batch moments are taken in the input's precision (float32 for images: a float64 copy of a
        # batch of frames costs more than the learner's forward pass), shifted by the batch's first row,
        # a typical value, so that E[d^2] - E[d]^2 does not cancel; only the merge below runs in float64.
        shift = x[0]
        d = x - shift
        d_mean = d.mean(0)
        batch_var = (d.square_().mean(0) - d_mean.square()).double().clamp_(min=0.0)
        batch_mean = d_mean.double() + shift.double()
        # Population variance: merging population moments is exact, and a batch of one is fine.
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
        return self.normalize_(x.clone(), clip)

    def normalize_(self, x: torch.Tensor, clip: float | None = None) -> torch.Tensor:
        """``normalize`` in place, for a float tensor the caller owns: one pass per operation, no copies."""
        if not self.enabled:
            return x
        mean, std = self._std(x)
        x.sub_(mean).div_(std)
        clip = self.clip if clip is None else clip
        return x if clip is None else x.clamp_(-clip, clip)

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

    def to_float(self, obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Box keys as new float32 tensors (uint8 ones divided by 255); other keys unchanged."""
        out = dict(obs)
        for k in self.shapes.keys() & obs.keys():
            x = obs[k].to(torch.float32, copy=True)
            out[k] = x.mul_(1.0 / 255.0) if k in self.uint8_keys else x
        return out

    def normalize_(self, obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Normalize the float Box keys of ``to_float``'s output in place."""
        for k in self.shapes:
            self.normalizers[k].normalize_(obs[k])
        return obs

    def forward(self, obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.normalize_(self.to_float(obs))

    @torch.no_grad()
    def update(self, obs: dict[str, torch.Tensor], floats: bool = False) -> None:
        """Update from observations with any leading dims: each ``[..., *shape]``; ``floats``: they are
        already ``to_float``'s output."""
        for k, shape in self.shapes.items():
            x = obs[k] if floats else self.to_float({k: obs[k]})[k]
            self.normalizers[k].update(x.reshape(-1, *shape))
