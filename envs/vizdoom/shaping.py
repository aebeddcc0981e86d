"""Sample Factory's reward shaping, measurement vector and match stats, on dicts of game variables.

Each shaper sees the game variables after every step (``None`` when the engine has no state left, i.e. the
episode is over) and returns the shaping reward of that step, unscaled. As in SF, no shaping is paid on the
step that ends an episode.
"""

from __future__ import annotations

from collections import deque

import numpy as np

NUM_WEAPONS = 8
_WEAPON_PREFERENCE = {2: 1, 3: 5, 4: 5, 5: 5, 6: 10, 7: 10}  # pistol, shotguns, chaingun, rockets, plasma, bfg


def _deathmatch_v0_deltas() -> dict[str, tuple[float, float]]:
    """SF's REWARD_SHAPING_DEATHMATCH_V0 ``delta``: (reward per unit increase, per unit decrease)."""
    deltas = {"FRAGCOUNT": (1.0, -1.5), "DEATHCOUNT": (-0.75, 0.75), "HITCOUNT": (0.01, -0.01),
              "DAMAGECOUNT": (0.003, -0.003), "HEALTH": (0.005, -0.003), "ARMOR": (0.005, -0.001)}
    for w in range(NUM_WEAPONS):
        pref = _WEAPON_PREFERENCE.get(w, 1)
        deltas[f"WEAPON{w}"] = (0.02 * pref, -0.01 * pref)
        deltas[f"AMMO{w}"] = (0.0002 * pref, -0.0001 * pref)
    return deltas


DEATHMATCH_V0 = _deathmatch_v0_deltas()
# SF pays SELECTED{weapon} using its module-level loop variable, which is left at 7, so every held weapon
# earns SELECTED7 = 0.0002 * 10. We pay what SF's code pays, not what its comment intends.
SELECTED_WEAPON_REWARD = 0.0002 * _WEAPON_PREFERENCE[7]
_DELTA_LIMITS = {"DAMAGECOUNT": 200.0, "HITCOUNT": 5.0}  # per-step caps on increases (SF: "BFG and shotguns")
_EPS = 1e-6


class GatheringShaping:
    """SF's DoomGatheringRewardShaping (arXiv 1904.01806): +1 on each step where HEALTH went up."""

    def __init__(self) -> None:
        self._prev_health: float | None = None

    def reset(self, variables: dict[str, float]) -> None:
        self._prev_health = None

    def step(self, variables: dict[str, float] | None, done: bool) -> float:
        if variables is None or done:
            return 0.0
        health = variables.get("HEALTH", 0.0)
        reward = 1.0 if self._prev_health is not None and health - self._prev_health > 0.0 else 0.0
        self._prev_health = health
        return reward


class DeathmatchShaping:
    """SF's DoomRewardShapingWrapper with REWARD_SHAPING_DEATHMATCH_V0 (the 1-agent-vs-bots scheme)."""

    def __init__(self, deltas: dict[str, tuple[float, float]] | None = None,
                 selected_weapon_reward: float = SELECTED_WEAPON_REWARD) -> None:
        self.deltas = dict(DEATHMATCH_V0 if deltas is None else deltas)
        self.selected_weapon_reward = selected_weapon_reward
        self._prev: dict[str, float] = {}
        self._prev_dead = True
        self._selected: deque[int] = deque(maxlen=5)

    def reset(self, variables: dict[str, float]) -> None:
        self._prev, self._prev_dead = {}, True
        self._selected.clear()

    def step(self, variables: dict[str, float] | None, done: bool) -> float:
        if variables is None:
            return 0.0
        weapon = int(max(0.0, variables.get("SELECTED_WEAPON", 0.0)))
        ammo = max(0.0, variables.get("SELECTED_WEAPON_AMMO", 0.0))
        self._selected.append(weapon)
        just_respawned = self._prev_dead and not variables.get("DEAD", 0.0)
        reward = 0.0
        if not done and not just_respawned:
            for name, (up, down) in self.deltas.items():
                if name not in self._prev:
                    continue
                change = variables.get(name, 0.0) - self._prev[name]
                change = min(change, _DELTA_LIMITS.get(name, change))
                if change > _EPS:
                    reward += change * up
                elif change < -_EPS:
                    reward -= change * down
            held = len(self._selected) > 4 and all(w == weapon for w in self._selected)
            if held and ammo > 0:
                reward += self.selected_weapon_reward
        self._prev = {name: variables.get(name, 0.0) for name in self.deltas}
        self._prev_dead = bool(variables.get("DEAD", 0.0))
        return reward


    def coefficients(self) -> dict:
        """What PBT may perturb (SF's ``delta`` and ``selected_weapon`` categories), as plain JSON."""
        return {"delta": {k: [float(up), float(down)] for k, (up, down) in self.deltas.items()},
                "selected_weapon": float(self.selected_weapon_reward)}

    def set_coefficients(self, coeffs: dict) -> None:
        # One assignment each, so a player thread mid-step sees the old or the new table, never a mix.
        self.deltas = {k: (float(v[0]), float(v[1])) for k, v in coeffs["delta"].items()}
        self.selected_weapon_reward = float(coeffs["selected_weapon"])


