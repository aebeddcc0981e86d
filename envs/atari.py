"""Atari 2600 games through ale-py (``pip install 'asyncrl[atari]'``; the wheel ships the ROMs): ``env=ALE/Pong-v5``.

Preprocessed the way results in the field are reported (Machado et al. 2018; Mnih et al. 2015), each step
overridable through ``env.kwargs``:

- sticky actions: the previous action repeats with probability 0.25 (``repeat_action_probability``);
- up to 30 no-op actions at the start of a game (``noop_max``);
- ``env.frameskip`` (4) frames per agent step, the last two max-pooled; 84x84 grayscale; 4 steps stacked;
- for training only: rewards clipped to their sign (``clip_rewards``) and a lost life ends the episode
  (``episodic_life``), while the game itself goes on. The run's episode stats are the game's: its
  unclipped score and its length, from the first life to game over.
"""

from __future__ import annotations

import difflib
from typing import Any

import gymnasium as gym
import numpy as np

from asyncrl.env_api.multi_agent import EPISODE_RETURN, GAME_CONTINUES


def make_env(cfg, env_index: int) -> gym.Env:
    """Build ``cfg.id`` (an ``ALE/<Game>-v5`` id) with the preprocessing above."""
    del env_index  # every copy is the same game; seeds differ
    try:
        import ale_py
    except ImportError as e:
        raise ImportError(f"env={cfg.id} needs ale-py: pip install 'asyncrl[atari]'") from e
    ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)  # not its banner on every start's stderr
    gym.register_envs(ale_py)
    if cfg.id not in gym.registry:
        games = sorted(i for i in gym.registry if i.startswith("ALE/"))
        close = difflib.get_close_matches(cfg.id, games, n=3) or games[:3]
        raise ValueError(f"env={cfg.id} is not an ALE game: expected an id such as {', '.join(close)}")
    kwargs: dict[str, Any] = dict(cfg.kwargs)
    noop_max = int(kwargs.pop("noop_max", 30))
    frame_stack = int(kwargs.pop("frame_stack", 4))
    episodic_life = bool(kwargs.pop("episodic_life", True))
    clip_rewards = bool(kwargs.pop("clip_rewards", True))
    kwargs.setdefault("repeat_action_probability", 0.25)
    # The ALE's own frameskip is off: AtariPreprocessing skips frames and max-pools the last two.
    env = gym.make(cfg.id, frameskip=1, **kwargs)
    env = gym.wrappers.AtariPreprocessing(env, noop_max=noop_max, frame_skip=cfg.frameskip, screen_size=84,
                                          grayscale_obs=True, scale_obs=False)
    env = GameEpisodes(env, episodic_life=episodic_life, clip_rewards=clip_rewards)
    return gym.wrappers.FrameStackObservation(env, frame_stack)


class GameEpisodes(gym.Wrapper):
    """Training sees lives and clipped rewards; the episode stats see games and scores.

    A lost life (with lives left) is reported as terminal with ``info["game_continues"]``, and the next
    ``reset()`` carries on the same game instead of starting one. The step that ends the game reports the
    game's unclipped score in ``info["episode_return"]``.
    """

    def __init__(self, env: gym.Env, episodic_life: bool = True, clip_rewards: bool = True):
        super().__init__(env)
        self.episodic_life, self.clip_rewards = episodic_life, clip_rewards
        self._score, self._lives, self._game_on = 0.0, 0, False
        self._last_obs: Any = None

    def _ale_lives(self) -> int:
        return int(self.env.unwrapped.ale.lives())

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if self._game_on:  # the last episode was a life: the game goes on from where it is
            self._game_on = False
            return self._last_obs, {}
        obs, info = self.env.reset(seed=seed, options=options)
        self._score, self._lives = 0.0, self._ale_lives()
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._score += float(reward)
        lives = self._ale_lives()
        life_lost = 0 < lives < self._lives
        self._lives = lives
        if terminated or truncated:
            info = {**info, EPISODE_RETURN: self._score}
        elif self.episodic_life and life_lost:
            terminated, self._game_on, self._last_obs = True, True, obs
            info = {**info, GAME_CONTINUES: True}
        if self.clip_rewards:
            reward = float(np.sign(reward))
        return obs, reward, terminated, truncated, info
