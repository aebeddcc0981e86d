"""A process that dies by SIGKILL leaves no VizDoom engine (nor its shared memory) behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.vizdoom

ROOT = Path(__file__).resolve().parents[1]

# Builds two envs, starts their engines, reports the pids and waits to be killed.
CHILD = """
import json, sys, time
from types import SimpleNamespace
from asyncrl_envs.vizdoom import make_env
from asyncrl_envs.vizdoom.lifecycle import engine_pids, watchdog_pid
envs = [make_env(SimpleNamespace(id="doom_basic", frameskip=4, kwargs={}), i) for i in range(2)]
for i, env in enumerate(envs):
    env.reset(seed=i)
    env.step(env.action_space.sample())
ids = []
for pid in engine_pids():
    args = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\\0")
    ids.append(args[args.index(b"+viz_instance_id") + 1].decode())
print(json.dumps({"engines": engine_pids(), "watchdog": watchdog_pid(), "ids": ids}), flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its reaper counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_sigkilled_owner_leaves_no_engine(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", CHILD], cwd=tmp_path, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        line = child.stdout.readline()
        assert line, "the child died before reporting its engines"
        report = json.loads(line)
    except BaseException:
        child.kill()
        raise
    engines, watchdog = report["engines"], report["watchdog"]
    try:
        assert len(engines) == 2 and all(_alive(p) for p in engines), report
        assert watchdog is not None and _alive(watchdog)
        child.send_signal(signal.SIGKILL)
        child.wait()
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and any(_alive(p) for p in [*engines, watchdog]):
            time.sleep(0.05)
        left = [p for p in engines if _alive(p)]
        assert not left, f"engines {left} survived their owner by more than 5 s"
        assert not _alive(watchdog), "the watchdog did not exit after cleaning up"
        shm = [f for i in report["ids"] for f in Path("/dev/shm").glob(f"ViZDoom*{i}")]
        assert not shm, f"shared memory left behind: {shm}"
    finally:
        for pid in [*engines, watchdog]:  # never leave engines running, even when the test fails
            if pid and _alive(pid):
                os.kill(pid, signal.SIGKILL)
