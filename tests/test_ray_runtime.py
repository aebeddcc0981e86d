"""The Ray runtime end to end: remote batched inference, backpressure, and actors built from tests' envs."""

import os
import signal
import time

import pytest
import ray

from asyncrl.config.loader import load_config
from asyncrl.ray_runtime.runtime import RayRuntime
from asyncrl.training.trainer import train

pytestmark = pytest.mark.ray

QUIET = ["logging.wandb=disabled", "logging.tensorboard=false"]


def _runtime(tmp_path, *overrides: str, restore=None) -> RayRuntime:
    """A Ray runtime that the test drives by polling it, without the trainer around it."""
    cfg = load_config(["runtime=ray", *overrides, f"run_dir={tmp_path}", *QUIET])
    return RayRuntime(cfg, restore=restore)


def test_remote_inference_serves_two_samplers(tmp_path):
    cfg = load_config(["runtime=ray", "runtime.inference=remote", "runtime.num_samplers=2", "runtime.num_envs=4",
                       "algo.batch_size=1024", f"run_dir={tmp_path}", "train.env_steps=8000", *QUIET])
    summary = train(cfg)
    assert summary["status"] == "completed" and summary["env_steps"] >= 8000
    assert summary["train_steps"] >= 6
    assert summary["policy_lag"]["max"] <= cfg.algo.max_policy_lag


def test_a_learner_bound_run_gives_every_sampler_its_turn(tmp_path):
    """Ten epochs make the learner the bottleneck, so the samplers wait on backpressure and each free slot goes
    to one of them. Served in a fixed order, sampler 0 took 75 of 79 collects here and sampler 1's envs sat idle."""
    runtime = _runtime(tmp_path, "env=cartpole", "runtime.num_samplers=2", "runtime.num_envs=8", "algo.rollout=128",
                       "algo.batch_size=2048", "algo.num_epochs=10", "algo.num_minibatches=32")
    collects = {0: 0, 1: 0}
    try:
        while runtime.env_steps < 60_000:
            for meta in runtime.poll().collected:
                collects[meta.sampler_index] += 1
    finally:
        runtime.shutdown()
    assert min(collects.values()) >= 0.4 * sum(collects.values()), collects


def test_recurrent_policy_with_a_test_env_factory(tmp_path):
    cfg = load_config(["env=gym", "env.name=cue", "env.id=cue", "env.factory=tests.toy_envs:make_cue_memory",
                       "model.core=gru", "model.core_size=16", "runtime.num_envs=4", "algo.rollout=8",
                       "algo.batch_size=256", f"run_dir={tmp_path}", "train.env_steps=5000", *QUIET])
    summary = train(cfg)
    assert summary["status"] == "completed" and summary["episodes"] > 100


def test_a_sigkilled_sampler_is_restarted_and_the_run_goes_on(tmp_path, caplog):
    runtime = _runtime(tmp_path, "runtime.num_samplers=2", "runtime.num_envs=4")
    try:
        while runtime.env_steps < 5000:
            runtime.poll()
        victim = runtime.sampler_pids()[1]
        os.kill(victim, signal.SIGKILL)
        steps_at_kill, trained = runtime.env_steps, 0
        deadline = time.monotonic() + 120
        # The other sampler alone may bring the 10000 steps before Ray reports the death: wait for both.
        while ((runtime.env_steps < steps_at_kill + 10000 or trained < 3 or runtime.sampler_restarts[1] == 0)
               and time.monotonic() < deadline):
            trained += len(runtime.poll().trained)
        assert runtime.env_steps >= steps_at_kill + 10000 and trained >= 3
        assert runtime.sampler_restarts == [0, 1]
        assert "sampler 1 died" in caplog.text
        # The restarted sampler collects again, from a new process.
        collected_by, deadline = set(), time.monotonic() + 120
        while 1 not in collected_by and time.monotonic() < deadline:
            collected_by |= {m.sampler_index for m in runtime.poll().collected}
        assert 1 in collected_by
        assert runtime.sampler_pids()[1] != victim
    finally:
        runtime.shutdown()


def test_a_sampler_killed_while_idle_is_counted_and_logged_by_its_new_process(tmp_path, caplog):
    """A sampler that dies with no call in flight fails no call: Ray queues the next ones for its new process.
    The driver must still see the death, by the new process id on the next collect."""
    runtime = _runtime(tmp_path, "runtime.num_samplers=2", "runtime.num_envs=4")
    try:
        while runtime.env_steps < 3000:
            runtime.poll()
        # Without polls nothing new is asked of it: once its calls in flight are done, sampler 1 is idle.
        in_flight = runtime.calls.refs("collect", 1)
        assert len(ray.wait(in_flight, num_returns=len(in_flight), timeout=60)[0]) == len(in_flight)
        victim = runtime.sampler_pids()[1]
        os.kill(victim, signal.SIGKILL)
        time.sleep(3)  # Ray sees the death and queues later calls for the restarted process
        deadline = time.monotonic() + 120
        while runtime.sampler_restarts[1] == 0 and time.monotonic() < deadline:
            runtime.poll()
        assert runtime.sampler_restarts == [0, 1]
        assert "sampler 1 died" in caplog.text
        assert runtime.sampler_pids()[1] != victim
    finally:
        runtime.shutdown()


