"""The plain components every runtime builds from a config: samplers and learners (no Ray here)."""

from __future__ import annotations

from asyncrl.config.schema import Config
from asyncrl.env_api.factory import load_env_factory
from asyncrl.env_api.spaces import EnvSpaces
from asyncrl.inference.client import InferenceClient
from asyncrl.learning.learner import Learner
from asyncrl.models.actor_critic import ActorCritic
from asyncrl.sampling.sampler import Sampler


def policy_ids(cfg: Config) -> tuple[int, ...]:
    return tuple(range(cfg.population.size))


def state_size(cfg: Config, spaces: EnvSpaces) -> int:
    return ActorCritic(spaces.obs, spaces.action, cfg.model).state_size


def build_sampler(cfg: Config, index: int, client: InferenceClient, state_size: int) -> Sampler:
    pop = cfg.population
    return Sampler(load_env_factory(cfg.env), cfg.runtime.num_envs, cfg.algo.rollout, client, state_size,
                   sampler_index=index, seed=cfg.seed, population_size=pop.size, resample_every=pop.resample_every,
                   mix_in_one_env=pop.mix_in_one_env, opponent_rate=pop.opponent_rate, draw_per=pop.draw_per,
                   num_groups=env_groups(cfg), bootstrap_truncated=cfg.algo.bootstrap_truncated)


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
