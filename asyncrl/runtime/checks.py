"""Checks that a config fits its env before anything starts: one line that says what to change (no Ray here)."""

from __future__ import annotations

from asyncrl.config.schema import Config
from asyncrl.env_api.spaces import EnvSpaces
from asyncrl.models.distributions import ActionSpec


class PopulationError(Exception):
    """The population does not fit the samplers."""


def check_population_fits(cfg: Config, spaces: EnvSpaces, num_samplers: int) -> None:
    """Single-agent envs are dealt to policies once: each policy needs at least one env of its own."""
    envs = num_samplers * cfg.runtime.num_envs
    if spaces.num_agents == 1 and cfg.population.size > envs:
        raise PopulationError(f"population.size={cfg.population.size} is more than the {envs} envs "
                              f"(runtime.num_samplers x runtime.num_envs): each policy of a single-agent env "
                              f"needs an env; raise runtime.num_envs or lower population.size")


def check_fits_env(cfg: Config, spaces: EnvSpaces) -> None:
    """What of the config the env's spaces decide: in-training evaluation, the exploration loss."""
    from asyncrl.config.loader import ConfigError

    if cfg.algo.exploration_loss == "symmetric_kl" and ActionSpec.from_space(spaces.action).gaussian_dim:
        raise ConfigError(f"algo.exploration_loss=symmetric_kl needs discrete actions, and env {cfg.env.name!r} has "
                          f"continuous ones ({spaces.action}); use algo.exploration_loss=entropy")
    if cfg.eval.period and spaces.num_agents > 1:
        raise ConfigError(f"eval.period={cfg.eval.period}: in-training evaluation plays single-agent envs, and "
                          f"env {cfg.env.name!r} has {spaces.num_agents} agents; set eval.period=0 (evaluate the "
                          f"policy after training: python -m asyncrl.eval run=RUN_DIR)")
