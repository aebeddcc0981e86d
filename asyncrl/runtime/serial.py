"""All components in one process, one after another: for debugging and fast tests."""

from __future__ import annotations

import torch

from asyncrl.config.schema import Config
from asyncrl.inference.client import LocalInference
from asyncrl.inference.policy_runner import PolicyRunner
from asyncrl.runtime.components import (
    EnvSpaces,
    build_learner,
    build_sampler,
    check_checkpoint_fits,
    probe_spaces,
    resolve_device,
    state_size,
)
from asyncrl.runtime.coordinator import Coordinator
from asyncrl.runtime.events import Events


class SerialRuntime:
    def __init__(self, cfg: Config, coordinator: Coordinator, learner_states: dict[int, dict] | None = None):
        torch.set_num_threads(cfg.runtime.learner_threads)
        self.cfg, self.coordinator = cfg, coordinator
        self.spaces: EnvSpaces = probe_spaces(cfg.env)
        if learner_states:
            check_checkpoint_fits(cfg, self.spaces, learner_states)
        self.device = resolve_device(cfg.runtime.device)
        self.learner = build_learner(cfg, self.spaces, device=self.device)
        if learner_states:
            self.learner.load_state_dict(learner_states[0])
        self.runner = PolicyRunner(self.spaces.obs, self.spaces.action, cfg.model, device=self.device)
        self.runner.set_weights(self.learner.weights())
        size = state_size(cfg, self.spaces)
        self.samplers = [build_sampler(cfg, i, LocalInference(self.runner), size)
                         for i in range(cfg.runtime.num_samplers)]

    def poll(self) -> Events:
        events = Events()
        for sampler in self.samplers:
            trajectories, meta = sampler.collect()
            self.coordinator.add(trajectories, meta)
            events.collected.append(meta)
        while (batch := self.coordinator.next_batch(0)) is not None:
            metrics = self.learner.train([t for chunk in batch for t in chunk])
            self.runner.set_weights(self.learner.weights())
            events.trained.append((0, metrics))
        return events

    def learner_states(self) -> dict[int, dict]:
        return {0: self.learner.state_dict()}

    def shutdown(self) -> None:
        for sampler in self.samplers:
            sampler.close()
