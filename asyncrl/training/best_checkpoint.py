"""In-training evaluations as they come back: logged, written as ``eval/`` metrics, and the weights of the best so
far kept as ``checkpoints/best.pt`` (by ``eval.metric``), which ``asyncrl.eval`` and ``asyncrl.export`` take like
any checkpoint."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import torch

from asyncrl.config.schema import EvalConfig
from asyncrl.data import Weights
from asyncrl.outputs.checkpoint import CheckpointManager
from asyncrl.outputs.metrics_writer import MetricsWriter
from asyncrl.training.run_state import RunState

log = logging.getLogger("asyncrl")


class BestCheckpoint:
    def __init__(self, cfg: EvalConfig, frameskip: int, ckpts: CheckpointManager):
        self.cfg, self.frameskip, self.ckpts = cfg, frameskip, ckpts
        self.last: dict | None = None  # the latest evaluation's results
        self.warned_metric = False  # an eval.metric the env does not report is said once

    def record(self, result: dict, weights: Callable[[], Weights], state: RunState, writer: MetricsWriter) -> None:
        """Log an evaluation; keep its weights as ``best.pt`` when it beats every earlier one."""
        cfg = self.cfg
        self.last = result
        frames = result["env_steps"] * self.frameskip
        writer.write({f"eval/{k}": float(v) for k, v in result.items() if k not in ("policy", "version", "env_steps")},
                     frames)
        value = self._metric(result)
        improved = state.best_eval is None or value > state.best_eval["value"]
        log.info("evaluation at %s frames (policy %d, version %d): return %.3f +- %.3f over %d episodes%s",
                 f"{frames:,}", result["policy"], result["version"], result["return_mean"], result["return_std"],
                 result["episodes"], " | new best, saved checkpoints/best.pt" if improved else "")
        if not improved:
            return
        w = weights()
        model = {k: torch.from_numpy(np.array(v, copy=True)) for k, v in w.state.items()}
        learner = {"policy_id": w.policy_id, "version": w.version, "env_steps": result["env_steps"], "model": model}
        state.best_eval = {"value": float(value), "metric": cfg.metric, **result}
        self.ckpts.save_best({**state.to_checkpoint(), "env_steps": result["env_steps"]}, {w.policy_id: learner},
                             result)

    def _metric(self, result: dict) -> float:
        metric = self.cfg.metric
        value = result.get("return_mean" if metric == "return" else metric)
        if value is None:
            if not self.warned_metric:
                log.warning("eval.metric=%s is not among this env's evaluation results (%s); keeping best.pt by "
                            "the return", metric, ", ".join(sorted(result)))
                self.warned_metric = True
            value = result["return_mean"]
        return value
