"""The same experiment on a Ray cluster (issue #9), simulated by ray.cluster_utils.Cluster: several nodes, each
with its own raylet, on this one machine. The trainer joins it with runtime.address, as it would a real one."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest
import ray
from ray.cluster_utils import Cluster

from asyncrl.config.loader import load_config
from asyncrl.training.trainer import train

pytestmark = [pytest.mark.ray, pytest.mark.slow]

QUIET = ["logging.wandb=disabled", "logging.tensorboard=false", "logging.console_every_s=5"]


@pytest.fixture
def cluster():
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 3})
    try:
        yield c
    finally:
        if ray.is_initialized():
            ray.shutdown()
        c.shutdown()


def _with_second_node(c: Cluster):
    node = c.add_node(num_cpus=2)
    c.wait_for_nodes()
    return node


def test_cartpole_learns_with_samplers_on_two_nodes(cluster, tmp_path):
    _with_second_node(cluster)
    cfg = load_config(["env=cartpole", f"runtime.address={cluster.address}", "runtime.num_envs=8",
                       f"run_dir={tmp_path}", "train.env_steps=500000", "train.target_return=475", *QUIET])
    summary = train(cfg)
    assert summary["target_reached_at_env_steps"] is not None, summary
    # Head: 3 CPU slots, the learner takes one; the second node's two slots get a sampler each.
    banner = next(line for line in (tmp_path / "train.log").read_text().splitlines() if "run dir" in line)
    assert "4 sampler(s) x 8 envs on 2 nodes" in banner, banner


def test_one_inference_actor_per_node_serves_its_own_node_samplers(cluster, tmp_path):
    from asyncrl.ray_runtime.runtime import RayRuntime

    _with_second_node(cluster)
    cfg = load_config(["env=cartpole", f"runtime.address={cluster.address}", "runtime.inference=remote",
                       "runtime.num_envs=4", f"run_dir={tmp_path}", *QUIET])
    runtime = RayRuntime(cfg)
    try:
        assert len(runtime.fleet.inference) == 2
        placed = ray.get([s.actor.nodes.remote() for s in runtime.fleet.samplers.values()])
        assert {node for node, _ in placed} == set(runtime.fleet.inference)  # samplers on both nodes
        assert all(node == inference_node for node, inference_node in placed)  # each uses its own node's
        collected_by, deadline = set(), time.monotonic() + 120
        while collected_by != set(runtime.fleet.samplers) and time.monotonic() < deadline:
            collected_by |= {m.sampler_index for m in runtime.poll().collected}
        assert collected_by == set(runtime.fleet.samplers)
    finally:
        runtime.shutdown()


def test_a_node_that_joins_gets_samplers_and_one_that_leaves_costs_only_throughput(cluster, tmp_path):
    """The trainer runs as the command line does, in its own process; nodes come and go from here (Ray starts
    and stops nodes from a main thread only)."""
    log = tmp_path / "train.log"

    def wait_for(text: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if log.exists() and text in log.read_text():
                return
            assert proc.poll() is None, f"the run ended before {text!r}:\n{out.read_text()}"
            time.sleep(0.5)
        raise AssertionError(f"no {text!r} in train.log within {timeout} s:\n{log.read_text()}")

    out = tmp_path / "out.txt"
    with open(out, "w") as f:
        proc = subprocess.Popen([sys.executable, "-m", "asyncrl.train", "env=cartpole", f"run_dir={tmp_path}",
                                 f"runtime.address={cluster.address}", "runtime.num_envs=4", "train.env_steps=300000",
                                 "train.checkpoint_every_s=2", *QUIET], stdout=f, stderr=subprocess.STDOUT)
    try:
        wait_for("checkpoint")
        node = _with_second_node(cluster)
        wait_for("joined the cluster")
        time.sleep(3)  # the new samplers collect a little
        cluster.remove_node(node)
        wait_for("left the cluster")
        assert proc.wait(timeout=600) == 0, out.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["env_steps"] >= 300_000, summary
    joined = re.search(r"node (\w+) joined the cluster with 2 CPU\(s\): started 2 sampler\(s\) there", text)
    assert joined, text
    assert re.search(rf"node {joined[1]} left the cluster: its 2 sampler\(s\) went with it", text), text
