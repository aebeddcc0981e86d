"""V-trace off-policy value targets and policy-gradient advantages (Espeholt et al., 2018, IMPALA).

Inputs are time-major ``[T, B]``. ``discounts[t]`` is the discount applied between step ``t`` and
step ``t + 1`` (``gamma * (1 - done_t)``), so an episode boundary inside the trace is a zero
discount and needs no separate mask.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class VTraceReturns(NamedTuple):
    vs: Tensor  # [T, B] value targets v_s
    pg_advantages: Tensor  # [T, B] clipped-rho-weighted advantages for the policy gradient


def _check_shapes(
    log_rhos: Tensor, discounts: Tensor, rewards: Tensor, values: Tensor, bootstrap_value: Tensor
) -> None:
    assert log_rhos.dim() == 2, f"log_rhos must be time-major [T, B], got shape {tuple(log_rhos.shape)}"
    for name, x in (("discounts", discounts), ("rewards", rewards), ("values", values)):
        assert x.shape == log_rhos.shape, (
            f"{name} must have the shape of log_rhos {tuple(log_rhos.shape)}, got {tuple(x.shape)}"
        )
    assert bootstrap_value.shape == log_rhos.shape[1:], (
        f"bootstrap_value must be [B] = {tuple(log_rhos.shape[1:])}, got {tuple(bootstrap_value.shape)}"
    )


@torch.no_grad()
def vtrace(
    *,
    log_rhos: Tensor,
    discounts: Tensor,
    rewards: Tensor,
    values: Tensor,
    bootstrap_value: Tensor,
    rho_bar: float = 1.0,
    c_bar: float = 1.0,
    pg_rho_bar: float = 1.0,
) -> VTraceReturns:
    """V-trace targets for a batch of trajectories.

    Args:
      log_rhos: [T, B] log(pi(a_t|x_t) / mu(a_t|x_t)), target over behaviour policy.
      discounts: [T, B] per-step discount, zero where the episode ended at step t.
      rewards: [T, B] reward r_t.
      values: [T, B] current value estimates V(x_t).
      bootstrap_value: [B] V(x_T), the value after the last step.
      rho_bar, c_bar, pg_rho_bar: clip thresholds of the importance weights in the targets, in the
        trace coefficients, and in the policy-gradient advantages.
    """
    _check_shapes(log_rhos, discounts, rewards, values, bootstrap_value)
    # Targets are constants for the loss; detaching here also lets callers pass logp with a graph.
    log_rhos, discounts, rewards, values, bootstrap_value = (
        x.detach() for x in (log_rhos, discounts, rewards, values, bootstrap_value)
    )

    rhos = torch.exp(log_rhos)
    clipped_rhos = torch.clamp(rhos, max=rho_bar)
    cs = torch.clamp(rhos, max=c_bar)

    values_tp1 = torch.cat([values[1:], bootstrap_value.unsqueeze(0)], dim=0)
    deltas = clipped_rhos * (rewards + discounts * values_tp1 - values)

    # Backward recursion on vs_t - V(x_t); the loop over T is short (rollout length), B is vectorised.
    vs_minus_v = torch.empty_like(values)
    acc = torch.zeros_like(bootstrap_value)
    for t in reversed(range(values.shape[0])):
        acc = deltas[t] + discounts[t] * cs[t] * acc
        vs_minus_v[t] = acc
    vs = vs_minus_v + values

    # The policy gradient bootstraps from the V-trace target of the next state, not V(x_{t+1}).
    vs_tp1 = torch.cat([vs[1:], bootstrap_value.unsqueeze(0)], dim=0)
    pg_rhos = torch.clamp(rhos, max=pg_rho_bar)
    pg_advantages = pg_rhos * (rewards + discounts * vs_tp1 - values)
    return VTraceReturns(vs=vs, pg_advantages=pg_advantages)
