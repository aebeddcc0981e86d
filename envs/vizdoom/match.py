"""Multiplayer VizDoom matches behind a plain multi-agent env interface (Sample Factory's ``MultiAgentEnv``).

A match is one host engine (``-host N -port P -deathmatch`` and SF's ``+sv_*`` arguments) and N-1 joiners
(``-join 127.0.0.1:P``), all owned by this process: each player is a ``DoomEnv`` (SF's preprocessing: 128x72 CHW
uint8 frames, measurements, shaping, reward scale) driven by its own thread. Measured with vizdoom 1.3.2:

- **Threads, not processes.** ``make_action``/``advance_action``/``init``/``new_episode`` release the GIL (a
  Python loop in another thread keeps ~60% of its solo speed during a long ``make_action``; the rest is the
  engine's own CPU on this 2-core machine), so the players' engines run in parallel.
- **Lockstep tic by tic, as SF does.** Each player calls ``advance_action(1)`` ``frameskip`` times with a barrier
  across the players after every tic; only the last tic updates the state. One ``make_action(a, frameskip)`` per
  player per step, leaving the tics' synchronisation to the engines' netgame, hangs (host and joiner reach the
  same tic, then one call never returns: with a barrier per step every try hung within 3 steps; without one,
  every match at frameskip 4 within seconds) or, at frameskip 2, runs 22% slower than the barrier
  (``benchmarks/duel_match_step.py``); SF notes the same limit.
  The reward still covers every tic of the step: the engine computes it from cumulative map reward and tic
  count at the state update (so SF's identical scheme does not lose the skipped tics' reward either).
- **A hung or dead peer blocks every other player** inside the engine call. A step (or reset) that does not
  finish within ``step_timeout`` (or ``init_timeout`` while engines start), or raises, kills the match's engines
  (their clients then raise at once), starts a new match on a fresh port and returns the new episode's first
  observations with ``truncated=True``, no ``episode_stats`` and ``info["match_restarted"] = True``: the lost
  episode is dropped, never reported. A thread still stuck after its engine was killed is abandoned (daemon).
- Ports come from ``ports.acquire_port`` (lock + UDP probe), held for the match's lifetime.

The engine ends an episode at ``+timelimit`` for every player on the same tic. vizdoom reports it as its time-out,
so that last step is ``truncated=True`` for all agents (``DoomEnv``'s rule for time limits; SF: terminal), with ``info["episode_stats"]`` per agent (``frags``, ``deaths``, ``true_objective``, ``unscaled_return``,
``shaping_return``, ``hits``, ``damage``, ``kdr``, ``final_place``, ``leader_gap``). As in ``DoomEnv`` (and gym)
the caller resets after the end; ``step`` after the end without ``reset`` raises.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from dataclasses import replace
from typing import Any

from asyncrl.env_api.multi_agent import RESTART_REASON, RESTARTED, MultiAgentEnv  # noqa: F401  (re-exported)

from . import lifecycle, ports, shaping
from .env import DoomEnv
from .scenarios import MatchSpec

log = logging.getLogger(__name__)

# SF's REWARD_SHAPING_DEATHMATCH_V1, the "zero-sum" self-play scheme: V0 with these entries replaced.
DEATHMATCH_V1 = {**shaping.DEATHMATCH_V0, "FRAGCOUNT": (1.0, -0.001), "DEATHCOUNT": (-1.0, 1.0),
                 "HITCOUNT": (0.0, 0.0), "DAMAGECOUNT": (0.01, -0.01), "HEALTH": (0.01, -0.01)}
# SF's host arguments (doom_multiagent.py) after -host/-port/-deathmatch/+timelimit.
_SERVER_ARGS = ("+sv_forcerespawn 1 +sv_noautoaim 1 +sv_respawnprotect 1 +sv_spawnfarthest 1 +sv_nocrouch 1"
                " +sv_nojump 1 +sv_nofreelook 1 +sv_noexit 1")


def make_shaping(kind: str) -> shaping.DeathmatchShaping | None:
    if kind == "deathmatch_v1":
        return shaping.DeathmatchShaping(DEATHMATCH_V1)
    if kind in ("none", "deathmatch"):
        return shaping.make_shaping(kind)
    raise ValueError(f"unknown match shaping {kind!r}; expected none, deathmatch or deathmatch_v1")


class _MatchFailure(Exception):
    """A player timed out or raised: the match is broken."""

    def __init__(self, message: str, after_s: float = 0.0):
        super().__init__(message)
        self.after_s = after_s  # seconds from the call to its failure


class _LockstepGame:
    """A ``DoomGame`` whose ``make_action`` advances tic by tic in lockstep with the match's other players."""

    def __init__(self, game, barrier: threading.Barrier | None, timeout: float):
        self._game, self._barrier, self._timeout = game, barrier, timeout

    def __getattr__(self, name):
        return getattr(self._game, name)

    def make_action(self, action, tics: int) -> float:
        game = self._game
        if self._barrier is None:  # a lone agent (with bots): nothing to wait for
            return game.make_action(action, tics)
        game.set_action(action)
        updated = False
        for k in range(tics):
            if not game.is_episode_finished():  # after the end the engine makes no more tics
                game.advance_action(1, k == tics - 1)
                updated = k == tics - 1
            self._barrier.wait(self._timeout)
        # The reward is counted at the state update; an end mid-step leaves the last update's (stale) value.
        return game.get_last_reward() if updated else 0.0


