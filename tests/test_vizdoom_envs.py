"""The VizDoom scenarios: spaces, steps, episode stats, shaping and pinning (asyncrl_envs.vizdoom)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from asyncrl_envs.vizdoom import SCENARIOS, DoomEnv, get_spec, make_env, scenario_names
from asyncrl_envs.vizdoom.lifecycle import engine_pids
from asyncrl_envs.vizdoom.scenarios import buttons, delta
from asyncrl_envs.vizdoom.shaping import DeathmatchShaping, GatheringShaping, match_stats

pytestmark = pytest.mark.vizdoom

REQUIRED = ["doom_basic", "doom_defend_the_center", "doom_defend_the_line", "doom_health_gathering",
            "doom_health_gathering_supreme", "doom_deadly_corridor", "doom_my_way_home", "doom_take_cover",
            "doom_predict_position", "doom_rocket_basic", "doom_deathmatch"]


def cfg(name: str, frameskip: int = 4, **kwargs):
    return SimpleNamespace(id=name, frameskip=frameskip, kwargs=kwargs)


@pytest.fixture
def make():
    made = []

    def _make(name, frameskip=4, **kwargs):
        made.append(make_env(cfg(name, frameskip, **kwargs), 0))
        return made[-1]

    yield _make
    for env in made:
        env.close()


def test_registry_holds_the_wheel_scenarios():
    assert set(REQUIRED) <= set(scenario_names())
    assert scenario_names() == sorted(SCENARIOS)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError) as err:
        make_env(cfg("doom_nope"), 0)
    message = str(err.value)
    assert "\n" not in message and "doom_nope" in message
    assert all(name in message for name in scenario_names())


def test_unknown_kwarg_is_refused():
    with pytest.raises(ValueError, match="pin_core"):
        make_env(cfg("doom_basic", pin_cores=0), 0)


@pytest.mark.parametrize("name", scenario_names())
def test_scenario_resets_and_steps_in_its_spaces(make, name):
    env = make(name, frameskip=2 if name == "doom_deathmatch" else 4)
    assert env.observation_space["obs"].shape == (3, 72, 128)
    assert env.observation_space["obs"].dtype == np.uint8
    assert ("measurements" in env.observation_space.spaces) == SCENARIOS[name].measurements
    obs, _ = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    assert (env.game.get_screen_width(), env.game.get_screen_height()) == (160, 120)
    env.action_space.seed(0)
    for _ in range(6):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs)
        assert isinstance(reward, float) and isinstance(terminated, bool) and isinstance(truncated, bool)
        assert info["num_frames"] == env.frameskip
        if terminated or truncated:
            assert "episode_stats" in info
            obs, _ = env.reset()


def test_no_engine_before_reset(make):
    before = engine_pids()
    env = make("doom_basic")
    assert env.game is None and engine_pids() == before


def test_engine_outlives_the_thread_that_started_it(make):
    # A parent-death signal would fire when the starting thread exits; our cleanup is per process.
    env = make("doom_basic")
    starter = threading.Thread(target=env.reset, kwargs={"seed": 0})
    starter.start()
    starter.join()
    time.sleep(0.2)
    obs, *_ = env.step(0)
    assert env.observation_space.contains(obs)


def _play(env, policy, seed=0):
    env.reset(seed=seed)
    rewards = []
    while True:
        _, reward, terminated, truncated, info = env.step(policy(len(rewards)))
        rewards.append(reward)
        if terminated or truncated:
            return rewards, terminated, truncated, info


def test_basic_time_limit_truncates_with_unscaled_stats(make):
    env = make("doom_basic")
    rewards, terminated, truncated, info = _play(env, lambda t: 0)  # no-op until the 300-tic limit
    assert len(rewards) == 300 // 4 and truncated and not terminated
    stats = info["episode_stats"]
    assert stats["unscaled_return"] == pytest.approx(-300.0)  # living reward -1 per tic
    assert stats["unscaled_return"] == pytest.approx(sum(rewards) / 0.01)
    assert stats["true_objective"] == pytest.approx(sum(rewards))  # SF: the scaled return
    assert stats["kills"] == 0.0


def test_basic_kill_terminates(make):
    env = make("doom_basic")
    for seed in range(10):  # shoot until the monster happens to be in front of the gun
        rewards, terminated, truncated, info = _play(env, lambda t: 3, seed=seed)
        if terminated:
            break
    assert terminated and not truncated
    stats = info["episode_stats"]
    assert stats["kills"] == 1.0 and stats["unscaled_return"] > 0
    assert stats["unscaled_return"] == pytest.approx(sum(rewards) / 0.01)


def test_deathmatch_match_stats(make):
    spec = dataclasses.replace(get_spec("doom_deathmatch"), timeout=60, num_bots=2)
    env = DoomEnv(spec, frameskip=2)
    try:
        rewards, terminated, truncated, info = _play(env, lambda t: env.action_space.sample())
    finally:
        env.close()
    assert truncated and not terminated and len(rewards) == 30
    stats = info["episode_stats"]
    for key in ("true_objective", "unscaled_return", "shaping_return", "frags", "deaths", "kdr", "final_place"):
        assert key in stats and isinstance(stats[key], float), key
    assert stats["true_objective"] == stats["frags"]
    assert 1 <= stats["final_place"] <= 3


def test_pin_core_pins_process_and_engine(make):
    tasks = [int(t) for t in os.listdir("/proc/self/task")]
    saved = {t: os.sched_getaffinity(t) for t in tasks}
    try:
        env = make("doom_basic", pin_core=0)
        assert os.sched_getaffinity(0) == {0}
        env.reset(seed=0)
        assert engine_pids() and all(os.sched_getaffinity(p) == {0} for p in engine_pids())
    finally:
        for task, cpus in saved.items():
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(task, cpus)
    with pytest.raises(ValueError, match="pin_core"):
        make_env(cfg("doom_basic", pin_core=os.cpu_count()), 0)


def test_action_heads():
    np.testing.assert_array_equal(buttons("A", "B").table(), [[0, 0], [1, 0], [0, 1]])
    turn = delta("TURN_LEFT_RIGHT_DELTA", 21, -12.5, 12.5).table()[:, 0]
    np.testing.assert_allclose(turn, -12.5 + 1.25 * np.arange(21))
    assert get_spec("doom_deathmatch").buttons[-1] == "TURN_LEFT_RIGHT_DELTA"


def test_gathering_shaping_pays_health_increases_only():
    shaping = GatheringShaping()
    shaping.reset({"HEALTH": 100.0})
    steps = [({"HEALTH": 100.0}, False), ({"HEALTH": 92.0}, False), ({"HEALTH": 117.0}, False),
             ({"HEALTH": 130.0}, True)]
    assert [shaping.step(v, done) for v, done in steps] == [0.0, 0.0, 1.0, 0.0]


def test_deathmatch_shaping_follows_sample_factory():
    shaping = DeathmatchShaping()
    base = {"FRAGCOUNT": 0.0, "DEATHCOUNT": 0.0, "HEALTH": 100.0, "DEAD": 0.0, "SELECTED_WEAPON": 2.0,
            "SELECTED_WEAPON_AMMO": 0.0}
    shaping.reset(base)
    assert shaping.step(base, False) == 0.0  # the first step counts as a respawn: nothing paid
    assert shaping.step({**base, "FRAGCOUNT": 1.0, "HEALTH": 90.0}, False) == pytest.approx(1.0 - 10 * 0.003)
    assert shaping.step({**base, "FRAGCOUNT": 0.0, "HEALTH": 90.0}, False) == pytest.approx(-1.5)
    # Damage increases are capped at 200 per step; health +10 pays 0.005 each.
    assert shaping.step({**base, "DAMAGECOUNT": 500.0}, False) == pytest.approx(200 * 0.003 + 10 * 0.005)
    assert shaping.step({**base, "DAMAGECOUNT": 600.0, "DEATHCOUNT": 1.0}, False) == pytest.approx(0.3 - 0.75)
    for _ in range(5):  # holding one weapon with ammo for 5 steps pays SF's (effective) SELECTED7 reward
        reward = shaping.step({**base, "DAMAGECOUNT": 600.0, "DEATHCOUNT": 1.0, "SELECTED_WEAPON_AMMO": 9.0}, False)
    assert reward == pytest.approx(0.002)
    assert shaping.step({**base, "DAMAGECOUNT": 900.0, "FRAGCOUNT": 5.0}, True) == 0.0  # done: nothing


def test_match_stats():
    variables = {"FRAGCOUNT": 3.0, "DEATHCOUNT": 2.0, "PLAYER_COUNT": 3.0, "PLAYER_NUMBER": 1.0,
                 "PLAYER1_FRAGCOUNT": 5.0, "PLAYER2_FRAGCOUNT": 3.0, "PLAYER3_FRAGCOUNT": 1.0}
    assert match_stats(variables) == {"kdr": 1.0, "final_place": 2.0, "leader_gap": 2.0}
