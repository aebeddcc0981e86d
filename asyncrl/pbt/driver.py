"""Carries out population decisions between the trainer's loop and a runtime: PBT and the opponent pool.

The trainer calls ``after_training(policy)`` for every learner step. Decisions come from the plain
``PbtDecider``; this module only reads objectives from the run's progress, tells the runtime what to copy or
set, and records each decision (``pbt_log.jsonl``, ``pbt/`` metrics, the console log).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from asyncrl.config.schema import PBT_HYPERPARAMS, Config
from asyncrl.data import Weights
from asyncrl.pbt.decisions import Decision, PbtDecider
from asyncrl.progress import Progress
from asyncrl.runtime.contract import Runtime
from asyncrl.sampling.policy_mapping import OPPONENT_ID_BASE

log = logging.getLogger("asyncrl")


def objective(stats, name: str) -> float | None:
    """Mean of the episode stat ``name`` over the recent episodes; the mean return where it is not reported."""
    values = stats.extras.get(name)
    if values:
        return float(np.mean(values))
    return stats.mean_return()


class PopulationDriver:
    def __init__(self, cfg: Config, runtime: Runtime, progress: Progress, run_dir: Path, write_metrics,
                 state: dict | None = None):
        self.cfg, self.runtime, self.progress = cfg, runtime, progress
        self.write_metrics = write_metrics  # (metrics, frames) -> None
        self.log_path = run_dir / "pbt_log.jsonl"
        state = state or {}
        self.pbt: PbtDecider | None = None
        if cfg.pbt.enabled:
            self.pbt = PbtDecider(cfg.pbt, self._configured(), cfg.population.size, runtime.reward_shaping())
            if state.get("pbt"):
                self.pbt.load_state_dict(state["pbt"])
            else:
                for pid, values in cfg.population.policy_hyperparameters.items():
                    self.pbt.members[int(pid)].hyperparameters.update(values)
            for pid, member in enumerate(self.pbt.members):
                self._apply(pid, member.hyperparameters, member.shaping)
        else:
            for pid, values in cfg.population.policy_hyperparameters.items():
                runtime.set_hyperparameters(int(pid), {**self._configured(), **values})
        # The opponent pool: snapshot id -> weights, oldest first.
        self.pool: dict[int, Weights] = dict(state.get("pool", {}))
        self.next_snapshot = int(state.get("next_snapshot", OPPONENT_ID_BASE))
        self.last_snapshot = {int(k): v for k, v in state.get("last_snapshot", {}).items()}
        if self.pool:
            runtime.set_opponents(dict(self.pool), [])

    def _configured(self) -> dict[str, float]:
        return {name: float(getattr(self.cfg.algo, name)) for name in (*PBT_HYPERPARAMS, "gamma")}

    def after_training(self, policy: int, frames: int) -> None:
        steps = self.progress.policy_steps[policy]
        if self.pbt is not None and self.pbt.due(policy, steps):
            objectives = {pid: objective(s, self.cfg.pbt.objective) for pid, s in self.progress.stats.items()}
            decision = self.pbt.update(policy, objectives, steps)
            if decision is not None:
                self._carry_out(decision, frames)
        pool = self.cfg.population
        if pool.opponent_pool_size and steps - self.last_snapshot.get(policy, 0) >= pool.snapshot_every:
            self._snapshot(policy, steps)

    # -- PBT ---------------------------------------------------------------------------------------------------

    def _apply(self, policy: int, hyperparameters: dict, shaping: dict | None) -> None:
        self.runtime.set_hyperparameters(policy, hyperparameters)
        if shaping is not None:
            self.runtime.set_reward_shaping(policy, shaping)

    def _carry_out(self, d: Decision, frames: int) -> None:
        if d.copied_from is not None:
            self.runtime.copy_policy(d.copied_from, d.policy)
        if d.role != "best":
            self._apply(d.policy, d.hyperparameters, d.shaping)
        with open(self.log_path, "a") as f:
            f.write(json.dumps({"frames": frames, **d.as_json()}) + "\n")
        metrics = {f"pbt/policy{d.policy}/{k}": v for k, v in d.hyperparameters.items()}
        metrics[f"pbt/policy{d.policy}/objective"] = d.objective
        metrics[f"pbt/policy{d.policy}/copied"] = float(d.copied_from is not None)
        self.write_metrics(metrics, frames)
        what = (f"copies policy {d.copied_from} ({d.source_objective:.3g})" if d.copied_from is not None
                else "keeps its weights")
        log.info("pbt: policy %d (%s, objective %.3g) %s; perturbed %s", d.policy, d.role, d.objective, what,
                 ", ".join(d.perturbed) or "nothing")

    # -- opponent pool -----------------------------------------------------------------------------------------

    def _snapshot(self, policy: int, steps: int) -> None:
        self.last_snapshot[policy] = steps
        w = self.runtime.weights(policy)
        sid = self.next_snapshot
        self.next_snapshot += 1
        self.pool[sid] = Weights(sid, w.version, w.state)
        dropped = []
        while len(self.pool) > self.cfg.population.opponent_pool_size:
            dropped.append(next(iter(self.pool)))
            del self.pool[dropped[-1]]
        self.runtime.set_opponents(dict(self.pool), dropped)
        log.info("opponent pool: snapshot %d of policy %d (version %d); %d in the pool", sid, policy, w.version,
                 len(self.pool))

    # -- checkpoints -------------------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {"pbt": None if self.pbt is None else self.pbt.state_dict(), "pool": dict(self.pool),
                "next_snapshot": self.next_snapshot, "last_snapshot": dict(self.last_snapshot)}

    def summary(self) -> dict:
        """Per policy: the hyperparameters and shaping PBT gave it."""
        if self.pbt is None:
            return {}
        return {pid: {"hyperparameters": m.hyperparameters, "shaping": m.shaping}
                for pid, m in enumerate(self.pbt.members)}
