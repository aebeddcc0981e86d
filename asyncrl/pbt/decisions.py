"""Population-based training decisions: who copies whom, and how hyperparameters and shaping are perturbed.

Plain and seeded: no Ray, no torch, no clock. The trainer asks ``due`` after each training step of a policy
and, when it is, ``update`` returns a ``Decision`` that the runtime carries out. The algorithm is Sample
Factory's (``pbt/population_based_training.py``):

- Rank the population by objective (mean over recent episodes); the top ``ceil(replace_fraction * N)`` are
  *best*, the bottom as many *worst*.
- A best policy is left alone.
- A worst policy copies a random best one (weights, optimizer state, hyperparameters, shaping) when the
  best one is better by more than ``replace_gap`` relative and ``replace_gap_absolute`` absolute.
- Every policy that is not best (copied or not) then perturbs its hyperparameters and shaping; policy 0
  never perturbs, so the population keeps one member with the configured values.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from asyncrl.config.schema import PBT_HYPERPARAMS, PbtConfig

RESET_TO_DEFAULT_P = 0.01  # chance that a perturbed value returns to its default instead (SF's)
GAMMA_PERTURB = (1.01, 1.2)  # gamma perturbs 1 - gamma by this factor range (SF's)
MIN_ONE_MINUS_GAMMA = 1e-8


@dataclass
class Member:
    """What PBT tracks of one policy."""

    hyperparameters: dict[str, float]
    shaping: dict[str, Any] | None = None
    last_update: int = 0  # the policy's env steps at its last PBT update


@dataclass
class Decision:
    policy: int
    role: str  # best | middle | worst
    objective: float
    copied_from: int | None = None  # exploit: the source policy
    source_objective: float | None = None
    hyperparameters: dict[str, float] = field(default_factory=dict)  # after explore
    shaping: dict[str, Any] | None = None
    perturbed: list[str] = field(default_factory=list)  # names of the values explore changed
    env_steps: int = 0

    def as_json(self) -> dict:
        return asdict(self)


class PbtDecider:
    def __init__(self, cfg: PbtConfig, defaults: dict[str, float], size: int, shaping: dict | None = None):
        """``defaults``: the configured hyperparameters; ``shaping``: the env's initial coefficients."""
        self.cfg, self.size = cfg, size
        self.defaults = {k: float(v) for k, v in defaults.items() if k in self.tuned()}
        self.rng = np.random.default_rng(cfg.seed)
        self.members = [Member(dict(self.defaults), _copy_shaping(shaping)) for _ in range(size)]
        for pid in range(1, size):  # SF starts policies > 0 already perturbed, so the population is diverse
            self.members[pid].hyperparameters, self.members[pid].shaping, _ = self._perturb(self.members[pid])

    def tuned(self) -> tuple[str, ...]:
        return PBT_HYPERPARAMS + (("gamma",) if self.cfg.optimize_gamma else ())

    # -- when --------------------------------------------------------------------------------------------------

    def due(self, policy: int, env_steps: int) -> bool:
        return env_steps >= self.cfg.start_after and env_steps - self.members[policy].last_update >= self.cfg.period

    # -- what --------------------------------------------------------------------------------------------------

    def update(self, policy: int, objectives: dict[int, float | None], env_steps: int) -> Decision | None:
        """The decision for ``policy``, or None while some policy has no episodes to rank by."""
        if any(objectives.get(p) is None for p in range(self.size)):
            return None
        me = self.members[policy]
        me.last_update = env_steps
        ranked = sorted(range(self.size), key=lambda p: objectives[p], reverse=True)
        n = math.ceil(self.cfg.replace_fraction * self.size)
        best, worst = ranked[:n], ranked[-n:]
        role = "best" if policy in best else "worst" if policy in worst else "middle"
        decision = Decision(policy, role, float(objectives[policy]), env_steps=env_steps)
        if role == "best":
            decision.hyperparameters, decision.shaping = dict(me.hyperparameters), _copy_shaping(me.shaping)
            return decision
        base = me
        if role == "worst":
            source = best[int(self.rng.integers(len(best)))]
            gap = objectives[source] - objectives[policy]
            if abs(gap) > self.cfg.replace_gap_absolute and abs(gap / (objectives[source] + 1e-8)) > self.cfg.replace_gap:
                decision.copied_from, decision.source_objective = source, float(objectives[source])
                base = self.members[source]
        hyper, shaping, changed = (dict(base.hyperparameters), _copy_shaping(base.shaping), [])
        if policy != 0:
            hyper, shaping, changed = self._perturb(Member(hyper, shaping))
        me.hyperparameters, me.shaping = hyper, shaping
        decision.hyperparameters, decision.shaping, decision.perturbed = dict(hyper), _copy_shaping(shaping), changed
        return decision

    # -- explore -----------------------------------------------------------------------------------------------

    def _perturb(self, member: Member) -> tuple[dict[str, float], dict | None, list[str]]:
        changed = []
        hyper = dict(member.hyperparameters)
        for name in self.tuned():
            if self.rng.random() >= self.cfg.mutation_rate:
                continue
            changed.append(name)
            default = self.defaults[name]
            if hyper[name] != default and self.rng.random() < RESET_TO_DEFAULT_P:
                hyper[name] = default
            elif name == "gamma":
                one_minus = max((1.0 - hyper[name]) * self._factor(*GAMMA_PERTURB), MIN_ONE_MINUS_GAMMA)
                hyper[name] = max(0.0, 1.0 - one_minus)
            else:
                hyper[name] = hyper[name] * self._factor(self.cfg.perturb_min, self.cfg.perturb_max)
        shaping = _copy_shaping(member.shaping)
        if shaping is not None and self.cfg.perturb_shaping:
            shaping = self._perturb_tree(shaping, "shaping", changed)
        return hyper, shaping, changed

    def _factor(self, low: float, high: float) -> float:
        """Multiply or divide (50/50) by U(low, high)."""
        f = float(self.rng.uniform(low, high))
        return f if self.rng.random() < 0.5 else 1.0 / f

    def _perturb_tree(self, value: Any, path: str, changed: list[str]) -> Any:
        if isinstance(value, dict):
            return {k: self._perturb_tree(v, f"{path}.{k}", changed) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._perturb_tree(v, f"{path}[{i}]", changed) for i, v in enumerate(value)]
        if isinstance(value, int | float) and not isinstance(value, bool) and self.rng.random() < self.cfg.mutation_rate:
            changed.append(path)
            return float(value) * self._factor(self.cfg.perturb_min, self.cfg.perturb_max)
        return value

    # -- resume ------------------------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {"members": [asdict(m) for m in self.members], "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.members = [Member(**m) for m in state["members"]]
        self.rng.bit_generator.state = state["rng"]


def _copy_shaping(shaping: dict | None) -> dict | None:
    if shaping is None:
        return None
    return {k: _copy_shaping(v) if isinstance(v, dict) else (list(v) if isinstance(v, list | tuple) else v)
            for k, v in shaping.items()}
