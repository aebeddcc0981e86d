"""APPO loss: ratio and value clipping, masking of stale samples, advantage normalisation."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncrl.algo.appo_loss import LossCoefficients, appo_loss, normalize_advantages

COEFFS = LossCoefficients(clip_ratio=0.1, clip_value=1.0, value_coeff=0.5, entropy_coeff=0.01, kl_coeff=0.1)
POLICY_ONLY = LossCoefficients(
    clip_ratio=0.1, clip_value=0.0, value_coeff=0.0, entropy_coeff=0.0, kl_coeff=0.0
)


def _batch(T=4, B=3, seed=0, requires_grad=True):
    g = torch.Generator().manual_seed(seed)

    def rnd(scale=1.0):
        return torch.randn(T, B, generator=g, dtype=torch.float64) * scale

    b = dict(
        logp=rnd(0.1) - 1.0,
        behaviour_logp=torch.full((T, B), -1.0, dtype=torch.float64),
        entropy=rnd().abs(),
        values=rnd(),
        behaviour_values=rnd(),
        value_targets=rnd(),
        advantages=rnd(),
        mask=torch.ones(T, B, dtype=torch.bool),
    )
    if requires_grad:
        for k in ("logp", "entropy", "values"):
            b[k].requires_grad_(True)
    return b


def _policy_grad(ratio, advantage):
    logp = torch.tensor([[math.log(ratio)]], dtype=torch.float64, requires_grad=True)
    b = _batch(1, 1, requires_grad=False)
    b.update(
        logp=logp,
        behaviour_logp=torch.zeros(1, 1, dtype=torch.float64),
        advantages=torch.tensor([[advantage]], dtype=torch.float64),
    )
    loss, metrics = appo_loss(**b, coeffs=POLICY_ONLY)
    loss.backward()
    return loss.item(), logp.grad.item(), metrics


@pytest.mark.parametrize(
    "ratio,advantage,clipped",
    [
        (1.5, 1.0, True),  # above 1+c with A > 0: no incentive to push further
        (0.5, -1.0, True),  # below 1/(1+c) with A < 0
        (0.5, 1.0, False),  # below the clip but A > 0: the pessimistic branch is unclipped
        (1.5, -1.0, False),
        (1.05, 1.0, False),  # inside [1/1.1, 1.1]
        (0.95, -1.0, False),
    ],
)
def test_policy_clipping_zeroes_gradient_on_the_right_side(ratio, advantage, clipped):
    loss, grad, metrics = _policy_grad(ratio, advantage)
    assert loss == pytest.approx(-min(ratio * advantage, min(max(ratio, 1 / 1.1), 1.1) * advantage))
    if clipped:
        assert grad == 0.0
    else:
        # d/dlogp of -ratio * A is -ratio * A.
        assert grad == pytest.approx(-ratio * advantage)
    outside = ratio > 1.1 or ratio < 1 / 1.1
    assert metrics["stats/clip_fraction"].item() == float(outside)


def test_clip_range_is_symmetric_in_log_space():
    # 0.905 is inside PPO's [0.9, 1.1] but below 1/1.1 ~ 0.909, so it is clipped here; 0.92 is not.
    assert _policy_grad(0.905, -1.0)[1] == 0.0
    assert _policy_grad(0.92, -1.0)[1] != 0.0


def _value_loss(v, bv, target, clip_value):
    coeffs = LossCoefficients(0.1, clip_value, 1.0, 0.0, 0.0)
    b = _batch(1, 1, requires_grad=False)
    b.update(
        values=torch.tensor([[v]], dtype=torch.float64),
        behaviour_values=torch.tensor([[bv]], dtype=torch.float64),
        value_targets=torch.tensor([[target]], dtype=torch.float64),
    )
    return appo_loss(**b, coeffs=coeffs)[1]["losses/value"].item()


def test_value_clipping_picks_the_max():
    # v moved towards the target by more than the clip: unclipped 0.5*(3-4)^2 = 0.5, clipped v = 1 gives
    # 0.5*(1-4)^2 = 4.5, and the pessimistic max keeps the clipped one.
    assert _value_loss(3.0, 0.0, 4.0, 1.0) == pytest.approx(4.5)
    # v moved away from the target: unclipped 0.5*(-3-1)^2 = 8, clipped v = -1 -> 2: max is unclipped.
    assert _value_loss(-3.0, 0.0, 1.0, 1.0) == pytest.approx(8.0)
    # clip_value = 0 turns clipping off.
    assert _value_loss(3.0, 0.0, 4.0, 0.0) == pytest.approx(0.5)


def test_total_combines_terms():
    b = _batch(seed=1)
    loss, m = appo_loss(**b, coeffs=COEFFS)
    expected = (
        m["losses/policy"] + 0.5 * m["losses/value"] - 0.01 * m["losses/entropy"] + 0.1 * m["losses/kl"]
    )
    torch.testing.assert_close(loss.detach(), expected)
    torch.testing.assert_close(m["losses/total"], expected)
    torch.testing.assert_close(m["losses/entropy"], b["entropy"].detach().mean())
    ratio = (b["logp"] - b["behaviour_logp"]).detach().exp()
    torch.testing.assert_close(m["losses/kl"], ((ratio - 1) - ratio.log()).mean())
    torch.testing.assert_close(m["stats/ratio_mean"], ratio.mean())
    assert m["losses/kl"].item() > 0
    assert all(not v.requires_grad and v.dim() == 0 for v in m.values())


def test_kl_is_zero_on_policy():
    b = _batch(seed=2)
    b["logp"] = b["behaviour_logp"].clone().requires_grad_(True)
    assert appo_loss(**b, coeffs=COEFFS)[1]["losses/kl"].item() == 0.0


def _grads(b, coeffs):
    loss, metrics = appo_loss(**b, coeffs=coeffs)
    loss.backward()
    return loss.detach(), metrics, {k: b[k].grad.clone() for k in ("logp", "entropy", "values")}


def test_masked_entries_affect_neither_loss_nor_gradients():
    clean, dirty = _batch(seed=3), _batch(seed=3)
    mask = torch.tensor([[True, False, True], [True, True, False], [False, True, True], [True, True, True]])
    clean["mask"] = dirty["mask"] = mask
    with torch.no_grad():
        for k, garbage in (
            ("logp", 500.0),
            ("behaviour_logp", -500.0),
            ("values", 1e6),
            ("value_targets", -1e6),
            ("advantages", float("inf")),
            ("entropy", 1e6),
        ):
            dirty[k][~mask] = garbage
    loss_c, m_c, g_c = _grads(clean, COEFFS)
    loss_d, m_d, g_d = _grads(dirty, COEFFS)
    torch.testing.assert_close(loss_d, loss_c)
    for k in m_c:
        torch.testing.assert_close(m_d[k], m_c[k], msg=k)
    for k in g_c:
        torch.testing.assert_close(g_d[k], g_c[k], msg=k)
        assert torch.all(g_d[k][~mask] == 0), k


def test_mean_is_over_masked_entries_only():
    b = _batch(seed=4)
    b["mask"] = torch.zeros_like(b["mask"])
    b["mask"][0, 0] = True
    _, m = appo_loss(**b, coeffs=COEFFS)
    torch.testing.assert_close(m["losses/entropy"], b["entropy"][0, 0].detach())


def test_empty_mask_gives_zero_finite_loss():
    b = _batch(seed=5)
    b["mask"] = torch.zeros_like(b["mask"])
    loss, m, g = _grads(b, COEFFS)
    assert loss.item() == 0.0
    assert all(torch.isfinite(v) for v in m.values())
    assert all(torch.all(x == 0) for x in g.values())


def test_shape_mismatch_is_reported():
    b = _batch()
    b["advantages"] = torch.zeros(4, 2, dtype=torch.float64)
    with pytest.raises(AssertionError, match="advantages"):
        appo_loss(**b, coeffs=COEFFS)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 6), st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_normalize_advantages_masked_mean_zero_std_one(T, B, seed):
    rng = np.random.default_rng(seed)
    adv = torch.as_tensor(rng.normal(3.0, 5.0, (T, B)))
    mask = torch.as_tensor(rng.random((T, B)) < 0.7)
    mask[0, 0] = True
    adv[~mask] = 1e9  # must not leak into the statistics
    out = normalize_advantages(adv, mask=mask)
    assert torch.all(out[~mask] == 0)
    sel = out[mask]
    assert sel.mean().item() == pytest.approx(0.0, abs=1e-9)
    if mask.sum() > 1:
        assert sel.std(unbiased=False).item() == pytest.approx(1.0, rel=1e-9)


def test_normalize_advantages_constant_input_is_finite():
    adv = torch.full((3, 2), 2.5)
    out = normalize_advantages(adv, mask=torch.ones(3, 2, dtype=torch.bool))
    assert torch.all(out == 0)


def test_symmetric_kl_replaces_the_entropy_bonus_as_a_clamped_penalty():
    """Sample Factory's symmetric_kl exploration: + coeff * min(mean symmetric KL, 30), and no entropy bonus."""
    b = _batch(requires_grad=False)
    coeffs = LossCoefficients(clip_ratio=0.1, clip_value=0.0, value_coeff=0.0, entropy_coeff=0.5, kl_coeff=0.0)
    policy_only, _ = appo_loss(**b, coeffs=POLICY_ONLY)
    kl = torch.full_like(b["logp"], 0.2)
    loss, metrics = appo_loss(**b, coeffs=coeffs, symmetric_kl=kl)
    assert loss.item() == pytest.approx(policy_only.item() + 0.5 * 0.2)
    assert metrics["losses/symmetric_kl"].item() == pytest.approx(0.2)
    huge, _ = appo_loss(**b, coeffs=coeffs, symmetric_kl=torch.full_like(kl, 1e4))
    assert huge.item() == pytest.approx(policy_only.item() + 0.5 * 30.0)
    with_entropy, _ = appo_loss(**b, coeffs=coeffs)  # the default: the entropy bonus
    assert with_entropy.item() == pytest.approx(policy_only.item() - 0.5 * b["entropy"].mean().item())
