"""The scenario registry: one ``DoomSpec`` per name, mirroring Sample Factory's ``DOOM_ENVS`` table.

Only the ``.cfg``/``.wad`` files that ship in the ``vizdoom`` wheel are used (``vizdoom.scenarios_path``).
Sample Factory ships its own copies of the ``.cfg`` files; where they differ from the wheel's (buttons,
rewards, HUD) the spec overrides the wheel's value with Sample Factory's, so the game is the one SF trains
on. The ``.wad`` files are byte-identical to SF's except ``health_gathering_supreme.wad`` (the wheel has a
newer revision of the map).

Actions: each ``Head`` is one categorical choice. A button head has ``n = len(buttons) + 1`` values:
0 is a no-op and ``i`` presses ``buttons[i-1]`` (SF's one-hot ``Discrete`` sub-spaces). A delta head maps
value ``i`` to ``low + i * (high - low) / (n - 1)`` on a delta button (SF's ``Discretized``). One head gives
a ``Discrete`` space, several a ``MultiDiscrete`` (SF uses a ``Tuple`` of ``Discrete``: same distribution).
The engine's button list is the heads' buttons in order, so the two can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

import gymnasium as gym
import numpy as np


@dataclass(frozen=True)
class Head:
    """One categorical action component: a group of mutually exclusive buttons, or a discretized delta."""

    buttons: tuple[str, ...]
    n: int
    delta_range: tuple[float, float] | None = None  # set for a delta head: values low..high over n steps

    def table(self) -> np.ndarray:
        """[n, len(buttons)] float64: the button values each choice sends to the engine."""
        if self.delta_range is None:
            return np.vstack([np.zeros(len(self.buttons)), np.eye(len(self.buttons))])
        low, high = self.delta_range
        return np.linspace(low, high, self.n).reshape(self.n, 1)


def buttons(*names: str) -> Head:
    return Head(tuple(names), len(names) + 1)


def delta(name: str, n: int, low: float, high: float) -> Head:
    return Head((name,), n, (float(low), float(high)))


@dataclass(frozen=True)
class DoomSpec:
    """How one named scenario is built. Tics are engine frames (35 per second); steps are agent steps."""

    name: str
    cfg: str  # file in vizdoom.scenarios_path
    heads: tuple[Head, ...]
    reward_scale: float = 1.0  # applied after shaping, as SF's RewardScalingWrapper
    timeout: int = 0  # episode length limit in tics after the start time (0: none); ends with truncated=True
    # Values that replace the wheel .cfg's to match SF's .cfg (None keeps the wheel's).
    living_reward: float | None = None
    death_penalty: float | None = None
    render: dict[str, bool] = field(default_factory=dict)  # hud, crosshair, weapon, decals, particles
    game_vars: tuple[str, ...] = ()  # replaces available_game_variables when given
    shaping: str = "none"  # none | gathering | deathmatch (SF's DEATHMATCH_V0 scheme)
    true_objective: str = "return"  # return (SF's default: the scaled, shaped return) | unshaped | frags
    measurements: bool = False  # SF's DoomAdditionalInput: a 23-float "measurements" observation
    stats: dict[str, str] = field(default_factory=dict)  # episode_stats key -> game variable (final value)
    num_bots: int = 0  # > 0: a 1-player deathmatch host with this many built-in bots (SF's *_bots envs)
    doom_map: str | None = None
    origin: str = "sf"  # sf: SF's DOOM_ENVS entry; ours: a wheel scenario SF does not define

    @property
    def buttons(self) -> tuple[str, ...]:
        return tuple(b for h in self.heads for b in h.buttons)

    def action_space(self) -> gym.Space:
        if len(self.heads) == 1:
            return gym.spaces.Discrete(self.heads[0].n)
        return gym.spaces.MultiDiscrete([h.n for h in self.heads])


# SF's .cfg render settings: decals and particles off everywhere; the HUD where its .cfg turns it on.
_HUD = MappingProxyType({"hud": True, "decals": False, "particles": False})
_NO_HUD = MappingProxyType({"hud": False, "decals": False, "particles": False})
_KILLS = MappingProxyType({"kills": "KILLCOUNT"})

_TURN_AND_ATTACK = (buttons("TURN_LEFT", "TURN_RIGHT"), buttons("ATTACK"))  # SF doom_turn_and_attack_only
_TURN_AND_MOVE = (buttons("TURN_LEFT", "TURN_RIGHT"), buttons("MOVE_FORWARD", "MOVE_BACKWARD"))  # SF basic
_EXTENDED = (  # SF doom_action_space_extended
    buttons("TURN_LEFT", "TURN_RIGHT"),
    buttons("MOVE_FORWARD", "MOVE_BACKWARD"),
    buttons("MOVE_LEFT", "MOVE_RIGHT"),
    buttons("ATTACK"),
)
_FULL_DISCRETIZED = (  # SF doom_action_space_full_discretized(with_use=False)
    buttons("MOVE_FORWARD", "MOVE_BACKWARD"),
    buttons("MOVE_RIGHT", "MOVE_LEFT"),
    buttons(*(f"SELECT_WEAPON{i}" for i in range(1, 8))),
    buttons("ATTACK"),
    buttons("SPEED"),
    delta("TURN_LEFT_RIGHT_DELTA", 21, -12.5, 12.5),
)
# SF's full_discretized(with_use=True): its duel and duel_bots actions (USE opens the doors of its maps).
_FULL_DISCRETIZED_WITH_USE = _FULL_DISCRETIZED[:5] + (buttons("USE"),) + _FULL_DISCRETIZED[5:]
# SF's dwango5/ssl2 .cfg variables (the measurements, the shaping and the multiplayer stats read them).
_DEATHMATCH_VARS = (
    "POSITION_X", "POSITION_Y", "ANGLE", "SELECTED_WEAPON", "SELECTED_WEAPON_AMMO", "HEALTH", "ARMOR", "USER2",
    "DEATHCOUNT", "FRAGCOUNT", "HITCOUNT", "DEAD",
    *(f"WEAPON{i}" for i in range(10)), *(f"AMMO{i}" for i in range(10)),
    "ATTACK_READY", "DAMAGECOUNT", "PLAYER_NUMBER", "PLAYER_COUNT", *(f"PLAYER{i}_FRAGCOUNT" for i in range(1, 10)),
)  # fmt: skip
# A deathmatch player (against bots or agents): what it sees and measures, what its episodes report.
_DEATHMATCH_PLAYER = dict(
    render={"hud": True, "crosshair": True, "weapon": True, "decals": False, "particles": False},
    game_vars=_DEATHMATCH_VARS, true_objective="frags", measurements=True,
    stats={"frags": "FRAGCOUNT", "deaths": "DEATHCOUNT", "hits": "HITCOUNT", "damage": "DAMAGECOUNT"},
)  # fmt: skip
_GATHERING = dict(  # SF's health_gathering .cfg: +0.01 per tic alive, no death penalty, 4 movement buttons
    heads=(buttons("TURN_LEFT", "TURN_RIGHT", "MOVE_FORWARD", "MOVE_BACKWARD"),),
    timeout=2100, living_reward=0.01, death_penalty=0.0, render={**_NO_HUD, "weapon": False},
    game_vars=("HEALTH",), shaping="gathering", true_objective="unshaped",
)  # fmt: skip

_SPECS = [
    DoomSpec("doom_basic", "basic.cfg", (buttons("MOVE_LEFT", "MOVE_RIGHT", "ATTACK"),), reward_scale=0.01,
             timeout=300, render=_HUD, game_vars=("AMMO2", "KILLCOUNT"), stats=_KILLS),
    DoomSpec("doom_defend_the_center", "defend_the_center.cfg", _TURN_AND_ATTACK, timeout=2100, render=_HUD,
             game_vars=("AMMO2", "HEALTH", "KILLCOUNT"), stats=_KILLS),
    DoomSpec("doom_defend_the_center_flat_actions", "defend_the_center.cfg",
             (buttons("TURN_LEFT", "TURN_RIGHT", "ATTACK"),), timeout=2100, render=_HUD,
             game_vars=("AMMO2", "HEALTH", "KILLCOUNT"), stats=_KILLS),
    # No time limit, as in SF and the .cfg: the episode ends when the player dies.
    DoomSpec("doom_defend_the_line", "defend_the_line.cfg", _TURN_AND_ATTACK, render=_HUD,
             game_vars=("AMMO2", "HEALTH", "KILLCOUNT"), stats=_KILLS),
    DoomSpec("doom_health_gathering", "health_gathering.cfg", **_GATHERING),
    DoomSpec("doom_health_gathering_supreme", "health_gathering_supreme.cfg", **_GATHERING),
    DoomSpec("doom_deadly_corridor", "deadly_corridor.cfg", _EXTENDED, reward_scale=0.01, timeout=2100,
             render=_HUD, game_vars=("HEALTH", "KILLCOUNT"), stats=_KILLS),
    DoomSpec("doom_my_way_home", "my_way_home.cfg", _TURN_AND_MOVE, timeout=2100, render=_NO_HUD,
             game_vars=("AMMO0",)),
    DoomSpec("doom_my_way_home_flat_actions", "my_way_home.cfg",
             (buttons("TURN_LEFT", "TURN_RIGHT", "MOVE_FORWARD", "MOVE_BACKWARD"),), timeout=2100,
             render=_NO_HUD, game_vars=("AMMO0",)),
    # 1 agent + 7 built-in bots: SF's doom_deathmatch_bots (its dwango5 map is not in the wheel; cig.wad
    # is), 4-minute matches (SF's timelimit=4.0), SF's V0 shaping, frags as the true objective.
    DoomSpec("doom_deathmatch", "cig.cfg", _FULL_DISCRETIZED, timeout=4 * 60 * 35, shaping="deathmatch",
             num_bots=7, **_DEATHMATCH_PLAYER),
    # 1 agent + 1 built-in bot: SF's doom_duel_bots on the duel's map (cig.wad map01, SF's ssl2.wad is not in
    # the wheel), with the duel player's actions and measurements, so a policy trained here plays doom_duel
    # unchanged (the duel recipe's first stage). SF's V0 shaping, frags as the true objective, 4 minutes.
    DoomSpec("doom_duel_bots", "cig.cfg", _FULL_DISCRETIZED_WITH_USE, timeout=4 * 60 * 35, shaping="deathmatch",
             num_bots=1, **_DEATHMATCH_PLAYER),
    # Wheel scenarios that SF does not define: SF-style action spaces, our choices of scale and timeout.
    DoomSpec("doom_take_cover", "take_cover.cfg", (buttons("MOVE_LEFT", "MOVE_RIGHT"),), reward_scale=0.01,
             timeout=2100, render=_NO_HUD, game_vars=("HEALTH",), origin="ours"),
    DoomSpec("doom_predict_position", "predict_position.cfg", _TURN_AND_ATTACK, timeout=300, render=_NO_HUD,
             game_vars=("KILLCOUNT",), stats=_KILLS, origin="ours"),
    DoomSpec("doom_rocket_basic", "rocket_basic.cfg", (buttons("MOVE_LEFT", "MOVE_RIGHT", "ATTACK"),),
             reward_scale=0.01, timeout=300, render=_NO_HUD, game_vars=("KILLCOUNT",), stats=_KILLS,
             origin="ours"),
    # The wheel's single-player deathmatch.wad: an arena of monsters, reward per kill from the map's script.
    DoomSpec("doom_deathmatch_monsters", "deathmatch.cfg", _FULL_DISCRETIZED, timeout=4200, render=_HUD,
             game_vars=_DEATHMATCH_VARS + ("KILLCOUNT",), measurements=True, stats=_KILLS, origin="ours"),
]  # fmt: skip

SCENARIOS: MappingProxyType[str, DoomSpec] = MappingProxyType({s.name: s for s in _SPECS})


@dataclass(frozen=True)
class MatchSpec:
    """A multiplayer match (``asyncrl_envs.vizdoom.match.DoomMatch``): every agent plays ``player``, one engine each.

    The engine ends the match after ``timelimit_minutes`` (``+timelimit``): a terminal step for every agent.
    """

    name: str
    player: DoomSpec  # each agent's game: .cfg, buttons, variables, measurements, reward scale
    num_agents: int = 2
    num_bots: int = 0  # built-in bots added by the host on every reset
    timelimit_minutes: float = 4.0  # SF's multiplayer timelimit
    respawn_delay: int = 2  # seconds (+viz_respawn_delay)
    shaping: str = "deathmatch_v1"  # none | deathmatch (SF's V0) | deathmatch_v1 (SF's zero-sum self-play V1)
    # frags | win: 1.0 for an outright win, else 0.0 (SF's self-play objective; with >= 2 agents, else frags)
    true_objective: str = "frags"


# SF's doom_duel (2 agents, its ssl2.wad, which the wheel lacks) on the wheel's cig.wad map01: SF's
# full_discretized(with_use=True) actions, measurements, V1 shaping, win as the true objective. The wheel's
# multi_duel.wad is a bare corridor with a rocket launcher given on spawn: no weapons, items or map to learn.
_DUEL_PLAYER = DoomSpec("doom_duel", "cig.cfg", _FULL_DISCRETIZED_WITH_USE, **_DEATHMATCH_PLAYER)
_MATCHES = [MatchSpec("doom_duel", _DUEL_PLAYER, num_agents=2, true_objective="win")]
MATCHES: MappingProxyType[str, MatchSpec] = MappingProxyType({m.name: m for m in _MATCHES})


def match_names() -> list[str]:
    return sorted(MATCHES)


def get_match_spec(name: str) -> MatchSpec:
    try:
        return MATCHES[name]
    except KeyError:
        raise ValueError(f"unknown VizDoom match {name!r}; valid names: {', '.join(match_names())}") from None


def scenario_names() -> list[str]:
    return sorted(SCENARIOS)


def get_spec(name: str) -> DoomSpec:
    if name in MATCHES:
        raise ValueError(f"{name!r} is a multi-agent VizDoom match: build it with asyncrl_envs.vizdoom:make_match")
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown VizDoom scenario {name!r}; valid names: {', '.join(scenario_names())}") from None
