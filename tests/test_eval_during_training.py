"""Evaluation during training: the latest weights play fixed seeds every eval.period steps; best.pt keeps the
best of them, exactly the weights that scored it."""

import itertools

import pytest

from asyncrl.config.loader import load_config
from asyncrl.env_api.factory import load_env_factory
from asyncrl.evaluation.episodes import play
from asyncrl.evaluation.evaluator import EVAL_SEED_OFFSET
from asyncrl.evaluation.loading import load_policy
from asyncrl.training.trainer import train

QUIET = ["logging.wandb=disabled", "logging.tensorboard=false", "logging.console_every_s=10"]


def _evaluations(run_dir):
    return [line for line in (run_dir / "train.log").read_text().splitlines() if "evaluation at" in line]


@pytest.mark.parametrize("runtime", ["serial", pytest.param("ray", marks=pytest.mark.ray)])
def test_evaluations_run_on_schedule_and_best_pt_holds_the_best_weights(tmp_path, runtime):
    cfg = load_config(["env=cartpole", f"runtime={runtime}", "runtime.num_envs=4", f"run_dir={tmp_path}",
                       "train.env_steps=40000", "eval.period=8000", "eval.episodes=3", "eval.max_steps=200", *QUIET])
    summary = train(cfg)
    lines = _evaluations(tmp_path)
    # 40k steps, due every 8k; a due evaluation waits for the one running, and the last one is waited for.
    assert len(lines) >= 3, lines
    steps = [int(line.split("evaluation at ")[1].split(" frames")[0].replace(",", "")) for line in lines]
    assert steps[0] >= 8000 and all(b - a >= 8000 for a, b in itertools.pairwise(steps)), steps
    best = summary["eval"]["best"]
    assert summary["eval"]["last"]["episodes"] == 3 and best["metric"] == "return"
    assert "is not among" not in (tmp_path / "train.log").read_text()  # the default metric is the mean return
    assert best["value"] >= summary["eval"]["last"]["return_mean"]
    assert sum("new best" in line for line in lines) >= 1

    # best.pt replays exactly: the same seeds, greedy, give the same mean return with its weights.
    loaded = load_policy(str(tmp_path / "checkpoints" / "best.pt"))
    env = load_env_factory(cfg.env)(0)
    episodes = play(loaded.model, env, 3, cfg.seed + EVAL_SEED_OFFSET, greedy=True, max_steps=cfg.eval.max_steps)
    assert sum(e.ret for e in episodes) / 3 == pytest.approx(best["return_mean"])


def test_the_best_evaluation_survives_a_resume(tmp_path):
    args = ["env=cartpole", "runtime=serial", "runtime.num_envs=4", f"run_dir={tmp_path}", "eval.period=4000",
            "eval.episodes=2", *QUIET]
    first = train(load_config([*args, "train.env_steps=12000"]))
    best_before = first["eval"]["best"]
    second = train(load_config([*args, "train.env_steps=20000"]))
    assert second["eval"]["best"]["value"] >= best_before["value"]
    # The schedule continues where it stopped: no evaluation is repeated at the resumed step count.
    steps = [int(line.split("evaluation at ")[1].split(" frames")[0].replace(",", "")) for line in _evaluations(tmp_path)]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)


def test_evaluation_of_a_multi_agent_env_is_refused_in_one_line(tmp_path):
    from asyncrl.config.loader import ConfigError

    cfg = load_config(["env=gym", "env.name=duel", "env.id=tests.toy_envs:card_duel_parallel_env",
                       "env.factory=asyncrl_envs.pettingzoo_env:make_env", f"run_dir={tmp_path}", "runtime=serial",
                       "eval.period=1000", *QUIET])
    with pytest.raises(ConfigError, match="single-agent"):
        train(cfg)
