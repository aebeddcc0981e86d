"""The console's progress line: a run ends at its frame budget or its wall-time limit, whichever comes first."""

from asyncrl.outputs.console import progress_line


def test_frames_alone_set_the_bar_and_eta():
    line = progress_line(env_steps=250, budget=1000, frameskip=4, fps=100.0, mean_return=1.5, lag=None)
    assert "25.0%" in line and "frames 1.00k" in line and "eta 0m30s" in line  # 750 steps x 4 frames / 100 fps


def test_a_wall_time_limit_reached_first_sets_the_bar_and_eta():
    # A frame budget that will never be reached (as long_run.py passes) must not show 0% and a years-long ETA.
    line = progress_line(env_steps=250, budget=10**13, frameskip=4, fps=100.0, mean_return=None, lag=None,
                         elapsed_s=1800.0, max_wall_s=7200.0)
    assert "25.0%" in line and "eta 1h30m" in line


def test_frames_reached_first_win_over_a_distant_wall_time_limit():
    line = progress_line(env_steps=900, budget=1000, frameskip=4, fps=100.0, mean_return=None, lag=None,
                         elapsed_s=10.0, max_wall_s=7200.0)
    assert "90.0%" in line and "eta 0m04s" in line
