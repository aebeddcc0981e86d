"""A trained policy from a run directory (its latest valid checkpoint) or from one checkpoint file.

The run's ``config.yaml`` is the resolved config the run trained with; it says how to build the env and
the model, so nothing but the path is needed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from asyncrl.config.schema import Config, ConfigValueError
from asyncrl.env_api.factory import probe_spaces
from asyncrl.env_api.spaces import EnvSpaces
from asyncrl.evaluation.cli_args import UsageError
from asyncrl.models.actor_critic import ActorCritic
from asyncrl.outputs.checkpoint import (
    CheckpointError,
    CheckpointManager,
    check_checkpoint_fits,
    load_checkpoint_file,
)

log = logging.getLogger(__name__)
WHAT_RUN_IS = "expected a run directory (with config.yaml and checkpoints/) or a checkpoint file (ckpt_*.pt)"


@dataclass
class LoadedPolicy:
    cfg: Config
    model: ActorCritic  # on the CPU, in eval mode
    spaces: EnvSpaces
    policy_id: int
    checkpoint: Path
    env_steps: int  # the run's env steps when the checkpoint was written
    out_dir: Path  # where results go: the run directory, or beside a checkpoint file


def load_run_config(path: Path) -> Config:
    """A run's ``config.yaml`` as a typed ``Config`` (validated as at training time)."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.load(path))
        cfg = OmegaConf.to_object(merged)
    except ConfigValueError as e:
        raise UsageError(f"{path}: {e.key}={e.given!r} is invalid ({e.hint}); is it an asyncrl config.yaml?") from e
    except (OmegaConfBaseException, OSError, ValueError, yaml.YAMLError) as e:
        first = (str(e).splitlines() or [type(e).__name__])[0]
        raise UsageError(f"{path} is not a config.yaml this asyncrl can read ({first}); "
                         f"expected the config.yaml that asyncrl.train wrote") from e
    assert isinstance(cfg, Config)
    return cfg


def _latest_valid_checkpoint(run_dir: Path) -> tuple[Path, dict]:
    paths = CheckpointManager(run_dir / "checkpoints", keep=1).paths() if (run_dir / "checkpoints").is_dir() else []
    errors = []
    for path in reversed(paths):
        try:
            state = load_checkpoint_file(path)
        except CheckpointError as e:
            errors.append(str(e))
            continue
        if errors:
            log.warning("skipped %d unusable newer checkpoint(s): %s", len(errors), errors[0])
        return path, state
    why = f" ({errors[0]})" if errors else ""
    raise UsageError(f"run={run_dir} has no valid checkpoint in {run_dir / 'checkpoints'}{why}; "
                     f"train it first, or pass a checkpoint file with run=PATH/checkpoints/ckpt_*.pt")


def resolve(run: str) -> tuple[Path, dict, Path, Path]:
    """``run=PATH`` -> ``(checkpoint path, checkpoint state, config.yaml path, output directory)``."""
    path = Path(run)
    if not path.exists():
        raise UsageError(f"run={run} does not exist: {WHAT_RUN_IS}")
    if path.is_dir():
        if not (path / "config.yaml").is_file():
            raise UsageError(f"run={run} is not a run directory (no config.yaml in it): {WHAT_RUN_IS}")
        ckpt, state = _latest_valid_checkpoint(path)
        return ckpt, state, path / "config.yaml", path
    # A checkpoint file: its config is in its run directory (checkpoints/ sits in it) or beside it.
    candidates = [path.parent / "config.yaml", path.parent.parent / "config.yaml"]
    config = next((c for c in candidates if c.is_file()), None)
    if config is None:
        raise UsageError(f"no config.yaml beside checkpoint {path} or in its run directory {path.parent.parent}; "
                         f"evaluate the run directory, or copy the run's config.yaml beside the checkpoint")
    state = load_checkpoint_file(path)
    return path, state, config, path.parent


def load_policy(run: str, policy_id: int = 0) -> LoadedPolicy:
    """Resolve ``run``, read its config, build the env's spaces and the model with the saved weights."""
    ckpt, state, config_path, out_dir = resolve(run)
    cfg = load_run_config(config_path)
    learners = state["learners"]
    if policy_id not in learners:
        raise UsageError(f"policy={policy_id} is not in checkpoint {ckpt}: it holds policies "
                         f"{', '.join(str(p) for p in sorted(learners))}")
    try:
        spaces = probe_spaces(cfg.env)
    except gym.error.Error as e:  # e.g. an id this gymnasium does not know
        raise UsageError(f"the run's env (env.id={cfg.env.id!r}) cannot be built: {type(e).__name__}: "
                         f"{str(e).splitlines()[0]}") from e
    learner = learners[policy_id]
    check_checkpoint_fits(cfg, spaces, {policy_id: learner})
    model = ActorCritic(spaces.obs, spaces.action, cfg.model)
    model.load_state_dict(learner["model"])
    model.eval()
    env_steps = int(state.get("counters", {}).get("env_steps", 0))
    return LoadedPolicy(cfg, model, spaces, policy_id, ckpt, env_steps, out_dir)