class _Player(DoomEnv):
    """One agent of a match: a ``DoomEnv`` that hosts or joins a network game and reports match stats."""

    recovers_engine = False  # a dead or hung player breaks the whole match: DoomMatch restarts it
    silent_engine = True  # lifecycle.engines_started_silent: the connection chatter is no user's business

    def __init__(self, match: MatchSpec, player_id: int, num_players: int, port: int, barrier, *,
                 frameskip: int, num_bots: int, timelimit_minutes: float, respawn_delay: int,
                 connect_timeout: int, tic_timeout: float, **doom_kwargs):
        self.match, self.player_id, self.num_players, self.port = match, player_id, num_players, port
        self.timelimit_minutes, self.respawn_delay, self.connect_timeout = timelimit_minutes, respawn_delay, connect_timeout
        self._barrier, self._tic_timeout = barrier, tic_timeout
        super().__init__(replace(match.player, shaping="none"), frameskip=frameskip,
                         num_bots=num_bots if player_id == 0 else 0, **doom_kwargs)
        self._shaping = make_shaping(match.shaping)

    def _game_args(self) -> str:
        if self.player_id == 0:
            return (f"-host {self.num_players} -port {self.port} -deathmatch +timelimit {self.timelimit_minutes:g} "
                    f"{_SERVER_ARGS} +viz_respawn_delay {self.respawn_delay} "
                    f"+viz_connect_timeout {self.connect_timeout} +name AI0_host +colorset 0")
        return (f"-join 127.0.0.1:{self.port} +viz_connect_timeout {self.connect_timeout} "
                f"+name AI{self.player_id} +colorset 0")

    def _create_game(self, seed: int):
        return _LockstepGame(super()._create_game(seed), self._barrier, self._tic_timeout)

    def _episode_stats(self, variables: dict[str, float]) -> dict[str, float]:
        stats = super()._episode_stats(variables)
        stats.update(shaping.match_stats(variables))
        if self.match.true_objective == "win" and self.num_players > 1:  # SF's winning_the_game: ties are no win
            won = stats.get("final_place") == 1.0 and stats.get("leader_gap", 0.0) != 0.0
            stats["true_objective"] = 1.0 if won else 0.0
        else:
            stats["true_objective"] = float(variables.get("FRAGCOUNT", 0.0))
        return stats

    def end_now(self) -> dict[str, float]:
        """Episode stats for an episode the match ends while this player's engine has not (a fallback)."""
        return self._episode_stats(self._last_vars)


