"""Which policy plays each agent slot of a sampler's envs (plain, seeded; no Ray, no torch).

Single-agent envs: env ``i`` (global index) is played by policy ``i % size`` for the whole run, so every
policy gets the same share of the samplers. Multi-agent envs: each env draws a policy per slot (or one for
all its slots when ``mix_in_one_env`` is off) and draws again after every ``resample_every`` of its episodes,
so that policies meet each other; with ``draw_per="sampler"`` the n-th episode of every env of the sampler
gets the same (n-th) draw, so a policy's slots line up across the envs and one forward pass serves them. With
an opponent pool, each slot but the first of an env is played by a frozen snapshot with probability
``opponent_rate``; slot 0 always belongs to the population, so every episode trains somebody.
"""

from __future__ import annotations

import numpy as np

# Opponent snapshots get policy ids from here on; population ids are 0 .. size-1 (size < this).
OPPONENT_ID_BASE = 1000


def is_opponent(policy_id: int) -> bool:
    return policy_id >= OPPONENT_ID_BASE


class PolicyMapping:
    def __init__(self, num_envs: int, num_agents: int, population_size: int, first_env: int = 0,
                 resample_every: int = 1, mix_in_one_env: bool = True, opponent_rate: float = 0.0,
                 seed: int = 0, draw_per: str = "env"):
        if draw_per not in ("env", "sampler"):
            raise ValueError(f"draw_per={draw_per!r}: expected env or sampler")
        self.num_envs, self.num_agents, self.size = num_envs, num_agents, population_size
        self.draw_per = draw_per
        self._shared: dict[int, np.ndarray] = {}  # draw_per="sampler": episode number -> the draw for it
        self.resample_every, self.mix, self.opponent_rate = resample_every, mix_in_one_env, opponent_rate
        self.rng = np.random.default_rng(seed)
        self.opponents: list[int] = []  # snapshot ids that may be drawn
        self.policy_of = np.zeros(num_envs * num_agents, dtype=np.int64)
        self._episodes = np.zeros(num_envs, dtype=np.int64)
        for env in range(num_envs):
            if num_agents == 1:
                self.policy_of[env] = (first_env + env) % population_size
            else:
                self._draw(env)

    def slots(self, env: int) -> slice:
        return slice(env * self.num_agents, (env + 1) * self.num_agents)

    def _draw(self, env: int) -> None:
        if self.draw_per == "env":
            self.policy_of[self.slots(env)] = self._new_draw()
            return
        n = int(self._episodes[env])
        if n not in self._shared:
            self._shared[n] = self._new_draw()
        self.policy_of[self.slots(env)] = self._shared[n]
        # Draws no env can ask for again (every env is past them) are dropped.
        for old in [m for m in self._shared if m < self._episodes.min()]:
            del self._shared[old]

    def _new_draw(self) -> np.ndarray:
        k = self.num_agents
        if self.mix:
            ids = self.rng.integers(0, self.size, size=k)
        else:
            ids = np.full(k, self.rng.integers(0, self.size))
        if self.opponents and self.opponent_rate > 0:
            for a in range(1, k):
                if self.rng.random() < self.opponent_rate:
                    ids[a] = self.opponents[self.rng.integers(len(self.opponents))]
        return ids

    def episode_ended(self, env: int) -> bool:
        """Count an episode of ``env``; returns True if its slots were drawn again."""
        self._episodes[env] += 1
        if self.num_agents == 1 or self._episodes[env] % self.resample_every:
            return False
        self._draw(env)
        return True

    def set_opponents(self, snapshot_ids: list[int]) -> None:
        """The pool changed: later draws pick from these. A slot held by a dropped snapshot gets another
        snapshot at once (it is never trained on, so a switch mid-episode costs nothing); so does a shared draw
        (``draw_per="sampler"``) kept for envs that have not reached it yet, the same one for all its envs."""
        self.opponents = list(snapshot_ids)
        replacement: dict[int, int] = {}  # dropped snapshot -> its stand-in, so shared draws stay shared

        def stand_in(pid: int) -> int:
            pick = int(self.opponents[self.rng.integers(len(self.opponents))] if self.opponents
                       else self.rng.integers(0, self.size))
            return replacement.setdefault(pid, pick) if self.draw_per == "sampler" else pick

        for ids in (self.policy_of, *self._shared.values()):
            for i, pid in enumerate(ids):
                if is_opponent(int(pid)) and int(pid) not in self.opponents:
                    ids[i] = stand_in(int(pid))
