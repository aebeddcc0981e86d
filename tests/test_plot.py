"""Plots: runs grouped by experiment across seeds, a valid PNG, one-line errors."""

import matplotlib.image as mpimg
import numpy as np
import pytest
import yaml
from torch.utils.tensorboard import SummaryWriter

from asyncrl.evaluation.curves import expand_runs, group_runs, read_curve, spread, strip_seed
from asyncrl.plot import main, plot

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def fake_run(path, seed=0, lr=3e-4, config=True, points=6, t0=1_000_000.0):
    """A run directory as the trainer leaves it: config.yaml and TensorBoard scalars against frames."""
    path.mkdir(parents=True)
    if config:
        cfg = {"env": {"name": "cartpole"}, "algo": {"lr": lr}, "seed": seed, "name": path.name,
               "run_dir": str(path), "logging": {"wandb": "disabled"}}
        (path / "config.yaml").write_text(yaml.safe_dump(cfg))
    writer = SummaryWriter(log_dir=str(path / "tensorboard"))
    for i in range(points):
        frames = 10_000 * (i + 1) + 137 * seed  # console ticks land on different frames in each run
        writer.add_scalar("stats/return_mean", 50.0 * i + seed, frames, walltime=t0 + 5.0 * i)
        writer.add_scalar("perf/fps", 2000.0 + seed, frames, walltime=t0 + 5.0 * i)
    writer.close()
    return path


