"""Generalized advantage estimation (Schulman et al., 2016), time-major ``[T, B]``."""

from __future__ import annotations

import torch
from torch import Tensor


@torch.no_grad()
def gae(
    *, rewards: Tensor, values: Tensor, bootstrap_value: Tensor, discounts: Tensor, lam: float
) -> tuple[Tensor, Tensor]:
    """Advantages and value targets (``advantages + values``).

    Args:
      rewards: [T, B] reward r_t.
      values: [T, B] V(x_t).
      bootstrap_value: [B] V(x_T), the value after the last step.
      discounts: [T, B] per-step discount, zero where the episode ended at step t.
      lam: the GAE lambda; 1 gives discounted returns minus values, 0 gives one-step TD errors.
    """
    assert rewards.dim() == 2, f"rewards must be time-major [T, B], got shape {tuple(rewards.shape)}"
    for name, x in (("values", values), ("discounts", discounts)):
        assert x.shape == rewards.shape, (
            f"{name} must have the shape of rewards {tuple(rewards.shape)}, got {tuple(x.shape)}"
        )
    assert bootstrap_value.shape == rewards.shape[1:], (
        f"bootstrap_value must be [B] = {tuple(rewards.shape[1:])}, got {tuple(bootstrap_value.shape)}"
    )
    rewards, values, bootstrap_value, discounts = (
        x.detach() for x in (rewards, values, bootstrap_value, discounts)
    )

    values_tp1 = torch.cat([values[1:], bootstrap_value.unsqueeze(0)], dim=0)
    deltas = rewards + discounts * values_tp1 - values
    advantages = torch.empty_like(values)
    acc = torch.zeros_like(bootstrap_value)
    for t in reversed(range(values.shape[0])):
        acc = deltas[t] + discounts[t] * lam * acc
        advantages[t] = acc
    return advantages, advantages + values
