"""The Ray runtime end to end: remote batched inference, backpressure, and actors built from tests' envs."""

import pytest

from asyncrl.config.loader import load_config
from asyncrl.run.trainer import train

pytestmark = pytest.mark.ray

QUIET = ["logging.wandb=disabled", "logging.tensorboard=false"]


def test_remote_inference_serves_two_samplers(tmp_path):
    cfg = load_config(["runtime=ray", "runtime.inference=remote", "runtime.num_samplers=2", "runtime.num_envs=4",
                       f"run_dir={tmp_path}", "train.env_steps=8000", *QUIET])
    summary = train(cfg)
    assert summary["status"] == "completed" and summary["env_steps"] >= 8000
    assert summary["train_steps"] >= 6
    assert summary["policy_lag"]["max"] <= cfg.algo.max_policy_lag


def test_recurrent_policy_with_a_test_env_factory(tmp_path):
    cfg = load_config(["env=gym", "env.name=cue", "env.id=cue", "env.factory=tests.toy_envs:make_cue_memory",
                       "model.core=gru", "model.core_size=16", "runtime.num_envs=4", "algo.rollout=8",
                       "algo.batch_size=256", f"run_dir={tmp_path}", "train.env_steps=5000", *QUIET])
    summary = train(cfg)
    assert summary["status"] == "completed" and summary["episodes"] > 100
