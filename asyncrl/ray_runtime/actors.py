"""Thin Ray actors over the plain classes. Each method delegates; nothing here computes.

Their calls record no Ray task events: a run makes several calls a second for days, and Ray keeps a record of
up to 100k tasks in its GCS for the dashboard, which grew gcs_server by 98% an hour in a doom_basic soak
(benchmarks/soak.py; 2% without them). The trainer's own timing and heartbeats cover what they would show."""

from __future__ import annotations

import os
import time

import ray
import torch

from asyncrl.config.schema import Config
from asyncrl.data import ObsDict, PolicyOutput, Weights
from asyncrl.env_api.factory import probe_spaces
from asyncrl.env_api.spaces import EnvSpaces
from asyncrl.evaluation.evaluator import Evaluator
from asyncrl.inference.batching import BatchingInference
from asyncrl.inference.client import LocalInference
from asyncrl.inference.policy_runner import MissingWeights, PolicyRunner
from asyncrl.runtime.affinity import learner_cores, pin_process, sampler_core
from asyncrl.runtime.builders import build_learner, build_sampler, policy_ids
from asyncrl.runtime.machine import precision_on


class RayInferenceClient:
    """Sampler side of remote inference. A handle keeps the request beside its reply's ref, so a
    request lost with a dying inference actor is sent again once Ray has restarted it (and once the driver
    has sent the restarted process its weights)."""

    RETRY_FOR_S = 120.0

    def __init__(self, server: ray.actor.ActorHandle | None):
        self.server = server  # None until the driver sends it

    def submit(self, policy_id: int, obs: ObsDict, rnn_state) -> tuple:
        return self.server.infer.remote(policy_id, obs, rnn_state), (policy_id, obs, rnn_state)

    def result(self, handle: tuple) -> PolicyOutput:
        ref, request = handle
        deadline = time.monotonic() + self.RETRY_FOR_S
        while True:
            try:
                return ray.get(ref)
            except (ray.exceptions.RayActorError, MissingWeights):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
                ref = self.server.infer.remote(*request)


@ray.remote(enable_task_events=False)
class SamplerActor:
    def __init__(self, cfg: Config, index: int, core_index: int, state_size: int):
        """``core_index``: its rank among the samplers of its node. Every argument is small and passed by value:
        Ray re-runs this constructor with the same arguments when it restarts the actor, and an argument it had
        put in the object store (weights; a 3x72x128 image space is already over its 100 kB inline limit; an
        actor handle) is gone by then. Weights (local inference) or the inference actor (remote) come after
        construction, by ``set_weights`` or ``set_inference``."""
        if cfg.runtime.pin_cores:
            # Before the envs start, so that their simulator processes inherit it.
            pin_process({sampler_core(core_index, cfg.runtime.learner_threads)})
        torch.set_num_threads(cfg.runtime.sampler_threads)
        self.runner = None
        if cfg.runtime.inference == "local":
            spaces = probe_spaces(cfg.env)
            self.runner = PolicyRunner(spaces.obs, spaces.action, cfg.model, policy_ids(cfg),
                                       precision=precision_on(cfg, "cpu"))
            client = LocalInference(self.runner)
        else:
            client = RayInferenceClient(None)
        self.sampler = build_sampler(cfg, index, client, state_size)
        self.policy_ids = policy_ids(cfg)

    def collect(self) -> tuple:
        """(metadata, then one trajectory per population policy, None for one that played no step here): called
        with ``num_returns=1 + population size``, so that each learner gets a ref to its own data only."""
        # A restarted process (or one whose set-up is still on its way) steps nothing and says what it lacks.
        if self.runner is not None and (missing := self.runner.missing()):
            raise MissingWeights(f"sampler process {os.getpid()} has no weights for policies {missing}")
        if self.runner is None and self.sampler.client.server is None:
            raise MissingWeights(f"sampler process {os.getpid()} has no inference actor to ask")
        trajectories, meta = self.sampler.collect()
        by_policy = {t.policy_id: t for t in trajectories}
        return (meta, *(by_policy.get(pid) for pid in self.policy_ids))

    def set_inference(self, server: ray.actor.ActorHandle) -> None:
        self.sampler.client.server = server

    def set_weights(self, weights: Weights) -> None:
        if self.runner is not None:
            self.runner.set_weights(weights)

    def set_reward_shaping(self, policy_id: int, coeffs: dict) -> None:
        self.sampler.set_reward_shaping(policy_id, coeffs)

    def reward_shaping(self) -> dict | None:
        return self.sampler.reward_shaping()

    def set_opponents(self, snapshot_ids: list[int], dropped: list[int]) -> None:
        self.sampler.set_opponents(snapshot_ids)
        if self.runner is not None:
            self.runner.drop(dropped)

    def close(self) -> None:
        self.sampler.close()

    def pid(self) -> int:
        return os.getpid()

    def nodes(self) -> tuple[str, str | None]:
        """(this sampler's node, its inference actor's node or None with local inference)."""
        server = getattr(self.sampler.client, "server", None)
        return ray.get_runtime_context().get_node_id(), None if server is None else ray.get(server.node.remote())


