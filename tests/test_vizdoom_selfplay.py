"""Self-play in VizDoom: a population plays duels through the trainer, with PBT and an opponent pool, and
resumes from its population checkpoint."""

from __future__ import annotations

import json

import pytest

from asyncrl.config.loader import load_config
from asyncrl.outputs.checkpoint import CheckpointManager
from asyncrl.sampling.policy_mapping import OPPONENT_ID_BASE
from asyncrl.training.trainer import train

pytestmark = pytest.mark.vizdoom


def test_a_duel_population_trains_both_seats_and_resumes(tmp_path):
    # Matches of 0.05 minutes (105 tics, ~52 steps at frameskip 2) so that episodes, PBT and snapshots
    # all happen within a few thousand steps.
    args = ["experiment=doom_duel_selfplay", "runtime=serial", "runtime.num_samplers=1", "runtime.num_envs=2",
            "population.size=2", "env.kwargs.timelimit_minutes=0.05", "model.core_size=64", "model.conv_fc_size=64",
            "algo.batch_size=256", "pbt.period=500", "pbt.start_after=500", "pbt.replace_gap=0.0",
            "pbt.replace_gap_absolute=0.0", "population.snapshot_every=600", "population.opponent_pool_size=2",
            "population.opponent_rate=0.5", f"run_dir={tmp_path}", "logging.wandb=disabled",
            "logging.tensorboard=false"]
    first = train(load_config([*args, "train.env_steps=3000"]))
    assert first["status"] == "completed"
    for pid in ("0", "1"):
        policy = first["policies"][pid]
        assert policy["env_steps"] > 0 and policy["episodes"] > 0
        assert "frags_mean" in policy and "deaths_mean" in policy and "true_objective_mean" in policy
    decisions = [json.loads(line) for line in (tmp_path / "pbt_log.jsonl").read_text().splitlines()]
    assert decisions and {d["policy"] for d in decisions} == {0, 1}
    saved = CheckpointManager(tmp_path / "checkpoints", 3).load_latest()
    pool = saved["population"]["pool"]
    assert pool and all(sid >= OPPONENT_ID_BASE for sid in pool)
    assert saved["population"]["pbt"]["members"][1]["shaping"]["delta"]["FRAGCOUNT"]  # PBT tunes the shaping

    second = train(load_config([*args, "train.env_steps=4500"]))
    assert second["status"] == "completed" and second["env_steps"] >= 4500
    assert "resuming from" in (tmp_path / "train.log").read_text()
    resumed = CheckpointManager(tmp_path / "checkpoints", 3).load_latest()
    # The pool survived the restart: its snapshots are the saved ones or newer ones that replaced them.
    assert min(resumed["population"]["pool"]) >= min(pool)
    assert resumed["population"]["next_snapshot"] >= saved["population"]["next_snapshot"]
    for pid in (0, 1):
        assert resumed["learners"][pid]["env_steps"] >= saved["learners"][pid]["env_steps"]


def test_population_agents_and_built_in_bots_share_a_deathmatch(tmp_path):
    # 2 population agents + 2 bots in each match: places run from 1 to 4, so the agents' mean place shows the
    # bots were in the frag table too.
    summary = train(load_config([
        "env=doom_duel", "env.kwargs.num_bots=2", "env.kwargs.timelimit_minutes=0.1", "runtime=serial",
        "population.size=2", "runtime.num_samplers=1", "runtime.num_envs=1", "algo.batch_size=128",
        "algo.rollout=16", "model.core_size=64", "train.env_steps=1200", f"run_dir={tmp_path}",
        "logging.wandb=disabled", "logging.tensorboard=false"]))
    assert summary["status"] == "completed"
    places = []
    for pid in ("0", "1"):
        policy = summary["policies"][pid]
        assert policy["episodes"] > 0 and "frags_mean" in policy
        places.append(policy["final_place_mean"])
    assert all(1.0 <= p <= 4.0 for p in places) and max(places) > 2.0
