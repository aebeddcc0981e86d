"""One VizDoom game as a Gymnasium env, preprocessed as Sample Factory does (``make_doom_env_impl``).

Per step: ``make_action(buttons, frameskip)`` (the reward is summed over the skipped tics), the 160x120
RGB frame resized to 128x72 with ``cv2.INTER_NEAREST`` (squashing 4:3 to 16:9, as SF does), CHW uint8.
The reward is ``(env reward + shaping) * reward_scale``, SF's wrapper order.

Where we differ from SF on purpose:
- Time limits are ours, not the engine's: the engine's ``episode_timeout`` is switched off and the spec's
  ``timeout`` (in tics after the start time, the same count the engine uses) ends the episode with
  ``truncated=True`` and a real final frame, so the trainer can bootstrap from it. SF treats time-outs as
  terminal (``value_bootstrap=False``) and shows a black frame.
- On a terminal step the observation is the last frame the engine rendered (the engine has none after
  the end); SF returns a black frame. It is never bootstrapped from.
- The bot match has no ``+timelimit``: the 4-minute limit is the spec's ``timeout`` (same length as SF).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from typing import Any

import cv2
import gymnasium as gym
import numpy as np
import vizdoom as vzd

from asyncrl.env_api.multi_agent import RESTART_REASON, RESTARTED

from . import lifecycle, shaping
from .scenarios import DoomSpec

log = logging.getLogger(__name__)

# SF's multiplayer host arguments (doom_multiagent.py), for one agent hosting a match with bots.
_BOT_HOST_ARGS = ("-host 1 -deathmatch +sv_forcerespawn 1 +sv_noautoaim 1 +sv_respawnprotect 1 +sv_spawnfarthest 1"
                  " +sv_nocrouch 1 +sv_nojump 1 +sv_nofreelook 1 +sv_noexit 1 +viz_respawn_delay 0"
                  " +viz_connect_timeout 4 +name AI0_host +colorset 0")
_COUNTERS_NOT_RESET = ("DEATHCOUNT", "HITCOUNT", "DAMAGECOUNT")  # SF: not reset by new_episode()
# What vizdoom raises when its engine process died or was killed under a call.
ENGINE_FAILURES = (vzd.ViZDoomUnexpectedExitException, vzd.ViZDoomIsNotRunningException, vzd.ViZDoomErrorException,
                   vzd.MessageQueueException, vzd.SharedMemoryException)
_RENDER_SETTERS = {"hud": "set_render_hud", "crosshair": "set_render_crosshair", "weapon": "set_render_weapon",
                   "decals": "set_render_decals", "particles": "set_render_particles"}


class DoomEnv(gym.Env):
    """A single-agent VizDoom scenario. The engine starts on the first ``reset`` (so that the seed given
    there is the engine's), headless, and is watched by ``lifecycle`` in case this process dies.

    An engine that dies mid-episode, or blocks a step for longer than ``step_timeout`` seconds (it is then
    killed), is replaced: that ``step`` returns the first observation of a new episode with
    ``info["episode_restarted"] = True``, and the trainer drops the broken episode (no stats, no training
    on its last step).

    A healthy engine is also replaced, between two episodes, every ``engine_restart_episodes`` episodes: the
    engine keeps about 0.3 kB per ``new_episode()`` (measured on vizdoom 1.3.2: its anonymous memory grows
    linearly with episodes and not with steps), which over a week of short episodes is gigabytes per engine.
    A restart costs about 0.2 s."""

    metadata = {"render_modes": ["rgb_array"]}
    recovers_engine = True  # a match's players leave recovery to the match
    silent_engine = False  # a network player's engine prints its connection progress: started silent

    def __init__(self, spec: DoomSpec, frameskip: int = 4, width: int = 128, height: int = 72,
                 render_resolution: str = "160X120", num_bots: int | None = None, doom_map: str | None = None,
                 pin_core: int | None = None, render_mode: str | None = None, step_timeout: float = 10.0,
                 engine_restart_episodes: int = 2000):
        if frameskip < 1:
            raise ValueError(f"frameskip={frameskip!r} is invalid: expected an integer >= 1")
        if not step_timeout > 0:
            raise ValueError(f"step_timeout={step_timeout!r} is invalid: expected seconds > 0")
        if not (isinstance(engine_restart_episodes, int) and engine_restart_episodes >= 0):
            raise ValueError(f"engine_restart_episodes={engine_restart_episodes!r} is invalid: expected an integer "
                             ">= 1 (episodes per engine), or 0 to never replace a healthy engine")
        self.spec_ = spec
        self.frameskip = int(frameskip)
        self.size = (int(width), int(height))
        self.resolution = getattr(vzd.ScreenResolution, f"RES_{render_resolution.upper()}", None)
        if self.resolution is None:
            raise ValueError(f"render_resolution={render_resolution!r} is invalid: expected e.g. 160X120 or 256X144")
        self.num_bots = spec.num_bots if num_bots is None else int(num_bots)
        self.doom_map = doom_map or spec.doom_map
        self.render_mode = render_mode
        if pin_core is not None:
            lifecycle.pin_to_core(pin_core)

        obs = {"obs": gym.spaces.Box(0, 255, (3, self.size[1], self.size[0]), dtype=np.uint8)}
        if spec.measurements:
            obs["measurements"] = gym.spaces.Box(shaping.MEASUREMENTS_LOW, shaping.MEASUREMENTS_HIGH,
                                                 dtype=np.float32)
        self.observation_space = gym.spaces.Dict(obs)
        self.action_space = spec.action_space()
        self._tables = [h.table() for h in spec.heads]
        self._shaping = shaping.make_shaping(spec.shaping)

        self.game: vzd.DoomGame | None = None
        self._vars: list[vzd.GameVariable] = []
        self._var_names: list[str] = []
        self._baseline: dict[str, float] = {}
        self._pending_seed: int | None = None
        self._last_frame = np.zeros(self.observation_space["obs"].shape, dtype=np.uint8)
        self._last_vars: dict[str, float] = {}  # after the baseline and the clamp
        self._start_tic = 0
        self._returns = np.zeros(3)  # env reward (unscaled, unshaped), shaping, scaled total
        # Read by lifecycle.hang_watch: when the current engine call began (None: no call), and whose engine.
        self.step_timeout = float(step_timeout)
        self.call_started: float | None = None
        self.engine_pid: int | None = None
        self.hang_detected: float | None = None  # seconds a step had been blocked when its engine was killed
        self.restarts = 0  # engines replaced after dying or hanging
        self.engine_restart_episodes = engine_restart_episodes
        self.episodes_on_engine = 0  # episodes the current engine has started
        self.renewals = 0  # healthy engines replaced after engine_restart_episodes episodes

    # ---- engine -------------------------------------------------------------------------------------------

    def _create_game(self, seed: int) -> vzd.DoomGame:
        spec = self.spec_
        ini = lifecycle.prepare_engine_start()
        game = vzd.DoomGame()
        game.load_config(os.path.join(vzd.scenarios_path, spec.cfg))
        game.set_doom_config_path(ini)
        game.set_window_visible(False)
        game.set_sound_enabled(False)
        game.set_mode(vzd.Mode.PLAYER)
        game.set_screen_resolution(self.resolution)
        game.set_screen_format(vzd.ScreenFormat.RGB24)  # HWC: what cv2.resize wants, same pixels as CRCGCB
        game.set_available_buttons([getattr(vzd.Button, b) for b in spec.buttons])
        if spec.game_vars:
            game.set_available_game_variables([getattr(vzd.GameVariable, v) for v in spec.game_vars])
        if spec.living_reward is not None:
            game.set_living_reward(spec.living_reward)
        if spec.death_penalty is not None:
            game.set_death_penalty(spec.death_penalty)
        for key, value in spec.render.items():
            getattr(game, _RENDER_SETTERS[key])(value)
        if self.doom_map:
            game.set_doom_map(self.doom_map)
        game.set_episode_timeout(0)  # our own limit (module docstring)
        if args := self._game_args():
            game.add_game_args(args)
        game.set_seed(seed)
        before = set(lifecycle.engine_pids()) if self.recovers_engine else set()
        for attempt in range(3):
            try:
                with lifecycle.engines_started_silent() if self.silent_engine else contextlib.nullcontext():
                    game.init()
                break
            except Exception as e:  # vizdoom raises its own exception types; a busy machine can time out
                if attempt == 2:
                    raise
                log.warning("vizdoom init of %s failed (%r), retrying", spec.name, e)
                time.sleep(1.0)
        self._vars = game.get_available_game_variables()
        self._var_names = [str(v).split(".")[-1] for v in self._vars]
        if self.recovers_engine:
            # This env's engine: the one child process that init() added (envs of one process start one by one).
            new = set(lifecycle.engine_pids()) - before
            self.engine_pid = new.pop() if len(new) == 1 else None
            lifecycle.hang_watch.watch(self)
        return game

    def _game_args(self) -> str:
        """Engine arguments added before ``init()`` (a multiplayer player overrides this)."""
        return _BOT_HOST_ARGS if self.num_bots > 0 else ""

    def _start_episode(self) -> None:
        game = self.game
        if self.num_bots > 0:
            game.send_game_command("removebots")
            for _ in range(self.num_bots):
                game.send_game_command("addbot")
        self._start_tic = game.get_episode_start_time()
        state = game.get_state()
        self._baseline = {}
        variables = self._read(state)
        self._baseline = {k: variables[k] for k in _COUNTERS_NOT_RESET if k in variables}
        for k in self._baseline:
            variables[k] = 0.0
        self._last_vars = variables
        self._returns[:] = 0.0
        if self._shaping is not None:
            self._shaping.reset(variables)

    def _read(self, state) -> dict[str, float]:
        if state is not None and state.game_variables is not None:
            values = state.game_variables.tolist()
        else:  # the episode is over and there is no state, but the engine still answers (e.g. the kill count)
            values = [self.game.get_game_variable(v) for v in self._vars]
        variables = dict(zip(self._var_names, values, strict=True))
        for k, base in self._baseline.items():
            variables[k] -= base
        if "HEALTH" in variables:
            variables["HEALTH"] = max(0.0, variables["HEALTH"])  # SF clamps it before shaping
        return variables

    def _frame(self, state) -> np.ndarray:
        frame = cv2.resize(state.screen_buffer, self.size, interpolation=cv2.INTER_NEAREST)
        self._last_frame = np.ascontiguousarray(frame.transpose(2, 0, 1))
        return self._last_frame

    def _obs(self, frame: np.ndarray, variables: dict[str, float]) -> dict[str, np.ndarray]:
        obs = {"obs": frame}
        if self.spec_.measurements:
            obs["measurements"] = shaping.measurements(variables, np.zeros(23, dtype=np.float32))
        return obs

    # ---- gymnasium API ------------------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        engine_seed = int(self.np_random.integers(2**31)) if seed is None else int(seed) % 2**32
        if self.game is not None and self._engine_worn_out():
            self.renewals += 1
            self._release_engine(kill=False)  # healthy: it closes itself
        if self.game is not None:
            try:
                if seed is not None:
                    self.game.set_seed(engine_seed)
                self.game.new_episode()
                self.episodes_on_engine += 1
                self._start_episode()
                return self._obs(self._frame(self.game.get_state()), self._last_vars), {}
            except ENGINE_FAILURES as e:
                if not self.recovers_engine:
                    raise
                self._drop_engine(e, "between episodes")
        self.game = self._create_game(engine_seed)  # init() starts the first episode
        self.episodes_on_engine = 1
        self._start_episode()
        return self._obs(self._frame(self.game.get_state()), self._last_vars), {}

    def buttons_for(self, action) -> np.ndarray:
        """The engine's button values (float64 [len(spec.buttons)]) for an action of ``action_space``."""
        if isinstance(action, np.ndarray | list | tuple):
            return np.concatenate([t[int(a)] for t, a in zip(self._tables, action, strict=True)])
        return self._tables[0][int(action)]

    def step(self, action):
        if self.game is None:
            raise RuntimeError("DoomEnv.step() before reset()")
        if not self.recovers_engine:
            return self._step(action)
        self.call_started = time.monotonic()
        try:
            return self._step(action)
        except ENGINE_FAILURES as e:
            self.call_started = None
            why = self._drop_engine(e, "mid-episode")
            obs, info = self.reset()
            return obs, 0.0, False, False, {**info, RESTARTED: True, RESTART_REASON: why}
        finally:
            self.call_started = None

    def _engine_worn_out(self) -> bool:
        # A match's players leave their engines to the match (long episodes: little to leak).
        n = self.engine_restart_episodes
        return self.recovers_engine and n > 0 and self.episodes_on_engine >= n

    def _release_engine(self, kill: bool) -> None:
        """Forget the current engine and close it; the next ``reset`` starts a new one. ``kill``: SIGKILL it
        first (a dead or hung engine must not linger). One that fails to close is killed anyway."""
        game, pid, self.game, self.engine_pid, self.hang_detected = self.game, self.engine_pid, None, None, None
        if kill and pid is not None:
            lifecycle.kill_engines([pid])
        try:
            game.close()
        except Exception:  # a dead engine cannot close cleanly; make sure it is gone
            if pid is not None:
                lifecycle.kill_engines([pid])

    def _drop_engine(self, error: Exception, when: str) -> str:
        """Forget a dead (or killed because hung) engine; the next ``reset`` starts a new one. Returns why."""
        cause = (f"blocked a step for {self.hang_detected:.1f} s and was killed" if self.hang_detected is not None
                 else f"died ({type(error).__name__})")
        why = f"vizdoom engine of {self.spec_.name} {cause} {when}; replaced by a new one (restart #{self.restarts + 1})"
        log.warning("%s; the episode is dropped", why)
        self._release_engine(kill=True)
        self.restarts += 1
        return why

    def _step(self, action):
        game, spec = self.game, self.spec_
        reward = game.make_action(self.buttons_for(action), self.frameskip)
        finished = game.is_episode_finished()
        state = None if finished else game.get_state()
        variables = self._read(state)
        frame = self._last_frame if state is None else self._frame(state)
        # An end the engine decides (death, goal) is terminal, unless it is the engine's own time-out.
        engine_timeout = finished and game.is_episode_timeout_reached()
        timed_out = spec.timeout > 0 and game.get_episode_time() - self._start_tic >= spec.timeout
        terminated = finished and not engine_timeout
        truncated = engine_timeout or (timed_out and not finished)
        done = terminated or truncated

        shaped = self._shaping.step(None if state is None else variables, done) if self._shaping else 0.0
        scaled = (reward + shaped) * spec.reward_scale
        self._returns += (reward, shaped, scaled)
        self._last_vars = variables
        info: dict[str, Any] = {"num_frames": self.frameskip}
        if done:
            info["episode_stats"] = self._episode_stats(variables)
        return self._obs(frame, variables), float(scaled), terminated, truncated, info

    def _episode_stats(self, variables: dict[str, float]) -> dict[str, float]:
        env_return, shaping_return, scaled_return = (float(x) for x in self._returns)
        objective = {"return": scaled_return, "unshaped": env_return,
                     "frags": variables.get("FRAGCOUNT", 0.0)}[self.spec_.true_objective]
        stats = {"true_objective": float(objective), "unscaled_return": env_return}
        if self._shaping is not None:
            stats["shaping_return"] = shaping_return
        stats.update({key: float(variables.get(var, 0.0)) for key, var in self.spec_.stats.items()})
        if self.num_bots > 0:
            stats.update(shaping.match_stats(variables))
        return stats

    def get_reward_shaping(self) -> dict | None:
        """The shaping coefficients PBT may perturb; None for scenarios without tunable shaping."""
        getter = getattr(self._shaping, "coefficients", None)
        return None if getter is None else getter()

    def set_reward_shaping(self, coeffs: dict) -> None:
        if not hasattr(self._shaping, "set_coefficients"):
            raise AttributeError(f"scenario {self.spec_.name} has no tunable reward shaping")
        self._shaping.set_coefficients(coeffs)

    def render(self):
        if self.render_mode == "rgb_array":
            return self._last_frame.transpose(1, 2, 0)
        return None

    def close(self) -> None:
        if self.game is not None:
            try:
                self.game.close()
            except Exception as e:  # closing a dead engine must not mask the error that killed it
                log.warning("vizdoom close() failed: %r", e)
            self.game = None
