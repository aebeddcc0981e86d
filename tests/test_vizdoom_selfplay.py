"""Self-play in VizDoom: a population plays duels through the trainer, with PBT and an opponent pool, and
resumes from its population checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from asyncrl.config.loader import load_config
from asyncrl.outputs.checkpoint import CheckpointManager
from asyncrl.sampling.policy_mapping import OPPONENT_ID_BASE
from asyncrl.training.trainer import train

pytestmark = pytest.mark.vizdoom
ROOT = Path(__file__).resolve().parents[1]


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


def test_bot_stage_seeds_self_play_and_rate_py_rates_both_stages_against_the_bot(tmp_path):
    # The duel recipe's path at toy sizes: one policy against the bot, a 2-policy self-play population started
    # from it (train.init_from), then experiments/doom_duel_selfplay/rate.py over both runs.
    small = ["runtime=serial", "runtime.num_samplers=1", "model.core_size=64", "model.conv_fc_size=64",
             "algo.batch_size=128", "algo.rollout=16", "logging.wandb=disabled", "logging.tensorboard=false"]
    bots, selfplay = tmp_path / "doom_duel_bots", tmp_path / "doom_duel_selfplay"
    first = train(load_config(["experiment=doom_duel_bots", "runtime.num_envs=1", "runtime.pin_cores=false",
                               "train.env_steps=300", f"run_dir={bots}", *small]))
    second = train(load_config(["experiment=doom_duel_selfplay", "runtime.num_envs=1", "population.size=2",
                                "env.kwargs.timelimit_minutes=0.05", "train.env_steps=300",
                                f"train.init_from={bots}", f"run_dir={selfplay}", *small]))
    assert first["status"] == second["status"] == "completed"
    assert "start from the weights of" in (selfplay / "train.log").read_text()
    done = subprocess.run([sys.executable, str(ROOT / "experiments/doom_duel_selfplay/rate.py"), str(bots), str(selfplay),
                           "--snapshots", "1", "--bot-matches", "1", "--pair-matches", "1", "--neighbours", "1", "--minutes", "0.05",
                           "--out", str(tmp_path / "rated")], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rated = json.loads((tmp_path / "rated" / "ratings.json").read_text())
    names = [s["name"] for s in rated["snapshots"]]
    assert len(names) == 3 and names[0].startswith("doom_duel_bots/p0@")  # 1 bot-stage + 2 self-play snapshots
    bot_stage_frames = rated["snapshots"][0]["frames"]
    assert bot_stage_frames > 0 and all(s["frames"] > bot_stage_frames for s in rated["snapshots"][1:])
    assert rated["ratings"]["bot"] == 0.0 and len(rated["games"]) == 3 + 2  # each vs the bot; each duels the next one
    assert (tmp_path / "rated" / "rating.png").stat().st_size > 0
    assert "| snapshot |" in done.stdout
    assert all(s["rating_90"][0] <= s["rating"] <= s["rating_90"][1] for s in rated["snapshots"])
    refit = subprocess.run([sys.executable, str(ROOT / "experiments/doom_duel_selfplay/rate.py"), str(bots),
                            "--from-json", str(tmp_path / "rated" / "ratings.json"), "--out", str(tmp_path / "refit")],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert refit.returncode == 0, refit.stderr
    assert json.loads((tmp_path / "refit" / "ratings.json").read_text())["ratings"] == rated["ratings"]
