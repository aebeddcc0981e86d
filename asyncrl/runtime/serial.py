"""All components in one process, one after another: for debugging and fast tests."""

from __future__ import annotations

import torch

from asyncrl.config.schema import Config
from asyncrl.data import Weights
from asyncrl.env_api.factory import probe_spaces
from asyncrl.env_api.spaces import EnvSpaces
from asyncrl.evaluation.evaluator import Evaluator
from asyncrl.inference.client import LocalInference
from asyncrl.inference.policy_runner import PolicyRunner
from asyncrl.outputs.checkpoint import check_checkpoint_fits
from asyncrl.runtime.builders import build_learner, build_sampler, policy_ids, state_size
from asyncrl.runtime.checks import check_fits_env, check_population_fits
from asyncrl.runtime.contract import Events
from asyncrl.runtime.machine import resolve_device, with_hardware_defaults
from asyncrl.runtime.training_queue import TrainingQueue


class SerialRuntime:
    def __init__(self, cfg: Config, learner_states: dict[int, dict] | None = None):
        torch.set_num_threads(cfg.runtime.learner_threads)
        self.cfg = cfg
        self.queue = TrainingQueue(cfg.algo.batch_size, policy_ids(cfg))
        self.spaces: EnvSpaces = probe_spaces(cfg.env)
        num_samplers = cfg.runtime.num_samplers or 1
        check_population_fits(cfg, self.spaces, num_samplers)
        check_fits_env(cfg, self.spaces)
        if learner_states:
            check_checkpoint_fits(cfg, self.spaces, learner_states)
        self.device = resolve_device(cfg.runtime.device)
        cfg, self.hardware = with_hardware_defaults(cfg, self.device)
        self.cfg = cfg
        self.learners = {pid: build_learner(cfg, self.spaces, pid, self.device) for pid in policy_ids(cfg)}
        for pid, state in (learner_states or {}).items():
            self.learners[pid].load_state_dict(state, hyperparameters=cfg.pbt.enabled)
        self.runner = PolicyRunner(self.spaces.obs, self.spaces.action, cfg.model, policy_ids(cfg), device=self.device,
                                   precision=cfg.runtime.precision)
        for learner in self.learners.values():
            self.runner.set_weights(learner.weights())
        size = state_size(cfg, self.spaces)
        self.samplers = [build_sampler(cfg, i, LocalInference(self.runner), size)
                         for i in range(num_samplers)]
        self.evaluator = Evaluator(cfg, self.spaces) if cfg.eval.period else None
        self.finished_evaluations: list = []

    @property
    def env_steps(self) -> int:
        """Agent steps this runtime collected since it started."""
        return self.queue.collected_steps

    def start_evaluation(self, env_steps: int) -> bool:
        """Evaluate ``eval.policy``'s current weights now (one process: the evaluation blocks training)."""
        if self.evaluator is None:
            return False
        weights = self.learners[self.cfg.eval.policy].weights()
        self.finished_evaluations.append((self.evaluator.evaluate(weights, env_steps), lambda: weights))
        return True

    def finish_evaluation(self, timeout: float) -> list:
        """Evaluations started after the last poll (they ran to completion when started)."""
        finished, self.finished_evaluations = self.finished_evaluations, []
        return finished

    def poll(self) -> Events:
        events = Events()
        events.evaluated, self.finished_evaluations = self.finished_evaluations, []
        for sampler in self.samplers:
            trajectories, meta = sampler.collect()
            for trajectory in trajectories:
                self.queue.add(trajectory.policy_id, trajectory, trajectory.num_steps)
            events.collected.append(meta)
        for pid, learner in self.learners.items():
            while (batch := self.queue.next_batch(pid)) is not None:
                metrics = learner.train(batch)
                self.runner.set_weights(learner.weights())
                events.trained.append((pid, metrics))
        return events

    # -- population ------------------------------------------------------------------------------------------

    def copy_policy(self, source: int, target: int) -> None:
        self.learners[target].copy_from(self.learners[source].state_dict())
        self.runner.set_weights(self.learners[target].weights())

    def set_hyperparameters(self, policy: int, values: dict[str, float]) -> None:
        self.learners[policy].set_hyperparameters(values)

    def set_reward_shaping(self, policy: int, coeffs: dict) -> None:
        for sampler in self.samplers:
            sampler.set_reward_shaping(policy, coeffs)

    def reward_shaping(self) -> dict | None:
        return self.samplers[0].reward_shaping()

    def weights(self, policy: int) -> Weights:
        return self.learners[policy].weights()

    def set_opponents(self, snapshots: dict[int, Weights], dropped: list[int]) -> None:
        for w in snapshots.values():
            self.runner.set_weights(w)
        for sampler in self.samplers:
            sampler.set_opponents(sorted(snapshots))
        self.runner.drop(dropped)

    def layout(self) -> str:
        return f"{len(self.samplers)} sampler(s) x {self.cfg.runtime.num_envs} envs in this process"

    def component_times(self) -> dict[str, dict[str, float]]:
        return {}  # samplers and learners report with their results; inference runs inside the samplers

    def learner_states(self) -> dict[int, dict]:
        return {pid: learner.state_dict() for pid, learner in self.learners.items()}

    def shutdown(self) -> None:
        for sampler in self.samplers:
            sampler.close()
        if self.evaluator is not None:
            self.evaluator.close()