def test_two_seeds_make_one_group_and_a_png(tmp_path, capsys):
    fake_run(tmp_path / "cartpole_seed0", seed=0)
    fake_run(tmp_path / "cartpole_seed1", seed=1)
    out = tmp_path / "plots" / "cartpole.png"
    assert main([str(tmp_path / "cartpole_seed0"), str(tmp_path / "cartpole_seed1"), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == PNG_SIGNATURE and out.stat().st_size > 10_000
    image = mpimg.imread(out)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 2 * image.shape[0]  # two panels
    assert "2 run(s) in 1 group(s): cartpole" in capsys.readouterr().out


def test_grouping_by_config_then_by_name(tmp_path):
    a0 = fake_run(tmp_path / "a_s0", seed=0)
    a1 = fake_run(tmp_path / "a_s1", seed=1)
    b = fake_run(tmp_path / "a_lr", lr=1e-3)  # another experiment: a config value differs
    n0 = fake_run(tmp_path / "bare-seed3", config=False)
    n1 = fake_run(tmp_path / "bare-seed4", config=False)
    groups = group_runs([a0, a1, b, n0, n1])
    assert groups == {"a": [a0, a1], "a_lr": [b], "bare": [n0, n1]}
    assert [strip_seed(n) for n in ("x_seed12", "x-s3", "x_seed_2", "seedless", "x_s")] == \
        ["x", "x", "x", "seedless", "x_s"]


def test_runs_named_by_their_seed_take_the_env_folder_and_two_sweeps_stay_apart(tmp_path):
    """The learning suite keeps ENV/seed0, ENV/seed1; an A/B keeps one such tree per variant."""
    a0 = fake_run(tmp_path / "base" / "LunarLander-v3" / "seed0", seed=0)
    a1 = fake_run(tmp_path / "base" / "LunarLander-v3" / "seed1", seed=1)
    b0 = fake_run(tmp_path / "variant" / "LunarLander-v3" / "seed0", seed=0, lr=1e-3)
    c0 = fake_run(tmp_path / "again" / "variant" / "LunarLander-v3" / "seed0", seed=0, lr=3e-3)
    d0 = fake_run(tmp_path / "again2" / "variant" / "LunarLander-v3" / "seed0", seed=0, lr=5e-3)
    assert group_runs([a0, a1, b0, c0, d0]) == {"LunarLander-v3": [a0, a1], "variant/LunarLander-v3": [b0],
                                                "variant/LunarLander-v3 (2)": [c0],
                                                "variant/LunarLander-v3 (3)": [d0]}


def test_a_directory_of_runs_expands_and_another_metric_plots(tmp_path):
    fake_run(tmp_path / "runs" / "r_seed0", seed=0)
    fake_run(tmp_path / "runs" / "r_seed1", seed=1)
    assert len(expand_runs([str(tmp_path / "runs")])) == 2
    groups = plot([str(tmp_path / "runs")], tmp_path / "fps.png", metric="perf/fps")
    assert list(groups) == ["r"] and (tmp_path / "fps.png").read_bytes()[:8] == PNG_SIGNATURE


def test_curve_reads_frames_wall_time_and_values(tmp_path):
    curve = read_curve(fake_run(tmp_path / "r", seed=2), "stats/return_mean")
    np.testing.assert_allclose(curve.wall_s, [0, 5, 10, 15, 20, 25])
    np.testing.assert_allclose(curve.frames[:2], [10_274, 20_274])
    np.testing.assert_allclose(curve.values[:2], [2.0, 52.0])


def test_a_resumed_run_counts_training_time_not_the_pause_between_its_sessions(tmp_path):
    run = fake_run(tmp_path / "r", points=3)  # session 1: walls t0, t0+5, t0+10
    writer = SummaryWriter(log_dir=str(run / "tensorboard"), filename_suffix=".session2")
    for i in range(3):  # session 2, resumed an hour later, logging every 4 s
        writer.add_scalar("stats/return_mean", 200.0 + i, 40_000 + 10_000 * i, walltime=1_003_610.0 + 4.0 * i)
    writer.close()
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 2
    curve = read_curve(run, "stats/return_mean")
    np.testing.assert_allclose(curve.wall_s, [0, 5, 10, 14, 18, 22])  # the hour is gone; 4 s for the restart
    np.testing.assert_allclose(curve.frames, [10_000, 20_000, 30_000, 40_000, 50_000, 60_000])
    np.testing.assert_allclose(curve.values, [0, 50, 100, 200, 201, 202])


def test_spread_is_mean_min_max_over_the_overlap():
    grid, mean, low, high = spread([np.array([0.0, 10.0]), np.array([2.0, 12.0])],
                                   [np.array([0.0, 10.0]), np.array([4.0, 14.0])], points=5)
    np.testing.assert_allclose(grid, [2, 4, 6, 8, 10])
    np.testing.assert_allclose(low, grid)
    np.testing.assert_allclose(high, grid + 2)
    np.testing.assert_allclose(mean, grid + 1)
    assert spread([np.array([0.0, 1.0]), np.array([5.0, 6.0])], [np.zeros(2), np.zeros(2)]) is None


@pytest.mark.parametrize("make, args, says", [
    (lambda p: p.mkdir(), [], "has no TensorBoard events"),
    (lambda p: None, [], "is not a directory"),
    (lambda p: fake_run(p), ["--metric", "stats/return_mea"], "has no scalar 'stats/return_mea'"),
    (lambda p: fake_run(p), ["--colour", "red"], "unrecognized arguments"),
])
def test_bad_input_gives_one_line(tmp_path, capsys, make, args, says):
    make(tmp_path / "run")
    assert main([str(tmp_path / "run"), "--out", str(tmp_path / "x.png"), *args]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], captured.err
    assert not (tmp_path / "x.png").exists()


def test_policies_draws_one_line_per_policy_of_a_population_run(tmp_path, capsys):
    run = fake_run(tmp_path / "pbt")
    writer = SummaryWriter(log_dir=str(run / "tensorboard"))
    for pid in (1, 2):
        for i in range(6):
            writer.add_scalar(f"policy{pid}/stats/return_mean", 10.0 * i * pid, 10_000 * (i + 1),
                              walltime=1_000_000.0 + 5.0 * i)
    writer.add_scalar("policy3/perf/other", 1.0, 10_000)  # another metric: not a curve of this plot
    writer.close()
    out = tmp_path / "population.png"
    assert main([str(run), "--policies", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    assert "3 run(s) in 3 group(s): pbt policy 0, pbt policy 1, pbt policy 2" in capsys.readouterr().out
