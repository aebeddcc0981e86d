"""Per-step rewards and discounts fed to V-trace and GAE, time-major ``[T, B]``."""

from __future__ import annotations

import torch
from torch import Tensor


def step_discounts_and_rewards(
    *, rewards: Tensor, terminated: Tensor, truncated: Tensor, final_values: Tensor, gamma: float
) -> tuple[Tensor, Tensor]:
    """Fold episode ends into the rewards and discounts.

    Args:
      rewards: float [T, B].
      terminated: bool [T, B], the episode reached a terminal state at step t.
      truncated: bool [T, B], the episode was cut at step t (e.g. a time limit).
      final_values: float [T, B], value of the final observation where truncated (ignored elsewhere).
      gamma: discount factor.

    Returns:
      (rewards, discounts), both float [T, B].
    """
    assert rewards.dim() == 2, f"rewards must be time-major [T, B], got shape {tuple(rewards.shape)}"
    for name, x in (("terminated", terminated), ("truncated", truncated), ("final_values", final_values)):
        assert x.shape == rewards.shape, (
            f"{name} must have the shape of rewards {tuple(rewards.shape)}, got {tuple(x.shape)}"
        )
    terminated, truncated = terminated.bool(), truncated.bool()
    # On truncation the next observation in the trajectory already belongs to a new episode, so the
    # trace is cut (discount 0) and the lost future is restored by bootstrapping from the value of the
    # final observation. A step both terminated and truncated is terminal: there is no future to restore.
    bootstrap = truncated & ~terminated
    rewards = rewards + torch.where(
        bootstrap, gamma * final_values.to(rewards.dtype), torch.zeros_like(rewards)
    )
    discounts = torch.where(
        terminated | truncated, torch.zeros_like(rewards), torch.full_like(rewards, gamma)
    )
    return rewards, discounts


def scale_and_clip_rewards(rewards: Tensor, *, scale: float, clip: float) -> Tensor:
    """``clamp(scale * rewards, -clip, clip)``; ``clip <= 0`` turns clipping off."""
    rewards = rewards * scale
    return rewards.clamp(-clip, clip) if clip > 0 else rewards