class _Worker:
    """A thread that runs one player's calls; results go to the match's shared queue as (index, ok, value)."""

    def __init__(self, index: int, results: queue.SimpleQueue, name: str):
        self.index, self._results = index, results
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def submit(self, fn, *args, **kwargs) -> None:
        self._inbox.put((fn, args, kwargs))

    def stop(self) -> None:
        self._inbox.put(None)

    def _run(self) -> None:
        while (task := self._inbox.get()) is not None:
            fn, args, kwargs = task
            try:
                out = (self.index, True, fn(*args, **kwargs))
            except BaseException as e:  # the match decides; a dead engine raises vizdoom's own exception types
                out = (self.index, False, e)
            self._results.put(out)


class DoomMatch:
    """A multiplayer VizDoom match: ``num_agents`` agents (host + joiners), optional built-in bots.

    The spaces are one agent's (the same for all). Engines start on the first ``reset``.
    """

    def __init__(self, spec: MatchSpec, frameskip: int = 4, num_agents: int | None = None,
                 num_bots: int | None = None, timelimit_minutes: float | None = None,
                 respawn_delay: int | None = None, port_range: tuple[int, int] = ports.DEFAULT_RANGE,
                 step_timeout: float = 5.0, init_timeout: float = 30.0, connect_timeout: int = 10,
                 width: int = 128, height: int = 72, render_resolution: str = "160X120",
                 doom_map: str | None = None):
        self.spec = spec
        self.num_agents = spec.num_agents if num_agents is None else int(num_agents)
        self.num_bots = spec.num_bots if num_bots is None else int(num_bots)
        self.timelimit_minutes = float(spec.timelimit_minutes if timelimit_minutes is None else timelimit_minutes)
        self.respawn_delay = int(spec.respawn_delay if respawn_delay is None else respawn_delay)
        if not 1 <= self.num_agents <= 8:  # PLAYER1..8 in the engine's frag table (and SF's limit)
            raise ValueError(f"num_agents={self.num_agents!r} is invalid: expected 1 to 8")
        if self.num_bots < 0 or self.num_agents + self.num_bots > 16:
            raise ValueError(f"num_bots={self.num_bots!r} is invalid: expected >= 0 and at most 16 players in all")
        if not self.timelimit_minutes > 0:
            raise ValueError(f"timelimit_minutes={self.timelimit_minutes!r} is invalid: expected > 0")
        if step_timeout <= 0 or init_timeout <= 0:
            raise ValueError("step_timeout and init_timeout must be > 0 seconds")
        self.frameskip = int(frameskip)
        self.port_range = tuple(port_range)
        self.step_timeout, self.init_timeout, self.connect_timeout = float(step_timeout), float(init_timeout), int(connect_timeout)
        self._doom_kwargs = dict(width=width, height=height, render_resolution=render_resolution, doom_map=doom_map)
        self._shaping: dict[int, dict] = {}  # agent -> coefficients set by PBT
        self._template = template = self._make_player(0, port=0, barrier=None)  # no engine: spaces, checks
        self.observation_space = template.observation_space
        self.action_space = template.action_space

        self.restarts = 0  # matches restarted after a hang or a dead engine
        self.last_restart: dict[str, Any] | None = None  # reason, detected_after_s, restart_s, old/new port
        self.abandoned_threads = 0  # player threads still stuck in the engine after their engine was killed
        self._players: list[_Player] = []
        self._workers: list[_Worker] = []
        self._results: queue.SimpleQueue = queue.SimpleQueue()
        self._barrier: threading.Barrier | None = None
        self._lease: ports.PortLease | None = None
        self._episode_over = True
        self._closed = False
        self._step_started: float | None = None  # monotonic time of a step_async not yet collected

    # ---- the multi-agent interface --------------------------------------------------------------------------

    def reset(self, seed: int | None = None) -> tuple[list[Any], list[dict]]:
        self._check_open()
        if not self._players:
            obs, infos = self._start(seed)
        else:
            try:
                obs, infos = self._reset_all(seed)
            except _MatchFailure as e:
                obs, infos = self._restart(e)
        self._episode_over = False
        return obs, infos

    def step(self, actions: list[Any]):
        self.step_async(actions)
        return self.step_wait()

    def step_async(self, actions: list[Any]) -> None:
        """Hand every player its action and return at once: the engines step while the caller starts other
        matches (``EnvGroup`` steps all of a sampler's matches at once so). ``step_wait`` collects the step."""
        self._check_open()
        if self._episode_over:
            raise RuntimeError("DoomMatch.step() before reset() or after the episode ended: call reset()")
        if self._step_started is not None:
            raise RuntimeError("DoomMatch.step_async() twice without step_wait()")
        if len(actions) != self.num_agents:
            raise ValueError(f"expected {self.num_agents} actions (one per agent), got {len(actions)}")
        self._submit_all("step", [{"action": a} for a in actions])
        self._step_started = time.monotonic()

    def step_wait(self):
        """The step ``step_async`` started: per-agent lists as ``step`` returns them."""
        if self._step_started is None:
            raise RuntimeError("DoomMatch.step_wait() without step_async()")
        started, self._step_started = self._step_started, None
        try:
            results = self._gather("step", started, self.step_timeout)
        except _MatchFailure as e:
            obs, infos = self._restart(e)
            n = self.num_agents
            return obs, [0.0] * n, [False] * n, [True] * n, infos
        obs, rewards, terminated, truncated, infos = (list(x) for x in zip(*results, strict=True))
        done = [t or u for t, u in zip(terminated, truncated, strict=True)]
        if any(done):
            # Every player's engine ends the match on the same tic; should one not have, end it here too.
            for i, d in enumerate(done):
                if not d:
                    log.warning("match %s: player %d had not seen the end its peers saw", self.spec.name, i)
                    terminated[i] = True
                    infos[i]["episode_stats"] = self._players[i].end_now()
            self._episode_over = True
        return obs, [float(r) for r in rewards], terminated, truncated, infos

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._teardown(kill=False)

    def get_reward_shaping(self, agent: int) -> dict | None:
        if agent in self._shaping:
            return self._shaping[agent]
        return self._template.get_reward_shaping()

    def set_reward_shaping(self, coeffs: dict, agent: int) -> None:
        """PBT's shaping for one agent slot; kept for the players of later (restarted) matches too."""
        self._shaping[agent] = coeffs
        if agent < len(self._players):
            self._players[agent].set_reward_shaping(coeffs)

    # ---- diagnostics ------------------------------------------------------------------------------------------

    @property
    def port(self) -> int | None:
        return self._lease.port if self._lease is not None else None

    def engine_pids(self) -> list[int]:
        """Pids of this match's live engines (host first, then joiners), found by their port arguments."""
        if self._lease is None:
            return []
        port = str(self._lease.port)
        hosts, joiners = [], []
        for pid in lifecycle.engine_pids():
            args = lifecycle.engine_args(pid)
            pairs = set(zip(args, args[1:], strict=False))
            if ("-port", port) in pairs and "-host" in args:
                hosts.append(pid)
            elif ("-join", f"127.0.0.1:{port}") in pairs:
                joiners.append(pid)
        return hosts + joiners

    # ---- internals --------------------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("DoomMatch is closed")

    def _seed(self, seed: int | None, player_id: int) -> int | None:
        return None if seed is None else int(seed) * 16 + player_id

    def _make_player(self, player_id: int, port: int, barrier) -> _Player:
        player = _Player(self.spec, player_id, self.num_agents, port, barrier, frameskip=self.frameskip,
                         num_bots=self.num_bots, timelimit_minutes=self.timelimit_minutes,
                         respawn_delay=self.respawn_delay, connect_timeout=self.connect_timeout,
                         tic_timeout=self.step_timeout, **self._doom_kwargs)
        if player_id in self._shaping:
            player.set_reward_shaping(self._shaping[player_id])
        return player

    def _call_all(self, method: str, kwargs: list[dict], timeout: float) -> list[Any]:
        """Run ``player.method(**kwargs[i])`` on every player's thread at once; raise ``_MatchFailure`` if one
        raises or they are not all done within ``timeout`` seconds."""
        start = time.monotonic()
        self._submit_all(method, kwargs)
        return self._gather(method, start, timeout)

    def _submit_all(self, method: str, kwargs: list[dict]) -> None:
        for worker, player, kw in zip(self._workers, self._players, kwargs, strict=True):
            worker.submit(getattr(player, method), **kw)

    def _gather(self, method: str, start: float, timeout: float) -> list[Any]:
        """Every player's result of the call submitted at ``start``, in player order."""
        results = self._results
        out: list[Any] = [None] * len(self._players)
        deadline = start + timeout
        for _ in range(len(out)):
            try:
                index, ok, value = results.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise _MatchFailure(f"{method} did not finish within {timeout:g} s", time.monotonic() - start) from None
            if not ok:
                raise _MatchFailure(f"player {index} {method} raised {value!r}", time.monotonic() - start) from value
            out[index] = value
        return out

    def _reset_all(self, seed: int | None) -> tuple[list[Any], list[dict]]:
        """Reset every player at once (the first reset starts the engines); per-agent (obs, infos) lists."""
        results = self._call_all("reset", [{"seed": self._seed(seed, i)} for i in range(self.num_agents)],
                                 self.init_timeout)
        return [obs for obs, _ in results], [info for _, info in results]

    def _start(self, seed: int | None) -> tuple[list[Any], list[dict]]:
        """Lease a port, create the players and start their engines (``reset`` inits them)."""
        failed_ports: set[int] = set()
        for attempt in range(3):
            self._lease = ports.acquire_port(self.port_range, exclude=failed_ports)
            n = self.num_agents
            self._barrier = threading.Barrier(n) if n > 1 else None
            self._results = queue.SimpleQueue()
            self._players = [self._make_player(i, self._lease.port, self._barrier) for i in range(n)]
            self._workers = [_Worker(i, self._results, f"doom-match-{self._lease.port}-p{i}") for i in range(n)]
            try:
                return self._reset_all(seed)
            except _MatchFailure as e:
                log.warning("match %s on port %d failed to start (attempt %d): %s", self.spec.name,
                            self._lease.port, attempt + 1, e)
                failed_ports.add(self._lease.port)
                self._teardown(kill=True)
        raise RuntimeError(f"VizDoom match {self.spec.name} failed to start 3 times; see the log for why")

    def _restart(self, reason: _MatchFailure) -> tuple[list[Any], list[dict]]:
        log.warning("match %s on port %s broke (%s): killing its engines and restarting on a fresh port",
                    self.spec.name, self.port, reason)
        start, old_port = time.monotonic(), self.port
        self._teardown(kill=True)
        self.restarts += 1
        obs, infos = self._start(seed=None)
        self.last_restart = {"reason": str(reason), "detected_after_s": reason.after_s,
                             "restart_s": time.monotonic() - start, "old_port": old_port, "new_port": self.port}
        for info in infos:
            info["match_restarted"] = True
            info[RESTARTED] = True  # the sampler drops the broken episode
            info[RESTART_REASON] = f"match {self.spec.name} broke ({reason}); restarted on port {self.port}"
        self._episode_over = False
        return obs, infos

    def _teardown(self, kill: bool, grace: float = 3.0) -> None:
        """Stop the players and free the port. ``kill``: SIGKILL the engines first (a broken match), which makes
        any player call blocked in the engine raise. Players are closed on their own threads; a thread still
        busy after ``grace`` seconds gets its engines killed and is then abandoned."""
        if self._barrier is not None:
            self._barrier.abort()  # players waiting for a peer's tic raise BrokenBarrierError
        if kill:
            lifecycle.kill_engines(self.engine_pids())
        for worker, player in zip(self._workers, self._players, strict=True):
            worker.submit(player.close)
            worker.stop()
        deadline = time.monotonic() + grace
        for worker in self._workers:
            worker.thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [w for w in self._workers if w.thread.is_alive()]
        if stuck:
            lifecycle.kill_engines(self.engine_pids())
            for worker in stuck:
                worker.thread.join(1.0)
            still = sum(w.thread.is_alive() for w in stuck)
            if still:
                self.abandoned_threads += still
                log.warning("match %s: %d player thread(s) stuck after their engines were killed; abandoned",
                            self.spec.name, still)
        self._players, self._workers, self._barrier = [], [], None
        self._episode_over, self._step_started = True, None
        if self._lease is not None:
            self._lease.release()
            self._lease = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

