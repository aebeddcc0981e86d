"""The run directory: where a run's config, checkpoints, logs and summary live, and whether to resume."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from asyncrl.config.loader import config_to_yaml
from asyncrl.config.schema import Config
from asyncrl.outputs.checkpoint import atomic_write_bytes


class RunDirError(Exception):
    """The run directory cannot be used, explained in one line."""


def resolve_run_dir(cfg: Config) -> Path:
    return Path(cfg.run_dir) if cfg.run_dir else Path("runs") / cfg.name


def _check_deletable(path: Path) -> None:
    """overwrite deletes the run directory: refuse unless it is one (or empty), so a mistyped run_dir=. or
    run_dir=$HOME cannot wipe a tree that asyncrl did not write."""
    if path.is_dir() and ((path / "config.yaml").is_file() or not any(path.iterdir())):
        return
    raise RunDirError(f"run_dir={str(path)!r} exists but is not an asyncrl run directory (no config.yaml), and "
                      f"restart_behavior=overwrite deletes only those; choose a new or an existing run's run_dir=PATH")


def prepare_run_dir(cfg: Config) -> Path:
    """Create (or clear, with restart_behavior=overwrite) the run directory; write the config if it has none."""
    path = resolve_run_dir(cfg)
    try:
        if cfg.restart_behavior == "overwrite" and path.exists():
            _check_deletable(path)
            shutil.rmtree(path)
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise RunDirError(f"run_dir={str(path)!r} is not writable ({e.strerror}); "
                          f"choose a writable directory with run_dir=PATH") from e
    if not (path / "config.yaml").exists():  # a resumed run's is replaced once its checkpoint proved to fit
        write_config(path, cfg)
    return path


def write_config(path: Path, cfg: Config) -> None:
    atomic_write_bytes(path / "config.yaml", config_to_yaml(cfg).encode())


def write_json(path: Path, data: dict) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())
