"""The run's own state beside its learners and population: what a resumed run continues from.

It is the checkpoint's ``counters`` entry (a plain dict of these fields), so a checkpoint is readable without
this class; one written before a field existed gets that field's default.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from asyncrl.progress import Progress


@dataclass
class RunState:
    env_steps: int = 0  # agent steps, all policies, every session of the run
    episodes: int = 0
    wall_s: float = 0.0  # wall time of every session so far
    saves: int = 0  # checkpoints written
    train_steps: int = 0  # learner steps, all policies
    dropped_samples: int = 0  # samples too stale to train on (policy lag)
    env_restarts: int = 0  # episodes an env dropped because its simulator failed
    next_eval: int = 0  # env steps at which the next in-training evaluation starts
    best_eval: dict | None = None  # the best evaluation so far: its metric, value and results
    target_reached_at: int | None = None  # env steps when train.target_return was first reached
    policy_steps: dict[int, int] = field(default_factory=dict)
    recent_returns: dict[int, list[float]] = field(default_factory=dict)  # per policy, its stats window
    recent_extras: dict[int, dict[str, list[float]]] = field(default_factory=dict)

    @classmethod
    def from_checkpoint(cls, counters: dict) -> RunState:
        known = {f.name for f in fields(cls)}
        state = cls(**{k: v for k, v in counters.items() if k in known})
        state.policy_steps = {int(k): int(v) for k, v in state.policy_steps.items()}
        state.recent_returns = {int(k): list(v) for k, v in state.recent_returns.items()}
        state.recent_extras = {int(k): dict(v) for k, v in state.recent_extras.items()}
        return state

    def to_checkpoint(self) -> dict:
        return asdict(self)

    def progress(self, policy_ids: tuple[int, ...], stats_window: int) -> Progress:
        """A ``Progress`` that goes on from this state (its counts and each policy's recent episodes)."""
        progress = Progress(policy_ids, stats_window, self.env_steps, self.episodes, self.policy_steps)
        for pid, stats in progress.stats.items():
            stats.restore(self.recent_returns.get(pid, []), self.recent_extras.get(pid, {}))
        return progress

    def take(self, progress: Progress) -> None:
        """Copy what ``progress`` has counted since into this state (before a checkpoint or the summary)."""
        self.env_steps, self.episodes = progress.env_steps, progress.episodes
        self.policy_steps = dict(progress.policy_steps)
        self.recent_returns = {pid: list(s.returns) for pid, s in progress.stats.items()}
        self.recent_extras = {pid: {k: list(v) for k, v in s.extras.items()} for pid, s in progress.stats.items()}
