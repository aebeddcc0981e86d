"""Evaluation during training: the given weights play whole episodes on an env of the evaluator's own.

Every evaluation plays the same seeds, so two evaluations differ by the weights alone (in a deterministic
env, with greedy actions, exactly). Single-agent envs; no Ray here (the runtime makes it an actor).
"""

from __future__ import annotations

import time

import numpy as np

from asyncrl.config.schema import Config
from asyncrl.data import Weights
from asyncrl.env_api.factory import load_env_factory
from asyncrl.env_api.spaces import EnvSpaces
from asyncrl.evaluation.episodes import play
from asyncrl.evaluation.stats import mean_stats, summarize
from asyncrl.models.actor_critic import ActorCritic, load_numpy_state_dict

EVAL_ENV_INDEX = 1_000_000  # passed to the env factory; samplers' envs count from 0
EVAL_SEED_OFFSET = 1_000_000  # evaluation episodes never replay a sampler env's seeds


class Evaluator:
    def __init__(self, cfg: Config, spaces: EnvSpaces):
        self.cfg = cfg.eval
        self.seed = cfg.seed + EVAL_SEED_OFFSET
        self.env = load_env_factory(cfg.env)(EVAL_ENV_INDEX)
        self.model = ActorCritic(spaces.obs, spaces.action, cfg.model).eval()

    def evaluate(self, weights: Weights, env_steps: int) -> dict:
        """Metrics of ``eval.episodes`` episodes with ``weights``: ``return_mean/std``, ``length_mean``,
        ``cut`` (episodes stopped by ``max_steps``), the mean of each episode stat, and bookkeeping
        (``policy``, ``version``, ``env_steps`` when the evaluation was asked for, ``seconds`` it took)."""
        start = time.perf_counter()
        load_numpy_state_dict(self.model, weights.state)
        episodes = play(self.model, self.env, self.cfg.episodes, self.seed, self.cfg.greedy, self.cfg.max_steps)
        returns = summarize([e.ret for e in episodes])
        return {"policy": weights.policy_id, "version": weights.version, "env_steps": env_steps,
                "episodes": len(episodes), "return_mean": returns["mean"], "return_std": returns["std"],
                "length_mean": float(np.mean([e.length for e in episodes])),
                "cut": sum(e.cut for e in episodes),
                **mean_stats([e.stats for e in episodes]), "seconds": time.perf_counter() - start}

    def close(self) -> None:
        self.env.close()
