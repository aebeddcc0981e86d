"""Shared by the tool tests (eval, export): a ready-made run directory and the one-line-error check."""

import torch

from asyncrl.config.loader import load_config
from asyncrl.env_api.factory import probe_spaces
from asyncrl.models.actor_critic import ActorCritic
from asyncrl.outputs.checkpoint import CheckpointManager
from asyncrl.outputs.run_dir import prepare_run_dir

QUIET = ["logging.wandb=disabled", "logging.tensorboard=false"]


def make_run(run_dir, overrides, seed=0):
    """A run directory with config.yaml and one checkpoint of an untrained model, its observation and
    returns normalizers fed with off-centre data so that normalization matters."""
    cfg = load_config([*overrides, f"run_dir={run_dir}", *QUIET])
    prepare_run_dir(cfg)
    spaces = probe_spaces(cfg.env)
    torch.manual_seed(seed)
    model = ActorCritic(spaces.obs, spaces.action, cfg.model)
    box_keys = model.obs_preprocessor.shapes
    model.update_obs_normalizer({k: torch.randn(64, *shape) * 2.0 + 1.0 for k, shape in box_keys.items()})
    model.returns_normalizer.update(torch.randn(64, 1) * 10.0 + 30.0)
    CheckpointManager(run_dir / "checkpoints", keep=1).save({"env_steps": 123, "saves": 1},
                                                            {0: {"model": model.state_dict()}})
    return model.eval()


def one_line_exit_2(capsys, main, argv) -> str:
    """Run a tool's ``main``: it must exit 2 with exactly one line on stderr and nothing on stdout."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]
