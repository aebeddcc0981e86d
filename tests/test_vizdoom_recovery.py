"""A single-player engine that dies or hangs mid-episode is replaced by its env; the episode is dropped."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from asyncrl.env_api.multi_agent import RESTARTED
from asyncrl.sampling.env_group import EnvGroup
from asyncrl_envs.vizdoom import make_env
from asyncrl_envs.vizdoom.lifecycle import engine_pids

pytestmark = pytest.mark.vizdoom


def _env(**kwargs):
    return make_env(SimpleNamespace(id="doom_basic", frameskip=4, kwargs=kwargs), 0)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def _step_until_restarted(env, limit=50):
    for _ in range(limit):
        obs, reward, terminated, truncated, info = env.step(0)
        if info.get(RESTARTED):
            return obs, reward, terminated, truncated, info
        if terminated or truncated:
            env.reset()
    raise AssertionError("no restart reported")


def test_a_sigkilled_engine_is_replaced_and_its_episode_marked_restarted():
    env = _env()
    try:
        env.reset(seed=1)
        env.step(0)
        old = env.engine_pid
        assert old is not None and old in engine_pids()
        os.kill(old, signal.SIGKILL)
        obs, reward, terminated, truncated, _ = _step_until_restarted(env)
        assert (reward, terminated, truncated) == (0.0, False, False)
        assert obs["obs"].shape == (3, 72, 128) and env.restarts == 1
        assert env.engine_pid not in (None, old) and _alive(env.engine_pid)
        for _ in range(5):  # the new engine plays on
            _, _, terminated, truncated, info = env.step(1)
            assert RESTARTED not in info
            if terminated or truncated:
                env.reset()
    finally:
        env.close()


def test_a_hung_engine_is_killed_after_step_timeout_and_replaced():
    env = _env(step_timeout=2.0)
    try:
        env.reset(seed=2)
        env.step(0)
        stuck = env.engine_pid
        os.kill(stuck, signal.SIGSTOP)
        start = time.monotonic()
        _, _, _, _, info = env.step(0)
        waited = time.monotonic() - start
        assert info.get(RESTARTED) and env.restarts == 1
        assert 1.5 < waited < 30.0, waited  # detected by the timeout, not at once and not never
        deadline = time.monotonic() + 10
        while _alive(stuck) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(stuck)
    finally:
        env.close()


def test_the_sampler_drops_the_broken_episode():
    group = EnvGroup(lambda i: _env(), [0, 1], [5, 6])
    try:
        group.reset()
        victim = group.envs[1].env.engine_pid
        os.kill(victim, signal.SIGKILL)
        for _ in range(10):
            result = group.step([0, 0])
            if not result.valid[1]:
                break
        assert not result.valid[1] and result.terminated[1] and 1 in result.reset_envs
        assert all(e.slot != 1 for e in result.episodes)  # the broken episode reports no stats
        result = group.step([0, 0])
        assert result.valid.all()
    finally:
        group.close()


def test_a_healthy_engine_is_renewed_between_episodes_after_engine_restart_episodes():
    # The engine keeps ~0.3 kB per new_episode(): over a week of short episodes that is gigabytes, so a
    # healthy engine is closed and a fresh one started between two episodes, with nothing dropped.
    env = _env(engine_restart_episodes=3)
    try:
        env.reset(seed=3)
        first = env.engine_pid
        pids = [first]
        for _ in range(6):
            done = False
            while not done:
                _, _, terminated, truncated, info = env.step(0)
                assert RESTARTED not in info
                done = terminated or truncated
            env.reset()
            pids.append(env.engine_pid)
        # Episodes 1-3 on the first engine, 4-6 on the second, the 7th starts a third.
        assert pids[:3] == [first] * 3 and len(set(pids[3:6])) == 1 and len(set(pids)) == 3, pids
        assert env.renewals == 2 and env.restarts == 0 and env.episodes_on_engine == 1
        assert not _alive(first) and not _alive(pids[3]) and _alive(pids[-1])
        assert sorted(p for p in engine_pids() if p in pids) == [pids[-1]]
    finally:
        env.close()


def test_engine_restart_episodes_zero_keeps_one_engine():
    env = _env(engine_restart_episodes=0)
    try:
        env.reset(seed=4)
        first = env.engine_pid
        for _ in range(5):
            env.reset()
        assert env.engine_pid == first and env.renewals == 0 and env.episodes_on_engine == 6
    finally:
        env.close()
