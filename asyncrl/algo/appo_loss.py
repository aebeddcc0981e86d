"""APPO loss: PPO-clipped surrogate on V-trace (or GAE) advantages, Sample Factory style.

All inputs are time-major ``[T, B]``. ``mask`` marks the samples that take part: the others are
too stale (policy lag) and must contribute neither to the loss nor to its gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class LossCoefficients:
    clip_ratio: float  # ratio clipped to [1/(1+c), 1+c]
    clip_value: float  # value clip around the behaviour value; 0 turns it off
    value_coeff: float  # weight of the value loss in the total
    entropy_coeff: float  # weight of the exploration term: the entropy bonus, or the symmetric-KL penalty
    kl_coeff: float  # weight of the KL(behaviour || current) penalty


def _masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    # where, not multiply: a masked-out inf or nan must not leak into the sum (0 * inf = nan).
    return torch.where(mask, x, torch.zeros_like(x)).sum() / mask.sum().clamp(min=1)


def normalize_advantages(adv: Tensor, *, mask: Tensor) -> Tensor:
    """Zero mean, unit (population) std over the masked entries; masked-out entries become 0."""
    assert adv.shape == mask.shape, f"adv {tuple(adv.shape)} and mask {tuple(mask.shape)} must match"
    assert mask.dtype == torch.bool, f"mask must be bool, got {mask.dtype}"
    mean = _masked_mean(adv, mask)
    var = _masked_mean((adv - mean) ** 2, mask)
    normed = (adv - mean) / var.sqrt().clamp(min=1e-8)
    return torch.where(mask, normed, torch.zeros_like(normed))


def appo_loss(
    *,
    logp: Tensor,
    behaviour_logp: Tensor,
    entropy: Tensor,
    values: Tensor,
    behaviour_values: Tensor,
    value_targets: Tensor,
    advantages: Tensor,
    mask: Tensor,
    coeffs: LossCoefficients,
    symmetric_kl: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Total loss and detached scalar metrics.

    ``total = policy + value_coeff * value - entropy_coeff * entropy + kl_coeff * kl`` where
    ``losses/entropy`` and ``losses/kl`` report the unweighted mean entropy and KL estimate. Given
    ``symmetric_kl`` (per sample, to the uniform policy), the exploration term is Sample Factory's
    ``symmetric_kl`` instead of the entropy bonus: ``+ entropy_coeff * min(mean symmetric_kl, 30)``.
    ``value_targets`` and ``advantages`` are treated as constants. ``behaviour_logp`` is the policy the ratio is
    taken against and its clip centred on: the one that acted, or another (``algo.ppo_clip_anchor``).
    """
    assert logp.dim() == 2, f"logp must be time-major [T, B], got shape {tuple(logp.shape)}"
    for name, x in (
        ("behaviour_logp", behaviour_logp),
        ("entropy", entropy),
        ("values", values),
        ("behaviour_values", behaviour_values),
        ("value_targets", value_targets),
        ("advantages", advantages),
        ("mask", mask),
        *((("symmetric_kl", symmetric_kl),) if symmetric_kl is not None else ()),
    ):
        assert x.shape == logp.shape, (
            f"{name} must have the shape of logp {tuple(logp.shape)}, got {tuple(x.shape)}"
        )
    assert mask.dtype == torch.bool, f"mask must be bool, got {mask.dtype}"
    advantages, value_targets = advantages.detach(), value_targets.detach()
    behaviour_logp, behaviour_values = behaviour_logp.detach(), behaviour_values.detach()

    # Stale samples can have huge log-ratios; zero them before exp so no inf reaches the graph.
    log_ratio = torch.where(mask, logp - behaviour_logp, torch.zeros_like(logp))
    ratio = torch.exp(log_ratio)
    # Sample Factory's symmetric-in-log clip: [1/(1+c), 1+c] rather than PPO's [1-c, 1+c].
    lo, hi = 1.0 / (1.0 + coeffs.clip_ratio), 1.0 + coeffs.clip_ratio
    clipped_ratio = ratio.clamp(lo, hi)
    surrogate = torch.minimum(ratio * advantages, clipped_ratio * advantages)
    policy_loss = -_masked_mean(surrogate, mask)

    value_err = 0.5 * (values - value_targets) ** 2
    if coeffs.clip_value > 0:
        c = coeffs.clip_value
        values_clipped = behaviour_values + (values - behaviour_values).clamp(-c, c)
        value_err = torch.maximum(value_err, 0.5 * (values_clipped - value_targets) ** 2)
    value_loss = _masked_mean(value_err, mask)

    entropy_mean = _masked_mean(entropy, mask)
    # k3 estimator of KL(behaviour || current) from behaviour samples: unbiased and never negative.
    kl = _masked_mean((ratio - 1.0) - log_ratio, mask)

    # Sample Factory clamps the mean symmetric KL at 30: a near-deterministic policy must not blow the loss up.
    exploration = -entropy_mean if symmetric_kl is None else _masked_mean(symmetric_kl, mask).clamp(max=30.0)
    total = policy_loss + coeffs.value_coeff * value_loss + coeffs.entropy_coeff * exploration
    if coeffs.kl_coeff > 0:
        total = total + coeffs.kl_coeff * kl

    with torch.no_grad():
        clip_fraction = _masked_mean(((ratio < lo) | (ratio > hi)).float(), mask)
        metrics = {
            "losses/policy": policy_loss.detach(),
            "losses/value": value_loss.detach(),
            "losses/entropy": entropy_mean.detach(),
            "losses/kl": kl.detach(),
            "losses/total": total.detach(),
            "stats/clip_fraction": clip_fraction,
            "stats/ratio_mean": _masked_mean(ratio, mask).detach(),
        }
        if symmetric_kl is not None:
            metrics["losses/symmetric_kl"] = exploration.detach()
    return total, metrics
