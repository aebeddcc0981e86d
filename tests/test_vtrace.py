"""V-trace and GAE pinned to naive references written from the papers' formulas, plus properties."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncrl.algo.gae import gae
from asyncrl.algo.targets import scale_and_clip_rewards, step_discounts_and_rewards
from asyncrl.algo.vtrace import vtrace

FEW = settings(max_examples=25, deadline=None)
shapes = st.tuples(st.integers(1, 6), st.integers(1, 3), st.integers(0, 2**31 - 1))


def _inputs(T, B, seed, zero_discount_prob=0.2):
    rng = np.random.default_rng(seed)
    discounts = 0.9 * (rng.random((T, B)) > zero_discount_prob)
    return dict(
        log_rhos=rng.normal(0.0, 1.0, (T, B)),
        discounts=discounts,
        rewards=rng.normal(0.0, 1.0, (T, B)),
        values=rng.normal(0.0, 1.0, (T, B)),
        bootstrap_value=rng.normal(0.0, 1.0, (B,)),
    )


def _torch(d):
    return {k: torch.as_tensor(v, dtype=torch.float64) for k, v in d.items()}


def naive_vtrace(log_rhos, discounts, rewards, values, bootstrap_value, rho_bar, c_bar, pg_rho_bar):
    """IMPALA eq. (1) term by term: v_s = V(x_s) + sum_{t>=s} (prod_{i<t} gamma_i c_i) delta_t V."""
    T, B = log_rhos.shape
    rhos = np.exp(log_rhos)
    v_ext = np.concatenate([values, bootstrap_value[None]], axis=0)  # V(x_0) .. V(x_T)
    vs = np.zeros((T, B))
    pg = np.zeros((T, B))
    for b in range(B):
        for s in range(T):
            total = v_ext[s, b]
            for t in range(s, T):
                weight = 1.0
                for i in range(s, t):
                    weight *= discounts[i, b] * min(c_bar, rhos[i, b])
                delta = min(rho_bar, rhos[t, b]) * (
                    rewards[t, b] + discounts[t, b] * v_ext[t + 1, b] - v_ext[t, b]
                )
                total += weight * delta
            vs[s, b] = total
    vs_ext = np.concatenate([vs, bootstrap_value[None]], axis=0)
    for b in range(B):
        for s in range(T):
            q = rewards[s, b] + discounts[s, b] * vs_ext[s + 1, b]
            pg[s, b] = min(pg_rho_bar, rhos[s, b]) * (q - values[s, b])
    return vs, pg


CLIPS = [(1.0, 1.0, 1.0), (0.5, 0.8, 2.0), (2.0, 0.5, 1.0), (1.0, 1.0, 0.3), (100.0, 100.0, 100.0)]


@pytest.mark.parametrize("rho_bar,c_bar,pg_rho_bar", CLIPS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vtrace_matches_naive_reference(rho_bar, c_bar, pg_rho_bar, seed):
    inputs = _inputs(7, 4, seed)
    out = vtrace(**_torch(inputs), rho_bar=rho_bar, c_bar=c_bar, pg_rho_bar=pg_rho_bar)
    vs, pg = naive_vtrace(**inputs, rho_bar=rho_bar, c_bar=c_bar, pg_rho_bar=pg_rho_bar)
    np.testing.assert_allclose(out.vs.numpy(), vs, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(out.pg_advantages.numpy(), pg, rtol=1e-10, atol=1e-10)


def test_pg_rho_bar_only_changes_advantages():
    inputs = _torch(_inputs(5, 3, seed=3))
    a = vtrace(**inputs, rho_bar=1.0, c_bar=1.0, pg_rho_bar=1.0)
    b = vtrace(**inputs, rho_bar=1.0, c_bar=1.0, pg_rho_bar=0.2)
    torch.testing.assert_close(a.vs, b.vs)
    assert not torch.allclose(a.pg_advantages, b.pg_advantages)


@FEW
@given(shapes, st.data())
def test_zero_discount_splits_the_trace(shape, data):
    T, B, seed = shape
    T += 1  # need room for a split
    k = data.draw(st.integers(0, T - 2))
    inputs = _torch(_inputs(T, B, seed))
    inputs["discounts"][k] = 0.0
    full = vtrace(**inputs, rho_bar=1.5, c_bar=0.9, pg_rho_bar=1.2)

    head = {n: inputs[n][: k + 1] for n in ("log_rhos", "discounts", "rewards", "values")}
    tail = {n: inputs[n][k + 1 :] for n in ("log_rhos", "discounts", "rewards", "values")}
    # The head's bootstrap is multiplied by a zero discount, so any value must do.
    first = vtrace(
        **head,
        bootstrap_value=torch.full((B,), 1e3, dtype=torch.float64),
        rho_bar=1.5,
        c_bar=0.9,
        pg_rho_bar=1.2,
    )
    second = vtrace(**tail, bootstrap_value=inputs["bootstrap_value"], rho_bar=1.5, c_bar=0.9, pg_rho_bar=1.2)
    torch.testing.assert_close(full.vs, torch.cat([first.vs, second.vs]))
    torch.testing.assert_close(full.pg_advantages, torch.cat([first.pg_advantages, second.pg_advantages]))


def _discounted_returns(rewards, discounts, bootstrap_value):
    T = rewards.shape[0]
    returns = np.zeros_like(rewards)
    acc = bootstrap_value.copy()
    for t in reversed(range(T)):
        acc = rewards[t] + discounts[t] * acc
        returns[t] = acc
    return returns


@FEW
@given(shapes)
def test_on_policy_vtrace_is_n_step_return(shape):
    T, B, seed = shape
    inputs = _inputs(T, B, seed)
    inputs["log_rhos"] = np.zeros((T, B))
    out = vtrace(**_torch(inputs), rho_bar=1.0, c_bar=1.0, pg_rho_bar=1.0)
    expected = _discounted_returns(inputs["rewards"], inputs["discounts"], inputs["bootstrap_value"])
    np.testing.assert_allclose(out.vs.numpy(), expected, rtol=1e-10, atol=1e-10)


def test_vtrace_targets_carry_no_graph_and_check_shapes():
    inputs = _torch(_inputs(4, 2, seed=5))
    inputs["log_rhos"].requires_grad_(True)
    inputs["values"].requires_grad_(True)
    out = vtrace(**inputs)
    assert not out.vs.requires_grad and not out.pg_advantages.requires_grad
    with pytest.raises(AssertionError, match="bootstrap_value"):
        vtrace(**{**inputs, "bootstrap_value": torch.zeros(3, dtype=torch.float64)})
    with pytest.raises(AssertionError, match="rewards"):
        vtrace(**{**inputs, "rewards": torch.zeros(4, 3, dtype=torch.float64)})


def naive_gae(rewards, values, bootstrap_value, discounts, lam):
    """A_s = sum_{t>=s} (prod_{i<t} gamma_i lam) delta_t, term by term."""
    T, B = rewards.shape
    v_ext = np.concatenate([values, bootstrap_value[None]], axis=0)
    adv = np.zeros((T, B))
    for b in range(B):
        for s in range(T):
            weight = 1.0
            for t in range(s, T):
                adv[s, b] += weight * (rewards[t, b] + discounts[t, b] * v_ext[t + 1, b] - v_ext[t, b])
                weight *= discounts[t, b] * lam
    return adv


@FEW
@given(shapes, st.sampled_from([0.0, 0.5, 0.95, 1.0]))
def test_gae_matches_loop(shape, lam):
    T, B, seed = shape
    d = _inputs(T, B, seed)
    args = (d["rewards"], d["values"], d["bootstrap_value"], d["discounts"])
    names = ("rewards", "values", "bootstrap_value", "discounts")
    adv, ret = gae(**{k: torch.as_tensor(x) for k, x in zip(names, args, strict=True)}, lam=lam)
    np.testing.assert_allclose(adv.numpy(), naive_gae(*args, lam), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ret.numpy(), adv.numpy() + d["values"], rtol=1e-12)


@FEW
@given(shapes)
def test_gae_lambda_one_is_discounted_return_minus_value(shape):
    T, B, seed = shape
    d = _inputs(T, B, seed)
    adv, ret = gae(**{k: torch.as_tensor(d[k]) for k in ("rewards", "values", "bootstrap_value", "discounts")},
                   lam=1.0)
    expected = _discounted_returns(d["rewards"], d["discounts"], d["bootstrap_value"])
    np.testing.assert_allclose(ret.numpy(), expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(adv.numpy(), expected - d["values"], rtol=1e-10, atol=1e-10)


def test_targets_on_terminated_and_truncated_steps():
    gamma = 0.9
    rewards = torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    terminated = torch.tensor([[False, False], [True, False], [False, True]])
    truncated = torch.tensor([[False, True], [False, False], [False, True]])
    final_values = torch.tensor([[7.0, 10.0], [7.0, 7.0], [7.0, 5.0]])  # only [0, 1] is used
    r, disc = step_discounts_and_rewards(rewards=rewards, terminated=terminated, truncated=truncated,
                                         final_values=final_values, gamma=gamma)
    torch.testing.assert_close(r, torch.tensor([[1.0, 1.0 + gamma * 10.0], [2.0, 2.0], [3.0, 3.0]]))
    torch.testing.assert_close(disc, torch.tensor([[gamma, 0.0], [0.0, gamma], [gamma, 0.0]]))


def test_truncated_bootstrap_feeds_vtrace_like_a_longer_episode():
    # One env, episode cut after step 0; the next step starts a new episode whose values are unrelated.
    gamma = 0.9
    r, disc = step_discounts_and_rewards(
        rewards=torch.tensor([[1.0], [5.0]]),
        terminated=torch.tensor([[False], [False]]),
        truncated=torch.tensor([[True], [False]]),
        final_values=torch.tensor([[4.0], [0.0]]),
        gamma=gamma,
    )
    out = vtrace(log_rhos=torch.zeros(2, 1), discounts=disc, rewards=r, values=torch.tensor([[0.0], [-100.0]]),
                 bootstrap_value=torch.tensor([2.0]))
    torch.testing.assert_close(out.vs[0], torch.tensor([1.0 + gamma * 4.0]))
    torch.testing.assert_close(out.vs[1], torch.tensor([5.0 + gamma * 2.0]))


def test_scale_and_clip_rewards():
    r = torch.tensor([-10.0, -0.5, 0.0, 3.0])
    torch.testing.assert_close(scale_and_clip_rewards(r, scale=2.0, clip=4.0), torch.tensor([-4.0, -1.0, 0.0, 4.0]))
    torch.testing.assert_close(scale_and_clip_rewards(r, scale=0.5, clip=0.0), r * 0.5)