@ray.remote(enable_task_events=False)
class InferenceActor:
    def __init__(self, cfg: Config, device: str):
        """Small arguments only, as the sampler's; the weights come by ``set_weights``."""
        torch.set_num_threads(cfg.runtime.inference_threads)
        spaces = probe_spaces(cfg.env)
        runner = PolicyRunner(spaces.obs, spaces.action, cfg.model, policy_ids(cfg), device=device,
                              precision=precision_on(cfg, device))
        self.server = BatchingInference(runner)

    async def infer(self, policy_id: int, obs: ObsDict, rnn_state) -> PolicyOutput:
        return await self.server.infer(policy_id, obs, rnn_state)

    async def set_weights(self, weights: Weights) -> None:
        self.server.runner.set_weights(weights)

    async def drop(self, policy_ids: list[int]) -> None:
        self.server.runner.drop(policy_ids)

    async def pid(self) -> int:
        return os.getpid()

    async def node(self) -> str:
        return ray.get_runtime_context().get_node_id()

    async def batch_stats(self) -> dict[str, int]:
        return {"batches": self.server.batches, "requests": self.server.requests, "samples": self.server.samples}

    async def timing(self) -> dict[str, float]:
        return self.server.timing()


@ray.remote(enable_task_events=False)
class EvaluatorActor:
    def __init__(self, cfg: Config):
        # Evaluation must not take CPU from sampling and learning: it runs on what they leave idle.
        os.nice(10)
        torch.set_num_threads(1)
        self.evaluator = Evaluator(cfg, probe_spaces(cfg.env))

    def evaluate(self, weights: Weights, env_steps: int) -> tuple[dict, int]:
        """The evaluation's metrics, and this process's id: a restart between two evaluations shows there."""
        return self.evaluator.evaluate(weights, env_steps), os.getpid()

    def close(self) -> None:
        self.evaluator.close()

    def pid(self) -> int:
        return os.getpid()


@ray.remote(enable_task_events=False)
class LearnerActor:
    def __init__(self, cfg: Config, spaces: EnvSpaces, policy_id: int, device: str, state: dict | None = None,
                 restore_hyperparameters: bool = False):
        threads = cfg.runtime.learner_threads
        if cfg.runtime.pin_cores:
            cores = learner_cores(threads)
            pin_process(cores)
            # More threads than cores makes OpenMP's threads spin-wait for each other: 155 frames/s instead of
            # 4.8k measured with 2 threads on the learner's one core (benchmarks/RESULTS.md).
            threads = min(threads, len(cores))
        torch.set_num_threads(threads)
        self.learner = build_learner(cfg, spaces, policy_id, device)
        if state is not None:
            self.learner.load_state_dict(state, hyperparameters=restore_hyperparameters)

    @ray.method(num_returns=2)
    def train(self, *trajectories):
        """Chunks of this learner's policy (Ray resolves their refs); the metrics and the new weights."""
        metrics = self.learner.train(list(trajectories))
        return metrics, self.learner.weights()

    def weights(self) -> Weights:
        return self.learner.weights()

    def state_dict(self) -> dict:
        return self.learner.state_dict()

    def copy_from(self, source: dict) -> None:
        self.learner.copy_from(source)

    def set_hyperparameters(self, values: dict[str, float]) -> None:
        self.learner.set_hyperparameters(values)

    def pid(self) -> int:
        return os.getpid()