def test_a_sigkilled_learner_restarts_from_the_latest_checkpoint(tmp_path, caplog):
    saved = {}
    runtime = _runtime(tmp_path, "runtime.num_samplers=1", "runtime.num_envs=4",
                                    restore=lambda: saved.get("learners"))
    try:
        trained = 0
        while trained < 3:
            trained += len(runtime.poll().trained)
        saved["learners"] = runtime.learner_states()
        published = runtime.faults.published_version[0]
        os.kill(runtime.learner_pid(), signal.SIGKILL)
        versions, deadline = [], time.monotonic() + 120
        while len(versions) < 3 and time.monotonic() < deadline:
            versions += [m["stats/version"] for _, m in runtime.poll().trained]
        assert runtime.faults.learner_restarts == 1 and "from the latest checkpoint" in caplog.text
        # The restored learner publishes versions above every version published before the kill.
        assert len(versions) == 3 and min(versions) > published
    finally:
        runtime.shutdown()


def test_a_sigkilled_inference_actor_is_restarted_and_samplers_resend(tmp_path):
    runtime = _runtime(tmp_path, "runtime.inference=remote", "runtime.num_samplers=1",
                                    "runtime.num_envs=4")
    try:
        while runtime.env_steps < 2000:
            runtime.poll()
        victim = ray.get(runtime.inference.pid.remote())
        os.kill(victim, signal.SIGKILL)
        steps_at_kill, deadline = runtime.env_steps, time.monotonic() + 120
        while runtime.env_steps < steps_at_kill + 4000 and time.monotonic() < deadline:
            runtime.poll()
        assert runtime.env_steps >= steps_at_kill + 4000
        assert ray.get(runtime.inference.pid.remote()) != victim
        assert runtime.sampler_restarts == [0]  # the sampler rode it out by resending its requests
    finally:
        runtime.shutdown()


@pytest.mark.parametrize("victim", ["sampler", "learner", "inference"])
def test_a_stopped_component_is_named_killed_and_restarted(tmp_path, caplog, victim):
    """SIGSTOP freezes a process without killing it: only the heartbeat can tell, after hang_timeout_s."""
    saved = {}
    runtime = _runtime(tmp_path, "runtime.num_samplers=2", "runtime.num_envs=2",
                                    "runtime.hang_timeout_s=3",
                                    f"runtime.inference={'remote' if victim == 'inference' else 'local'}",
                                    restore=lambda: saved.get("learners"))
    try:
        trained = 0
        while trained < 2:
            trained += len(runtime.poll().trained)
        saved["learners"] = runtime.learner_states()
        pid = {"sampler": lambda: runtime.sampler_pids()[1], "learner": runtime.learner_pid,
               "inference": lambda: ray.get(runtime.inference.pid.remote())}[victim]()
        os.kill(pid, signal.SIGSTOP)
        label = {"sampler": "sampler 1", "learner": "learner 0", "inference": "inference"}[victim]
        deadline = time.monotonic() + 90
        while "made no progress" not in caplog.text and time.monotonic() < deadline:
            runtime.poll()
        assert f"{label} made no progress for" in caplog.text and runtime.faults.hung_restarts == 1
        # The run goes on: every sampler collects again and the learner trains again.
        collected_by, trained, deadline = set(), 0, time.monotonic() + 120
        while (collected_by != {0, 1} or trained < 2) and time.monotonic() < deadline:
            events = runtime.poll()
            collected_by |= {m.sampler_index for m in events.collected}
            trained += len(events.trained)
        assert collected_by == {0, 1} and trained >= 2
    finally:
        runtime.shutdown()


def test_a_sampler_whose_restart_fails_is_replaced_by_a_fresh_actor(tmp_path, caplog):
    """Ray re-runs a dead actor's constructor; when that fails the actor is dead for good, and every call to it
    fails at once. The runtime replaces it with a fresh actor in the same slot."""
    trigger = tmp_path / "fail_the_next_start"
    runtime = _runtime(tmp_path, "env=gym", "env.name=counting", "env.id=counting",
                                    "env.factory=tests.toy_envs:make_counting_that_fails_once",
                                    f"env.kwargs.trigger={trigger}", "runtime.num_samplers=1", "runtime.num_envs=2")
    try:
        while runtime.env_steps < 500:
            runtime.poll()
        trigger.touch()
        os.kill(runtime.sampler_pids()[0], signal.SIGKILL)
        steps_at_kill, deadline = runtime.env_steps, time.monotonic() + 120
        while (runtime.env_steps < steps_at_kill + 500 or "replaced by a fresh actor" not in caplog.text) \
                and time.monotonic() < deadline:
            runtime.poll()
        assert not trigger.exists(), "the restarted process never tried to build its envs"
        assert "sampler 0 could not be restarted" in caplog.text and runtime.faults.replaced == 1
        assert runtime.env_steps >= steps_at_kill + 500
        assert runtime.sampler_restarts == [1]
    finally:
        runtime.shutdown()

