"""Action distributions for Discrete, MultiDiscrete, MultiBinary, Box and Tuple/Dict of those.

Actions are always one flat row per sample: ``[..., A]`` with ``A`` the number of components, int64
when every component is discrete and float32 otherwise. Discrete components hold the 0-based index
(``Discrete.start`` is added back in ``to_env``). Box components are unbounded Gaussian samples;
``to_env`` clips them to the space's bounds (``low``/``high`` expose them), so the stored action and
its log-probability stay the unclipped ones. Distributions accept any leading dims (``[N]`` or
``[T, B]``): every op works on the last axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


@dataclass(frozen=True)
class _Categoricals:
    """``k`` categoricals of ``n`` classes: params ``[p, p + k*n)``, actions ``[a, a + k)``."""

    p: int
    a: int
    k: int
    n: int


@dataclass(frozen=True)
class _Gaussian:
    """``d`` independent normals: means at params ``[p, p + d)``, actions ``[a, a + d)``, log-std ``[s, s + d)``."""

    p: int
    a: int
    s: int
    d: int


class ActionSpec:
    """The flat layout of an action space. Build with ``ActionSpec.from_space``."""

    def __init__(self, space: spaces.Space):
        self.space = space
        self.categoricals: list[_Categoricals] = []
        self.gaussians: list[_Gaussian] = []
        self._low: list[np.ndarray] = []
        self._high: list[np.ndarray] = []
        self.num_params = self.action_dim = self.gaussian_dim = 0
        self._add(space)
        self.low = np.concatenate(self._low).astype(np.float32)
        self.high = np.concatenate(self._high).astype(np.float32)
        self.is_discrete = not self.gaussians
        self.dtype = np.dtype(np.int64 if self.is_discrete else np.float32)
        self.torch_dtype = torch.int64 if self.is_discrete else torch.float32

    @classmethod
    def from_space(cls, space: spaces.Space) -> ActionSpec:
        return cls(space)

    # -- layout -------------------------------------------------------------------------------------

    def _add_categoricals(self, sizes: np.ndarray) -> None:
        for n in sizes.flatten().tolist():
            last = self.categoricals[-1] if self.categoricals else None
            # Neighbours with the same class count share one block (one log_softmax over [.., k, n]).
            if (
                last
                and last.n == n
                and last.a + last.k == self.action_dim
                and last.p + last.k * n == self.num_params
            ):
                self.categoricals[-1] = _Categoricals(last.p, last.a, last.k + 1, n)
            else:
                self.categoricals.append(_Categoricals(self.num_params, self.action_dim, 1, int(n)))
            self._low.append(np.zeros(1))
            self._high.append(np.array([n - 1.0]))
            self.num_params += int(n)
            self.action_dim += 1

    def _add(self, space: spaces.Space) -> None:
        if isinstance(space, spaces.Discrete):
            self._add_categoricals(np.array([space.n]))
        elif isinstance(space, spaces.MultiDiscrete):
            self._add_categoricals(np.asarray(space.nvec))
        elif isinstance(space, spaces.MultiBinary):
            self._add_categoricals(np.full(space.shape, 2))
        elif isinstance(space, spaces.Box):
            d = math.prod(space.shape)
            self.gaussians.append(_Gaussian(self.num_params, self.action_dim, self.gaussian_dim, d))
            self._low.append(space.low.astype(np.float64).flatten())
            self._high.append(space.high.astype(np.float64).flatten())
            self.num_params += d
            self.action_dim += d
            self.gaussian_dim += d
        elif isinstance(space, spaces.Tuple):
            for sub in space.spaces:
                self._add(sub)
        elif isinstance(space, spaces.Dict):
            for sub in space.spaces.values():
                self._add(sub)
        else:
            raise ValueError(f"unsupported action space {space}")

    # -- conversions to and from the env's native actions ----------------------------------------

    def to_env(self, row: np.ndarray):
        """One flat action ``[A]`` -> the env's action (int, array, tuple or dict)."""
        native, pos = _to_env(self.space, np.asarray(row), 0)
        assert pos == self.action_dim
        return native

    def to_env_batch(self, actions: np.ndarray) -> list:
        """``[N, A]`` -> a list of N env actions."""
        return [self.to_env(row) for row in np.asarray(actions)]

    def from_env(self, action) -> np.ndarray:
        """The env's action -> a flat row ``[A]`` of ``self.dtype`` (the inverse of ``to_env``)."""
        return np.asarray(_from_env(self.space, action), dtype=self.dtype)

    def distribution(self, params: torch.Tensor, log_std: torch.Tensor | None = None) -> ActionDistribution:
        return ActionDistribution(self, params, log_std)


def _to_env(space: spaces.Space, row: np.ndarray, pos: int):
    if isinstance(space, spaces.Discrete):
        return int(row[pos]) + int(space.start), pos + 1
    if isinstance(space, spaces.MultiDiscrete | spaces.MultiBinary):
        k = math.prod(space.shape)
        idx = row[pos : pos + k].astype(np.int64).reshape(space.shape)
        start = getattr(space, "start", 0)
        return (idx + start).astype(space.dtype), pos + k
    if isinstance(space, spaces.Box):
        k = math.prod(space.shape)
        value = np.clip(row[pos : pos + k].reshape(space.shape), space.low, space.high)
        return value.astype(space.dtype), pos + k
    if isinstance(space, spaces.Tuple):
        out = []
        for sub in space.spaces:
            value, pos = _to_env(sub, row, pos)
            out.append(value)
        return tuple(out), pos
    out_d = {}
    for key, sub in space.spaces.items():
        out_d[key], pos = _to_env(sub, row, pos)
    return out_d, pos


