"""PBT decisions with a seeded RNG: who copies whom, what is perturbed, and by how much."""

import math

import pytest

from asyncrl.config.schema import PbtConfig
from asyncrl.pbt.decisions import PbtDecider

DEFAULTS = {"lr": 1e-3, "entropy_coeff": 0.01, "value_loss_coeff": 0.5, "ppo_clip_ratio": 0.1,
            "ppo_clip_value": 1.0, "max_grad_norm": 4.0, "gamma": 0.99}


def _decider(size=4, **kw) -> PbtDecider:
    cfg = PbtConfig(enabled=True, period=100, start_after=0, **kw)
    return PbtDecider(cfg, DEFAULTS, size, shaping={"delta": {"FRAGCOUNT": [1.0, -1.5]}, "weapon": 0.002})


def test_the_worst_policy_copies_a_best_one_and_the_best_is_left_alone():
    pbt = _decider(replace_fraction=0.25)  # ceil(0.25 * 4) = 1 best, 1 worst
    objectives = {0: 10.0, 1: 5.0, 2: 1.0, 3: 8.0}
    before = {pid: dict(m.hyperparameters) for pid, m in enumerate(pbt.members)}
    best = pbt.update(0, objectives, env_steps=100)
    assert best.role == "best" and best.copied_from is None and best.hyperparameters == before[0]
    worst = pbt.update(2, objectives, env_steps=100)
    assert worst.role == "worst" and worst.copied_from == 0 and worst.source_objective == 10.0
    # Explore starts from the source's values: every unperturbed one is the source's.
    for name, value in worst.hyperparameters.items():
        if name not in worst.perturbed:
            assert value == before[0][name]
    middle = pbt.update(1, objectives, env_steps=100)
    assert middle.role == "middle" and middle.copied_from is None


def test_no_copy_when_the_gap_is_too_small():
    pbt = _decider(replace_fraction=0.25, replace_gap=0.1)
    decision = pbt.update(2, {0: 1.0, 1: 0.99, 2: 0.95, 3: 0.97}, env_steps=100)
    assert decision.role == "worst" and decision.copied_from is None  # 5% better is within the 10% gap


def test_perturbations_stay_within_their_bounds():
    pbt = _decider(mutation_rate=1.0, perturb_min=1.1, perturb_max=1.5, optimize_gamma=True, replace_fraction=0.25)
    objectives = {0: 4.0, 1: 3.0, 2: 2.0, 3: 1.0}
    for step in range(1, 300):
        old = dict(pbt.members[1].hyperparameters)
        d = pbt.update(1, objectives, env_steps=step * 100)
        assert d.role == "middle"
        for name, new in d.hyperparameters.items():
            if new == DEFAULTS[name]:  # a 1% chance of going back to the configured value
                continue
            if name == "gamma":
                ratio = (1 - new) / (1 - old[name])
                assert 0 < new < 1 and (1 / 1.2 - 1e-9 <= ratio <= 1 / 1.01 + 1e-9 or 1.01 - 1e-9 <= ratio <= 1.2 + 1e-9)
            else:
                ratio = new / old[name]
                assert 1 / 1.5 - 1e-9 <= ratio <= 1 / 1.1 + 1e-9 or 1.1 - 1e-9 <= ratio <= 1.5 + 1e-9, (name, ratio)
        up, down = d.shaping["delta"]["FRAGCOUNT"]
        assert up > 0 > down  # shaping is scaled, never flipped


def test_policy_zero_never_perturbs():
    pbt = _decider(mutation_rate=1.0)
    objectives = {0: 2.0, 1: 3.0, 2: 4.0, 3: 5.0}  # policy 0 is the worst
    assert pbt.members[0].hyperparameters == {k: v for k, v in DEFAULTS.items() if k != "gamma"}
    d = pbt.update(0, objectives, env_steps=100)
    assert d.role == "worst" and d.copied_from in (2, 3) and d.perturbed == []
    assert d.hyperparameters == pbt.members[d.copied_from].hyperparameters


def test_policies_above_zero_start_perturbed():
    pbt = _decider(mutation_rate=1.0)
    assert all(pbt.members[p].hyperparameters != pbt.members[0].hyperparameters for p in (1, 2, 3))


def test_no_decision_until_every_policy_has_an_objective():
    pbt = _decider()
    assert pbt.update(1, {0: 1.0, 1: 2.0, 2: None, 3: 0.5}, env_steps=100) is None


def test_due_respects_start_and_period():
    pbt = PbtDecider(PbtConfig(enabled=True, period=100, start_after=500), DEFAULTS, 2)
    assert not pbt.due(1, 499) and pbt.due(1, 500)
    pbt.update(1, {0: 1.0, 1: 0.0}, env_steps=500)
    assert not pbt.due(1, 599) and pbt.due(1, 600)


def test_seeded_decisions_repeat_and_resume_from_state():
    objectives = {0: 1.0, 1: 2.0, 2: 3.0, 3: 4.0, 4: 0.5, 5: 2.5}
    a, b = _decider(size=6, seed=3), _decider(size=6, seed=3)
    for step in range(1, 6):
        for pid in range(6):
            assert a.update(pid, objectives, step * 100).as_json() == b.update(pid, objectives, step * 100).as_json()
    c = _decider(size=6, seed=99)
    c.load_state_dict(a.state_dict())
    assert [c.update(p, objectives, 700).as_json() for p in range(6)] == [a.update(p, objectives, 700).as_json()
                                                                            for p in range(6)]


@pytest.mark.parametrize("size,fraction,n", [(4, 0.3, 2), (8, 0.3, 3), (2, 0.5, 1)])
def test_best_and_worst_are_ceil_of_the_fraction(size, fraction, n):
    pbt = _decider(size=size, replace_fraction=fraction)
    objectives = {p: float(p) for p in range(size)}
    roles = [pbt.update(p, objectives, 100).role for p in range(size)]
    assert roles.count("best") == n == math.ceil(fraction * size) and roles.count("worst") == n
