"""A healthy run writes nothing to stderr: every line there is something a user should act on (issue #21)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.vizdoom]

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("inference", ["local", "remote"])
def test_a_healthy_doom_basic_run_writes_nothing_to_stderr(tmp_path, inference):
    """Ray's token-authentication warning and its 'constructor arguments in the object store' ERROR line (one
    per restartable actor given a weights ref, an image space or an actor handle) used to greet every run."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}  # what a user's shell has
    proc = subprocess.run([sys.executable, "-m", "asyncrl.train", "env=doom_basic", f"runtime.inference={inference}",
                           "train.env_steps=2000", f"run_dir={tmp_path / 'run'}", "logging.wandb=disabled"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "completed"
    assert "decided for this machine: precision" in proc.stdout
