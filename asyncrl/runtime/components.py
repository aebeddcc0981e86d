"""Builders shared by the runtimes: samplers, learners, the checks that a config fits its env and machine (no Ray here)."""

from __future__ import annotations

from dataclasses import replace

import torch

from asyncrl.config.schema import Config
from asyncrl.hardware import native_bf16, resolve_inference, resolve_precision
from asyncrl.inference.client import InferenceClient
from asyncrl.learning.learner import Learner
from asyncrl.models.actor_critic import ActorCritic
from asyncrl.sampling.env_factory import EnvSpaces, load_env_factory
from asyncrl.sampling.sampler import Sampler


class DeviceError(Exception):
    """A device was asked for that this machine does not have."""


class PopulationError(Exception):
    """The population does not fit the samplers."""


def policy_ids(cfg: Config) -> tuple[int, ...]:
    return tuple(range(cfg.population.size))


def check_population_fits(cfg: Config, spaces: EnvSpaces, num_samplers: int) -> None:
    """Single-agent envs are dealt to policies once: each policy needs at least one env of its own."""
    envs = num_samplers * cfg.runtime.num_envs
    if spaces.num_agents == 1 and cfg.population.size > envs:
        raise PopulationError(f"population.size={cfg.population.size} is more than the {envs} envs "
                              f"(runtime.num_samplers x runtime.num_envs): each policy of a single-agent env "
                              f"needs an env; raise runtime.num_envs or lower population.size")


def check_eval_fits(cfg: Config, spaces: EnvSpaces) -> None:
    from asyncrl.config.loader import ConfigError

    if cfg.eval.period and spaces.num_agents > 1:
        raise ConfigError(f"eval.period={cfg.eval.period}: in-training evaluation plays single-agent envs, and "
                          f"env {cfg.env.name!r} has {spaces.num_agents} agents; set eval.period=0 (evaluate the "
                          f"policy after training: python -m asyncrl.eval run=RUN_DIR)")


def resolve_device(device: str, cluster_gpus: float | None = None) -> str:
    """``auto``: cuda where there is a GPU (this machine's, or any node's of the cluster the run joined)."""
    has_gpu = torch.cuda.is_available() if cluster_gpus is None else cluster_gpus > 0
    if device == "auto":
        return "cuda" if has_gpu else "cpu"
    if device == "cuda" and not has_gpu:
        where = "torch sees no CUDA device" if cluster_gpus is None else "no node of the cluster has a GPU"
        raise DeviceError(f"runtime.device=cuda but {where}; use runtime.device=cpu or auto")
    return device


def with_hardware_defaults(cfg: Config, device: str) -> tuple[Config, str]:
    """``cfg`` with what depends on the machine decided for a learner on ``device`` (``runtime.precision`` and
    ``runtime.inference`` resolved when ``auto``), and one line that says what and why."""
    precision = resolve_precision(cfg.runtime.precision, device, native_bf16(device))
    inference, why_inference = resolve_inference(cfg.runtime.inference, device)
    runtime = replace(cfg.runtime, precision=precision.value, inference=inference)
    return replace(cfg, runtime=runtime), (f"precision {precision.value} ({precision.reason}), inference "
                                           f"{inference} ({why_inference})")


def precision_on(cfg: Config, device: str) -> str:
    """The precision of a policy copy on ``device``: a CPU copy (a sampler's, or CPU inference beside a GPU
    learner) runs in float32 where this CPU would only emulate bfloat16."""
    if cfg.runtime.precision == "bf16" and device == "cpu" and not native_bf16("cpu"):
        return "fp32"
    return cfg.runtime.precision


def check_checkpoint_fits(cfg: Config, spaces: EnvSpaces, learner_states: dict[int, dict]) -> None:
    """Compare a checkpoint's tensors with the configured model before any actor tries to load them."""
    from asyncrl.run.checkpoint import CheckpointError

    expected = ActorCritic(spaces.obs, spaces.action, cfg.model).state_dict()
    for pid, state in learner_states.items():
        saved = state["model"]
        for name, tensor in expected.items():
            if name not in saved:
                raise CheckpointError(f"checkpoint of policy {pid} has no tensor {name!r}: it was written for "
                                      f"another model config (model.*); use restart_behavior=overwrite or that config")
            if tuple(saved[name].shape) != tuple(tensor.shape):
                raise CheckpointError(f"checkpoint tensor {name!r} of policy {pid} has shape "
                                      f"{tuple(saved[name].shape)}, the configured model needs {tuple(tensor.shape)}")
        extra = sorted(set(saved) - set(expected))
        if extra:
            raise CheckpointError(f"checkpoint of policy {pid} has tensors the configured model lacks ({extra[0]}, ...): "
                                  f"it was written for another model config")


def state_size(cfg: Config, spaces: EnvSpaces) -> int:
    return ActorCritic(spaces.obs, spaces.action, cfg.model).core.state_size


def build_sampler(cfg: Config, index: int, client: InferenceClient, state_size: int) -> Sampler:
    pop = cfg.population
    return Sampler(load_env_factory(cfg.env), cfg.runtime.num_envs, cfg.algo.rollout, client, state_size,
                   sampler_index=index, seed=cfg.seed, population_size=pop.size, resample_every=pop.resample_every,
                   mix_in_one_env=pop.mix_in_one_env, opponent_rate=pop.opponent_rate,
                   num_groups=env_groups(cfg))


def env_groups(cfg: Config) -> int:
    """Two alternating env groups where inference runs elsewhere (stepping one overlaps the other's
    inference), one where the policy runs in the sampler's own process (nothing overlaps there, and one group
    doubles the inference batch); ``runtime.env_groups`` overrides."""
    if cfg.runtime.env_groups is not None:
        return cfg.runtime.env_groups
    return 2 if cfg.runtime.kind == "ray" and cfg.runtime.inference == "remote" else 1


def build_learner(cfg: Config, spaces: EnvSpaces, policy_id: int = 0, device: str = "cpu") -> Learner:
    return Learner(policy_id, spaces.obs, spaces.action, cfg.model, cfg.algo, device=device, seed=cfg.seed,
                   precision=cfg.runtime.precision, budget_steps=cfg.train.env_steps // cfg.population.size)