def make_shaping(kind: str) -> GatheringShaping | DeathmatchShaping | None:
    if kind == "none":
        return None
    if kind == "gathering":
        return GatheringShaping()
    if kind == "deathmatch":
        return DeathmatchShaping()
    raise ValueError(f"unknown shaping {kind!r}; expected none, gathering or deathmatch")


# SF's DoomAdditionalInput: 7 scalars, then 8 weapon counts, then 8 ammo counts (scaled like the DFP paper).
MEASUREMENTS_LOW = np.array([0.0, 0.0, -1.0, -1.0, -50.0, 0.0, 0.0] + [0.0] * 16, dtype=np.float32)
MEASUREMENTS_HIGH = np.array([20.0, 50.0, 50.0, 50.0, 50.0, 1.0, 10.0] + [5.0] * 8 + [50.0] * 8, dtype=np.float32)


def measurements(variables: dict[str, float], out: np.ndarray) -> np.ndarray:
    """Fill ``out`` (float32 [23]) from the game variables; values are clipped into the declared Box."""
    v = variables.get
    out[0] = round(max(0.0, v("SELECTED_WEAPON", 0.0)))
    out[1] = min(max(0.0, v("SELECTED_WEAPON_AMMO", 0.0)) / 15.0, 5.0)
    out[2] = max(0.0, v("HEALTH", 0.0)) / 30.0
    out[3] = v("ARMOR", 0.0) / 30.0
    out[4] = v("USER2", 0.0) / 10.0
    out[5] = v("ATTACK_READY", 0.0)
    out[6] = v("PLAYER_COUNT", 1.0) / 5.0
    for w in range(NUM_WEAPONS):
        out[7 + w] = max(0.0, v(f"WEAPON{w}", 0.0))
        out[7 + NUM_WEAPONS + w] = min(max(0.0, v(f"AMMO{w}", 0.0)) / 15.0, 5.0)
    np.clip(out, MEASUREMENTS_LOW, MEASUREMENTS_HIGH, out=out)
    return out


def match_stats(variables: dict[str, float]) -> dict[str, float]:
    """SF's MultiplayerStatsWrapper: kill/death ratio, place among all players (1 = first), gap to the leader
    (for the winner: minus the lead over second place)."""
    frags = variables.get("FRAGCOUNT", 0.0)
    stats = {"kdr": frags / (variables.get("DEATHCOUNT", 0.0) + 1.0)}
    count = max(1, int(variables.get("PLAYER_COUNT", 1)))
    me = int(variables.get("PLAYER_NUMBER", 0))
    table = [variables.get(f"PLAYER{i}_FRAGCOUNT", -100000.0) for i in range(1, count + 1)]
    if not 0 <= me < count:
        return stats
    order = list(np.argsort(table))
    stats["final_place"] = float(count - order.index(me))
    if stats["final_place"] > 1:
        stats["leader_gap"] = float(max(table) - table[me])
    elif count > 1:
        ranked = sorted(table, reverse=True)
        stats["leader_gap"] = float(ranked[1] - ranked[0])
    else:
        stats["leader_gap"] = 0.0
    return stats
