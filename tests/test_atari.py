"""Atari through ale-py: the preprocessing the field reports results with, and episodes that are games.

Training sees lives (a lost life ends the episode for learning) and sign-clipped rewards; the run's episode
stats see whole games and their unclipped scores.
"""

from __future__ import annotations

import sys

import gymnasium as gym
import numpy as np
import pytest

from asyncrl.config.loader import load_config
from asyncrl.env_api.factory import EnvFactoryError, load_env_factory, probe_spaces
from asyncrl.env_api.multi_agent import EPISODE_RETURN, GAME_CONTINUES
from asyncrl.sampling.env_group import EnvGroup
from asyncrl.training.trainer import train


class ThreeLives(gym.Env):
    """A game of three lives of four steps each, reward 2 per step: the sampler must see one episode per game,
    of length 12 and return 24 (the score the env reports), not three lives of rewards clipped to 1."""

    observation_space = gym.spaces.Box(0, 1, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self):
        self.full_resets, self._t = 0, 0

    def reset(self, *, seed=None, options=None):
        if self._t == 0 or self._t == 12:
            self.full_resets, self._t = self.full_resets + 1, 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self._t += 1
        if self._t == 12:
            return np.zeros(1, np.float32), 1.0, True, False, {EPISODE_RETURN: 24.0}
        if self._t % 4 == 0:
            return np.zeros(1, np.float32), 1.0, True, False, {GAME_CONTINUES: True}
        return np.zeros(1, np.float32), 1.0, False, False, {}


def test_a_lost_life_ends_the_episode_for_learning_and_the_game_for_the_stats():
    group = EnvGroup(lambda i: ThreeLives(), [0], [0])
    group.reset()
    terminals, episodes = 0, []
    for _ in range(24):
        result = group.step([0])
        terminals += int(result.terminated[0])
        episodes += result.episodes
    assert terminals == 6  # every life ends a learning episode: nothing bootstraps across a lost life
    assert [(e.ret, e.length) for e in episodes] == [(24.0, 12), (24.0, 12)]
    assert group.envs[0].env.full_resets == 3  # the first game, and one after each game over: never after a life


def test_without_ale_py_an_atari_env_says_which_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ale_py", None)  # what `import ale_py` does where it is not installed
    with pytest.raises(EnvFactoryError, match=r"needs ale-py: pip install 'asyncrl\[atari\]'"):
        probe_spaces(load_config(["env=ALE/Pong-v5"]).env)


pytest.importorskip("ale_py", reason="the atari extra: pip install 'asyncrl[atari]'")


def test_an_ale_id_takes_the_atari_config_and_preprocessing():
    cfg = load_config(["env=ALE/Breakout-v5"])
    assert (cfg.family, cfg.env.name, cfg.env.frameskip, cfg.model.encoder) == ("atari", "Breakout-v5", 4,
                                                                                  "convnet_simple")
    env = load_env_factory(cfg.env)(0)
    try:
        obs, _ = env.reset(seed=0)
        assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
        ale = env.unwrapped.ale
        assert ale.getFloat("repeat_action_probability") == pytest.approx(0.25)  # sticky actions
        assert ale.getInt("frame_skip") == 1  # frames are skipped (and max-pooled) by the preprocessing
    finally:
        env.close()


def test_an_unknown_ale_game_is_one_line_with_close_names():
    cfg = load_config(["env=ALE/Breakoutt-v5"])
    with pytest.raises(ValueError, match="is not an ALE game.*ALE/Breakout-v5"):
        load_env_factory(cfg.env)(0)


def test_breakout_random_play_clips_rewards_loses_lives_and_scores_the_game():
    cfg = load_config(["env=ALE/Breakout-v5"])
    env = load_env_factory(cfg.env)(0)
    try:
        env.reset(seed=1)
        rewards, lives_lost, score = [], 0, None
        for _ in range(20_000):
            _, reward, terminated, truncated, info = env.step(env.action_space.sample())
            rewards.append(reward)
            if terminated and info.get(GAME_CONTINUES):
                lives_lost += 1
                env.reset()
            elif terminated or truncated:
                score = info[EPISODE_RETURN]
                break
        assert score is not None, "no game over in 20k steps of random play"
        assert set(rewards) <= {0.0, 1.0}  # sign-clipped: a brick is worth 1 to 7 points unclipped
        assert lives_lost == 4  # five lives: four end an episode, the fifth ends the game
        assert score >= sum(rewards)
    finally:
        env.close()


def test_a_short_atari_run_trains_on_frames(tmp_path):
    cfg = load_config(["env=ALE/Pong-v5", "runtime=serial", f"run_dir={tmp_path}", "train.env_steps=4096",
                       "logging.wandb=disabled", "logging.tensorboard=false"])
    summary = train(cfg)
    assert summary["status"] == "completed"
    assert summary["env_steps"] >= 4096 and summary["frames"] == 4 * summary["env_steps"]
