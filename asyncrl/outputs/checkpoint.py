"""Checkpoints: written atomically, validated on load, the last N kept.

A crash or a kill mid-write leaves a ``.tmp`` file, never a truncated checkpoint under a real name; a
checkpoint that is corrupt anyway (a bad disk, a copy gone wrong) is skipped with a warning and the
previous one is used. When none is usable, resuming stops and says why rather than start over.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from asyncrl.config.schema import Config
from asyncrl.env_api.spaces import EnvSpaces
from asyncrl.models.actor_critic import ActorCritic

log = logging.getLogger(__name__)
FORMAT_VERSION = 1


class CheckpointError(Exception):
    """A checkpoint that cannot be used, explained in one line."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_checkpoint_file(path: Path) -> dict:
    """Load and validate one checkpoint file; raises CheckpointError with the reason."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else 'corrupt'})") from e
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION or "learners" not in state:
        raise CheckpointError(f"checkpoint {path} is not an asyncrl checkpoint of format {FORMAT_VERSION}")
    return state


class CheckpointManager:
    def __init__(self, directory: Path, keep: int):
        self.dir, self.keep = Path(directory), keep
        self.dir.mkdir(parents=True, exist_ok=True)

    def paths(self) -> list[Path]:
        """Checkpoints, oldest first (names sort by env steps, then by save count)."""
        return sorted(self.dir.glob("ckpt_*.pt"))

    def save(self, counters: dict, learners: dict[int, dict], population: dict | None = None) -> Path:
        """``population``: PBT's members and the opponent pool, when there is a population."""
        import io

        state = {"format": FORMAT_VERSION, "counters": counters, "learners": learners, "population": population}
        buf = io.BytesIO()
        torch.save(state, buf)
        path = self.dir / f"ckpt_{counters['env_steps']:014d}_{counters['saves']:06d}.pt"
        atomic_write_bytes(path, buf.getvalue())
        for old in self.paths()[:-self.keep]:
            old.unlink(missing_ok=True)
        return path

    def save_best(self, counters: dict, learners: dict[int, dict], evaluation: dict) -> Path:
        """``best.pt``: the weights of the best evaluation so far (a model-only learner state per policy,
        loadable by asyncrl.eval and asyncrl.export), with that evaluation's metrics. Never rotated."""
        import io

        state = {"format": FORMAT_VERSION, "counters": counters, "learners": learners, "population": None,
                 "eval": evaluation}
        buf = io.BytesIO()
        torch.save(state, buf)
        path = self.dir / "best.pt"
        atomic_write_bytes(path, buf.getvalue())
        return path

    def load_latest(self) -> dict | None:
        """The newest valid checkpoint, or None when there is none; CheckpointError when none is usable."""
        errors = []
        for path in reversed(self.paths()):
            try:
                state = load_checkpoint_file(path)
            except CheckpointError as e:
                errors.append(e)
                continue
            for e in errors:
                log.warning("%s; falling back to the previous checkpoint", e)
            state["path"] = str(path)
            return state
        if errors:
            # Starting from scratch instead would bury the run's past, and rotation would then delete it.
            raise CheckpointError(f"cannot resume from {self.dir}: none of its {len(errors)} checkpoint(s) is "
                                  f"usable ({errors[0]}); restart_behavior=overwrite starts the run over")
        return None


def initial_weights(source: str, policy_ids: list[int]) -> dict[int, dict]:
    """``train.init_from``: the weights each policy of a fresh run starts from, as weights-only learner states.

    ``source`` is a run directory (its latest usable checkpoint) or a checkpoint file. Policy p takes the
    source's policy p where it has one, else the source's first policy.
    """
    path = Path(source)
    what = "expected a run directory with checkpoints/ or a checkpoint file (ckpt_*.pt)"
    if path.is_dir():
        state = CheckpointManager(path / "checkpoints", keep=1).load_latest() if (path / "checkpoints").is_dir() else None
        if state is None:
            raise CheckpointError(f"train.init_from={source} holds no checkpoint: {what}")
    elif path.exists():
        state = load_checkpoint_file(path)
    else:
        raise CheckpointError(f"train.init_from={source} does not exist: {what}")
    learners = state["learners"]
    first = min(learners)
    return {pid: {"model": learners.get(pid, learners[first])["model"]} for pid in policy_ids}


def check_checkpoint_fits(cfg: Config, spaces: EnvSpaces, learner_states: dict[int, dict]) -> None:
    """Compare a checkpoint's tensors with the configured model before any actor tries to load them."""
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
