"""Multiplayer VizDoom matches (asyncrl_envs.vizdoom.match): lockstep steps, ports, hang restarts, match stats.

Two players per match at most (3+ lock-stepped players on a 2-core machine collapse to ~2k frames/s).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from asyncrl_envs.vizdoom import DoomMatch, get_match_spec, make_env, make_match, match_names
from asyncrl_envs.vizdoom.lifecycle import engine_pids
from asyncrl_envs.vizdoom.ports import acquire_port

pytestmark = pytest.mark.vizdoom

ROOT = Path(__file__).resolve().parents[1]
STATS = ("frags", "deaths", "true_objective", "unscaled_return")


def cfg(frameskip: int = 4, name: str = "doom_duel", **kwargs):
    return SimpleNamespace(id=name, frameskip=frameskip, kwargs=kwargs)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def make():
    made: list[DoomMatch] = []

    def _make(**kwargs) -> DoomMatch:
        made.append(make_match(cfg(**kwargs), 0))
        return made[-1]

    yield _make
    for match in made:
        match.close()
    assert engine_pids() == [], "a match left engines running"


def random_actions(match: DoomMatch, rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.integers(0, match.action_space.nvec) for _ in range(match.num_agents)]


def test_registry_and_factory_arguments():
    assert "doom_duel" in match_names()
    assert get_match_spec("doom_duel").num_agents == 2
    with pytest.raises(ValueError, match="doom_duel") as err:
        make_match(cfg(name="doom_nope"), 0)
    assert "\n" not in str(err.value) and "doom_nope" in str(err.value)
    with pytest.raises(ValueError, match="port_range"):
        make_match(cfg(ports=(1, 2)), 0)
    with pytest.raises(ValueError, match="make_match"):
        make_env(SimpleNamespace(id="doom_duel", frameskip=4, kwargs={}), 0)


def test_the_duel_against_a_bot_has_the_duel_players_spaces():
    # experiment=doom_duel_bots trains the policy that experiment=doom_duel_selfplay starts from (train.init_from).
    vs_bot, duel = make_env(cfg(2, "doom_duel_bots"), 0), make_match(cfg(2), 0)
    try:
        assert vs_bot.observation_space == duel.observation_space and vs_bot.action_space == duel.action_space
        assert vs_bot.num_bots == 1
    finally:
        vs_bot.close()
        duel.close()


def test_two_player_match_steps_in_its_spaces(make):
    match = make(frameskip=4)
    assert match.num_agents == 2
    assert match.observation_space["obs"].shape == (3, 72, 128)
    obs, infos = match.reset(seed=5)
    assert len(obs) == len(infos) == 2 and all(match.observation_space.contains(o) for o in obs)
    pids = match.engine_pids()
    assert len(pids) == 2 and match.port is not None
    rng = np.random.default_rng(0)
    rewards = np.zeros(2)
    for _ in range(100):
        obs, reward, terminated, truncated, infos = match.step(random_actions(match, rng))
        assert all(match.observation_space.contains(o) for o in obs)
        assert len(reward) == 2 and all(isinstance(r, float) for r in reward)
        assert all(isinstance(d, bool) for d in [*terminated, *truncated])
        assert all(info["num_frames"] == 4 for info in infos)
        assert not any(terminated) and not any(truncated)  # 100 steps = 400 tics, far from the 4-minute limit
        rewards += reward
    assert np.all(rewards != 0.0), "the V1 shaping pays every agent something within 400 tics"
    assert not np.array_equal(obs[0]["obs"], obs[1]["obs"]), "each agent sees its own view"
    assert [p.game.get_episode_time() for p in match._players] == [401, 401]  # lockstep, tic for tic
    match.close()
    assert not any(_alive(p) for p in pids)


def test_concurrent_matches_in_one_process_use_distinct_ports(make):
    matches = [make(frameskip=4) for _ in range(3)]
    for match in matches:
        match.reset(seed=1)
    rng = np.random.default_rng(1)
    for _ in range(20):
        for match in matches:
            obs, *_ = match.step(random_actions(match, rng))
            assert all(match.observation_space.contains(o) for o in obs)
    assert len({m.port for m in matches}) == 3
    pids = [p for m in matches for p in m.engine_pids()]
    assert len(pids) == len(set(pids)) == 6
    assert all(m.restarts == 0 for m in matches)


def test_a_samplers_matches_step_at_once_and_each_keeps_its_lockstep(make):
    """EnvGroup starts every match's step before it reads any (step_async/step_wait): both matches' engines then
    run at once, and each match still advances tic for tic."""
    from asyncrl.sampling.env_group import EnvGroup

    group = EnvGroup(lambda i: make(frameskip=4), [0, 1], [3, 4])
    matches = group.envs
    group.reset()
    rng = np.random.default_rng(2)
    for _ in range(30):
        res = group.step([a for m in matches for a in random_actions(m, rng)])
        assert res.valid.all() and not res.restarted
    assert [p.game.get_episode_time() for m in matches for p in m._players] == [121] * 4
    match = matches[0]
    match.step_async(random_actions(match, rng))
    with pytest.raises(RuntimeError, match="twice"):
        match.step_async(random_actions(match, rng))
    assert len(match.step_wait()[0]) == 2
    with pytest.raises(RuntimeError, match="without step_async"):
        match.step_wait()


HOLDER = """
import json, sys, time
from asyncrl_envs.vizdoom.ports import acquire_port
leases = [acquire_port((int(sys.argv[1]), int(sys.argv[2]))) for _ in range(int(sys.argv[3]))]
print(json.dumps([lease.port for lease in leases]), flush=True)
time.sleep(60)
"""


def _holder(low: int, high: int, count: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", HOLDER, str(low), str(high), str(count)], stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_port_leases_never_collide_across_processes():
    low, high = 29100, 29119  # 20 ports: two processes take 10 each, concurrently
    holders = [_holder(low, high, 10) for _ in range(2)]
    try:
        held = [json.loads(h.stdout.readline()) for h in holders]
        assert len(set(held[0]) | set(held[1])) == 20, held
        with pytest.raises(RuntimeError, match="no free UDP port"):
            acquire_port((low, high))  # every port is locked by a live process
        holders[0].send_signal(signal.SIGKILL)  # the kernel drops a dead holder's locks
        holders[0].wait()
        lease = acquire_port((low, high))
        assert lease.port in held[0]
        lease.release()
    finally:
        for h in holders:
            h.kill()
            h.wait()


def test_port_leases_in_one_process_and_the_bind_probe():
    low, high = 29130, 29132
    first, second = acquire_port((low, high)), acquire_port((low, high))
    assert first.port != second.port
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:  # some other program holds the last port
        third = ({low, low + 1, low + 2} - {first.port, second.port}).pop()
        busy.bind(("", third))
        with pytest.raises(RuntimeError):
            acquire_port((low, high))
    first.release()
    assert acquire_port((low, high), exclude={third}).port == first.port
    second.release()


def _step_until_restart(match: DoomMatch, rng) -> tuple[float, tuple]:
    start = time.monotonic()
    out = match.step(random_actions(match, rng))
    return time.monotonic() - start, out


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGSTOP], ids=["joiner_killed", "joiner_hung"])
def test_broken_match_is_detected_restarted_and_its_episode_dropped(make, how):
    match = make(frameskip=4, step_timeout=2.0)
    match.reset(seed=2)
    rng = np.random.default_rng(2)
    for _ in range(20):
        match.step(random_actions(match, rng))
    old_pids, old_port = match.engine_pids(), match.port
    os.kill(old_pids[1], how)  # the joiner's engine dies, or stops answering
    elapsed, (obs, reward, terminated, truncated, infos) = _step_until_restart(match, rng)
    assert match.restarts == 1
    # The behaviour under test is a deadline: a broken peer is noticed at step_timeout (2 s), not never.
    # The margins are wide because CI machines are shared and slow.
    assert match.last_restart["detected_after_s"] <= 2.0 + 5.0, match.last_restart
    assert elapsed < 2.0 + 60.0  # detection, then new engines on a fresh port
    assert all(info.get("match_restarted") for info in infos)
    assert not any("episode_stats" in info for info in infos), "the broken episode must not be reported"
    assert truncated == [True, True] and terminated == [False, False] and reward == [0.0, 0.0]
    assert all(match.observation_space.contains(o) for o in obs)
    assert match.port != old_port and not any(_alive(p) for p in old_pids)
    assert match.abandoned_threads == 0
    for _ in range(20):  # the new match plays on
        obs, reward, terminated, truncated, infos = match.step(random_actions(match, rng))
        assert not any(info.get("match_restarted") for info in infos)
    assert len(match.engine_pids()) == 2


def test_match_end_reports_per_agent_stats_then_resets(make):
    match = make(frameskip=4, timelimit_minutes=0.05)  # 105 tics
    match.reset(seed=3)
    rng = np.random.default_rng(3)
    with pytest.raises(ValueError, match="2 actions"):
        match.step(random_actions(match, rng)[:1])
    steps = 0
    while steps < 100:
        obs, reward, terminated, truncated, infos = match.step(random_actions(match, rng))
        steps += 1
        if any(terminated) or any(truncated):
            break
    assert steps == 26  # the engine's +timelimit (105 tics after tic 1) ends it for every agent on the same step
    assert truncated == [True, True]  # the engine reports +timelimit as its time-out: bootstrap, as DoomEnv does
    for info in infos:
        stats = info["episode_stats"]
        assert all(isinstance(stats[k], float) for k in STATS), stats
        assert stats["true_objective"] in (0.0, 1.0)  # doom_duel: win
    assert sum(info["episode_stats"]["true_objective"] for info in infos) <= 1.0
    with pytest.raises(RuntimeError, match="reset"):
        match.step(random_actions(match, rng))
    obs, infos = match.reset()  # every player starts a new episode
    match.step(random_actions(match, rng))


def test_agent_and_bot_match_reports_frags_and_deaths(make):
    match = make(frameskip=4, num_agents=1, num_bots=1, timelimit_minutes=0.25, respawn_delay=0)
    obs, _ = match.reset(seed=4)
    assert len(obs) == 1 and len(match.engine_pids()) == 1
    rng = np.random.default_rng(4)
    for _ in range(1000):
        obs, reward, terminated, truncated, infos = match.step(random_actions(match, rng))
        if terminated[0] or truncated[0]:
            break
    stats = infos[0]["episode_stats"]
    assert all(isinstance(stats[k], float) for k in STATS), stats
    assert stats["true_objective"] == stats["frags"]  # one agent: frags, SF's objective against bots
    assert stats["deaths"] >= 0.0 and stats["final_place"] in (1.0, 2.0)  # ranked against the bot
    assert match._players[0]._last_vars["PLAYER_COUNT"] == 2.0  # the bot is in the game
    obs, _ = match.reset()  # removebots + addbot again
    match.step(random_actions(match, rng))
    assert match._players[0]._last_vars["PLAYER_COUNT"] == 2.0


_QUIET_MATCH = """
import sys
from asyncrl_envs.vizdoom import DoomMatch, get_match_spec
print("before", file=sys.stderr, flush=True)
match = DoomMatch(get_match_spec("doom_duel"), frameskip=4, timelimit_minutes=0.05)
match.reset(seed=1)
for _ in range(10):
    match.step([match.action_space.sample() for _ in range(2)])
match.close()
print("after", file=sys.stderr, flush=True)
"""


@pytest.mark.parametrize("silent", [True, False])
def test_a_match_starts_its_engines_without_a_word_on_stdout_or_stderr(silent):
    # The engines' network start-up chatter ("Waiting for players", "Contacting host") is nothing a user can act
    # on; without the silencing (silent=False) it is there, so this test sees what it claims to remove.
    code = _QUIET_MATCH if silent else "from asyncrl_envs.vizdoom import match\nmatch._Player.silent_engine = False\n" + _QUIET_MATCH
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    if silent:
        assert done.stderr == "before\nafter\n" and done.stdout == ""
    else:
        assert "Contacting host" in done.stdout + done.stderr
