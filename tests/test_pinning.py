"""runtime.pin_cores: the learner on cores of its own, samplers (and what they start) on the others."""

import os
import subprocess
import sys

import pytest

from asyncrl.config.loader import load_config
from asyncrl.runtime.affinity import learner_cores, sampler_core, usable_cores

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this OS")

QUIET = ["logging.wandb=disabled", "logging.tensorboard=false"]


def test_the_learner_takes_the_last_cores_and_samplers_share_the_rest():
    cores = usable_cores()
    assert learner_cores(1) == {cores[-1]}
    assert learner_cores(len(cores) + 5) == set(cores[-max(1, len(cores) - 1):])  # never every core
    samplers = {sampler_core(i, 1) for i in range(8)}
    if len(cores) >= 2:
        assert not samplers & learner_cores(1)
    else:
        assert samplers == set(cores)


def test_a_pinned_process_passes_its_core_to_the_processes_it_starts():
    code = ("import os, subprocess, sys; from asyncrl.runtime.affinity import pin_process, usable_cores; "
            "core = usable_cores()[0]; assert pin_process({core}); "
            "child = subprocess.run([sys.executable, '-c', 'import os; print(sorted(os.sched_getaffinity(0)))'], "
            "capture_output=True, text=True, check=True); print(core, child.stdout.strip())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split(" ", 1)
    assert out[1].strip() == f"[{out[0]}]"


@pytest.mark.ray
def test_ray_actors_are_pinned_where_pin_cores_says(tmp_path):
    from asyncrl.ray_runtime.runtime import RayRuntime

    cfg = load_config(["runtime=ray", "runtime.num_samplers=2", "runtime.num_envs=2", "runtime.pin_cores=true",
                       f"run_dir={tmp_path}", *QUIET])
    runtime = RayRuntime(cfg)
    try:
        assert os.sched_getaffinity(runtime.learner_pid()) == learner_cores(1)
        for i, pid in enumerate(runtime.sampler_pids()):
            assert os.sched_getaffinity(pid) == {sampler_core(i, 1)}
    finally:
        runtime.shutdown()
