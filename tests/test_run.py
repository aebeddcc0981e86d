"""Run outputs: checkpoints, resume, summary.json, the command line and its stops."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from asyncrl.config.loader import load_config
from asyncrl.outputs.checkpoint import (
    CheckpointError,
    CheckpointManager,
    initial_weights,
    load_checkpoint_file,
)
from asyncrl.training.trainer import train

QUIET = ["logging.wandb=disabled", "logging.tensorboard=false"]
REPO = Path(__file__).resolve().parents[1]


def _counters(n):
    return {"env_steps": n, "saves": n}


def test_checkpoints_keep_the_last_n(tmp_path):
    manager = CheckpointManager(tmp_path, keep=3)
    for n in range(1, 6):
        manager.save(_counters(n), {0: {"w": n}})
    assert [load_checkpoint_file(p)["counters"]["env_steps"] for p in manager.paths()] == [3, 4, 5]
    assert manager.load_latest()["learners"][0]["w"] == 5


def test_a_corrupt_latest_checkpoint_falls_back_to_the_previous(tmp_path, caplog):
    manager = CheckpointManager(tmp_path, keep=3)
    manager.save(_counters(1), {0: {"w": 1}})
    latest = manager.save(_counters(2), {0: {"w": 2}})
    latest.write_bytes(latest.read_bytes()[: 100])  # truncated, as by a full disk
    (tmp_path / "ckpt_00000000000009_000009.pt.tmp").write_bytes(b"half-written")
    state = manager.load_latest()
    assert state["learners"][0]["w"] == 1
    assert "unreadable" in caplog.text


def test_loading_a_missing_or_foreign_file_says_why(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint_file(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="unreadable"):
        load_checkpoint_file(tmp_path / "junk.pt")


def test_a_rerun_resumes_with_counters_and_weights(tmp_path):
    args = ["runtime=serial", f"run_dir={tmp_path}", "runtime.num_envs=4", *QUIET]
    first = train(load_config([*args, "train.env_steps=3000"]))
    assert first["status"] == "completed" and first["env_steps"] >= 3000
    assert set(first["time_breakdown"]) == {"samplers", "learner"}
    assert sum(first["time_breakdown"]["samplers"].values()) == pytest.approx(1.0)
    version_after_first = CheckpointManager(tmp_path / "checkpoints", 3).load_latest()["learners"][0]["version"]
    second = train(load_config([*args, "train.env_steps=6000"]))
    assert second["env_steps"] >= 6000
    assert second["train_steps"] > first["train_steps"]
    assert second["wall_s"] > first["wall_s"]
    latest = CheckpointManager(tmp_path / "checkpoints", 3).load_latest()
    assert latest["learners"][0]["version"] > version_after_first
    assert "resuming from" in (tmp_path / "train.log").read_text()


def test_overwrite_starts_over(tmp_path):
    args = ["runtime=serial", f"run_dir={tmp_path}", "runtime.num_envs=4", "train.env_steps=2000", *QUIET]
    train(load_config(args))
    again = train(load_config([*args, "restart_behavior=overwrite"]))
    assert again["train_steps"] <= 3 and again["env_steps"] < 4000


def _cli(args, cwd, **kw):
    return subprocess.Popen([sys.executable, "-m", "asyncrl.train", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kw)


def test_cli_trains_writes_summary_and_a_rerun_resumes(tmp_path):
    args = ["runtime=serial", "experiment=cli_run", "train.env_steps=2000", "logging.wandb=offline"]
    proc = _cli(args, tmp_path)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    run_dir = tmp_path / "runs" / "cli_run"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["env_steps"] >= 2000 and summary["frames"] >= 2000
    for key in ("wall_s", "fps", "episodes", "policies", "policy_lag"):
        assert key in summary
    assert (run_dir / "config.yaml").is_file() and list((run_dir / "checkpoints").glob("ckpt_*.pt"))
    assert list((run_dir / "tensorboard").iterdir()) and (run_dir / "wandb").is_dir()
    proc = _cli(args, tmp_path)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0 and "already reached" in out


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_checkpoints_and_marks_the_summary(tmp_path, sig):
    proc = _cli(["runtime=serial", f"run_dir={tmp_path}", "train.env_steps=100000000", "logging.wandb=disabled"], REPO)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob("tensorboard")) and time.monotonic() < deadline:
        time.sleep(0.2)  # the run has started once its directory fills
    # Let it train a little, then stop it.
    time.sleep(3)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=30)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "interrupted", out
    assert list((tmp_path / "checkpoints").glob("ckpt_*.pt"))


def test_a_checkpoint_of_another_model_is_refused_in_one_line(tmp_path):
    args = ["runtime=serial", f"run_dir={tmp_path}", "runtime.num_envs=4", "train.env_steps=1000", *QUIET]
    train(load_config(args))
    with pytest.raises(CheckpointError) as err:
        train(load_config([*args, "train.env_steps=2000", "model.mlp_layers=[32,32]"]))
    message = str(err.value)
    assert "\n" not in message and "(64, 4)" in message and "(32, 4)" in message
    # The refused resume leaves the run's config.yaml describing its checkpoints, so eval/export still work.
    assert "- 64" in (tmp_path / "config.yaml").read_text() and "- 32" not in (tmp_path / "config.yaml").read_text()


def test_init_from_starts_every_policy_from_the_source_weights_with_fresh_counters(tmp_path):
    source_dir, seeded_dir = tmp_path / "source", tmp_path / "seeded"
    args = ["runtime=serial", "runtime.num_envs=4", *QUIET]
    train(load_config([*args, f"run_dir={source_dir}", "train.env_steps=2000"]))
    source = CheckpointManager(source_dir / "checkpoints", 3).load_latest()["learners"][0]["model"]
    states = initial_weights(str(source_dir), [0, 1])
    assert set(states) == {0, 1} and all(set(s) == {"model"} for s in states.values())
    from asyncrl.runtime.serial import SerialRuntime

    cfg = load_config([*args, "population.size=2", f"train.init_from={source_dir}"])
    runtime = SerialRuntime(cfg, states)
    try:
        for pid in (0, 1):
            learner = runtime.learners[pid]
            weights = learner.model.state_dict()
            assert all(torch.equal(weights[k], source[k]) for k in source), pid  # normalizer buffers included
            assert learner.version == 0 and learner.env_steps == 0 and not learner.optimizer.state
    finally:
        runtime.shutdown()
    # Through train(): the run starts at 0 env steps from the source's weights and says so; a resume ignores it.
    checkpoint_file = CheckpointManager(source_dir / "checkpoints", 3).paths()[-1]
    summary = train(load_config([*args, f"run_dir={seeded_dir}", "train.env_steps=1000",
                                 f"train.init_from={checkpoint_file}"]))
    assert summary["status"] == "completed" and summary["env_steps"] < 2000
    assert "start from the weights of" in (seeded_dir / "train.log").read_text()
    resumed = train(load_config([*args, f"run_dir={seeded_dir}", "train.env_steps=2000",
                                 f"train.init_from={tmp_path / 'gone'}"]))  # not read: the run has its own
    assert resumed["env_steps"] >= 2000


def test_init_from_a_path_without_a_checkpoint_is_refused_in_one_line(tmp_path):
    args = ["runtime=serial", f"run_dir={tmp_path / 'run'}", "train.env_steps=1000", *QUIET]
    for source, why in ((tmp_path / "nope", "does not exist"), (tmp_path, "holds no checkpoint")):
        with pytest.raises(CheckpointError, match=why) as err:
            train(load_config([*args, f"train.init_from={source}"]))
        assert "\n" not in str(err.value) and "expected a run directory" in str(err.value)


def test_multirun_runs_every_point_of_the_sweep_and_resumes_it(tmp_path, caplog):
    from asyncrl.train import main

    args = ["-m", "env=cartpole", "runtime=serial", "runtime.num_envs=4", "train.env_steps=3000", "seed=0,1",
            "algo.lr=0.001,0.0003", f"run_dir={tmp_path}", *QUIET]
    assert main(args) == 0
    jobs = sorted(p.name for p in tmp_path.iterdir())
    assert jobs == ["seed=0,algo.lr=0.0003", "seed=0,algo.lr=0.001", "seed=1,algo.lr=0.0003",
                    "seed=1,algo.lr=0.001"]
    for job in jobs:
        summary = json.loads((tmp_path / job / "summary.json").read_text())
        assert summary["status"] == "completed" and summary["env_steps"] >= 3000
        seed, lr = job.split(",")
        config = (tmp_path / job / "config.yaml").read_text()
        assert f"seed: {seed.split('=')[1]}" in config and f"lr: {lr.split('=')[1]}" in config
    caplog.clear()
    assert main(args) == 0  # the same sweep again: every job has its budget already
    assert caplog.text.count("already reached train.env_steps") == 4


def test_a_bad_point_stops_the_sweep_before_any_job_starts(tmp_path, capsys):
    from asyncrl.train import main

    assert main(["-m", "env=cartpole", "runtime=serial", "algo.lr=0.001,-1", f"run_dir={tmp_path}", *QUIET]) == 2
    assert "algo.lr" in capsys.readouterr().err and not list(tmp_path.iterdir())