def _from_env(space: spaces.Space, action) -> list:
    if isinstance(space, spaces.Discrete):
        return [int(action) - int(space.start)]
    if isinstance(space, spaces.MultiDiscrete | spaces.MultiBinary):
        start = getattr(space, "start", 0)
        return (np.asarray(action, dtype=np.int64) - start).flatten().tolist()
    if isinstance(space, spaces.Box):
        return np.asarray(action, dtype=np.float64).flatten().tolist()
    if isinstance(space, spaces.Tuple):
        return [v for sub, a in zip(space.spaces, action, strict=True) for v in _from_env(sub, a)]
    return [v for key, sub in space.spaces.items() for v in _from_env(sub, action[key])]


class ActionDistribution:
    """The joint distribution of all components: log-probs and entropies add up over components."""

    def __init__(self, spec: ActionSpec, params: torch.Tensor, log_std: torch.Tensor | None = None):
        if params.shape[-1] != spec.num_params:
            raise ValueError(f"expected params [..., {spec.num_params}], got {tuple(params.shape)}")
        if spec.gaussian_dim and (log_std is None or log_std.shape[-1] != spec.gaussian_dim):
            raise ValueError(f"a Box action needs log_std [..., {spec.gaussian_dim}]")
        self.spec = spec
        self.lead = params.shape[:-1]
        self._logp = [
            (c, params[..., c.p : c.p + c.k * c.n].unflatten(-1, (c.k, c.n)).log_softmax(-1))
            for c in spec.categoricals
        ]
        self._normal = [
            (g, params[..., g.p : g.p + g.d], log_std[..., g.s : g.s + g.d]) for g in spec.gaussians
        ]

    def _fill(self, categorical, gaussian) -> torch.Tensor:
        some = self._logp[0][1] if self._logp else self._normal[0][1]
        out = torch.empty(*self.lead, self.spec.action_dim, dtype=self.spec.torch_dtype, device=some.device)
        for c, logp in self._logp:
            out[..., c.a : c.a + c.k] = categorical(logp).to(out.dtype)
        for g, mean, log_std in self._normal:
            out[..., g.a : g.a + g.d] = gaussian(mean, log_std)
        return out

    def sample(self) -> torch.Tensor:
        def categorical(logp: torch.Tensor) -> torch.Tensor:
            flat = logp.exp().reshape(-1, logp.shape[-1])
            return torch.multinomial(flat, 1).reshape(logp.shape[:-1])

        return self._fill(categorical, lambda mean, log_std: mean + log_std.exp() * torch.randn_like(mean))

    def mode(self) -> torch.Tensor:
        """The greedy action: argmax of each categorical, the mean of each Gaussian."""
        return self._fill(lambda logp: logp.argmax(-1), lambda mean, log_std: mean)

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        """``actions [..., A]`` -> ``[...]`` float."""
        total = torch.zeros(self.lead, device=actions.device)
        for c, logp in self._logp:
            idx = actions[..., c.a : c.a + c.k].long().unsqueeze(-1)
            total = total + logp.gather(-1, idx).squeeze(-1).sum(-1)
        for g, mean, log_std in self._normal:
            z = (actions[..., g.a : g.a + g.d].float() - mean) * torch.exp(-log_std)
            total = total + (-0.5 * z.square() - log_std - _HALF_LOG_2PI).sum(-1)
        return total

    def symmetric_kl_to_uniform(self) -> torch.Tensor:
        """``[...]``: the symmetric KL, (KL(p || u) + KL(u || p)) / 2, between each categorical and the uniform
        distribution over its classes, summed over the categoricals (Sample Factory's ``symmetric_kl``
        exploration loss). Gaussian components have no uniform counterpart: a ValueError."""
        if self._normal:
            raise ValueError("algo.exploration_loss=symmetric_kl needs discrete actions; this action space has a "
                             "Box component: use algo.exploration_loss=entropy")
        total = torch.zeros(self.lead, device=self._logp[0][1].device)
        for c, logp in self._logp:
            log_u = -math.log(c.n)
            kl_p_u = (logp.exp() * (logp - log_u)).sum(-1)
            kl_u_p = (math.exp(log_u) * (log_u - logp)).sum(-1)
            total = total + (0.5 * (kl_p_u + kl_u_p)).sum(-1)
        return total

    def entropy(self) -> torch.Tensor:
        """``[...]`` float."""
        some = self._logp[0][1] if self._logp else self._normal[0][1]
        total = torch.zeros(self.lead, device=some.device)
        for _, logp in self._logp:
            total = total - (logp.exp() * logp).sum(-1).sum(-1)
        for _, mean, log_std in self._normal:
            total = total + (0.5 + _HALF_LOG_2PI + log_std).sum(-1).expand(mean.shape[:-1])
        return total


class ActionHead(nn.Module):
    """A linear layer to the distribution's parameters, plus a learned, state-independent log-std for
    Box components (initialized to 0)."""

    def __init__(self, spec: ActionSpec, in_size: int):
        super().__init__()
        self.spec = spec
        self.linear = nn.Linear(in_size, spec.num_params)
        self.log_std = nn.Parameter(torch.zeros(spec.gaussian_dim)) if spec.gaussian_dim else None

    def forward(self, x: torch.Tensor) -> ActionDistribution:
        return self.spec.distribution(self.linear(x), self.log_std)
