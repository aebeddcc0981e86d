"""``summary.json``: how the run ended and what it reached, written every checkpoint period and at the end."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from asyncrl.config.schema import Config
from asyncrl.outputs.run_dir import write_json
from asyncrl.progress import Progress
from asyncrl.timing import TimeBreakdown
from asyncrl.training.run_state import RunState


class LagStats:
    """Policy lag (learner version - behaviour version) over the learner steps of this session."""

    def __init__(self) -> None:
        self.min, self.max, self.total, self.count = float("inf"), float("-inf"), 0.0, 0

    def add(self, m: dict[str, float]) -> None:
        self.min = min(self.min, m["policy_lag/min"])
        self.max = max(self.max, m["policy_lag/max"])
        self.total += m["policy_lag/mean"]
        self.count += 1

    def as_tuple(self) -> tuple[float, float, float] | None:
        return (self.min, self.total / self.count, self.max) if self.count else None


def write_summary(path: Path, *, status: str, cfg: Config, state: RunState, progress: Progress, session_steps: int,
                  session_s: float, fps_after_startup: float, lag: LagStats, times: TimeBreakdown,
                  last_eval: dict | None, population: dict[int, dict], run_dir: Path) -> dict:
    """Write and return the summary. ``session_steps`` and ``session_s``: this session's (a resumed run's fps is
    its own); ``population``: per policy, what PBT gave it."""
    lag_t = lag.as_tuple()
    summary = {
        "status": status,
        "env_steps": state.env_steps,
        "frames": state.env_steps * cfg.env.frameskip,
        "wall_s": round(state.wall_s, 3),
        # fps counts this session's wall time from start-up on; fps_after_startup from the first chunk.
        "fps": round(session_steps * cfg.env.frameskip / max(session_s, 1e-9), 1),
        "fps_after_startup": round(fps_after_startup, 1),
        "episodes": state.episodes,
        "train_steps": state.train_steps,
        "dropped_samples": state.dropped_samples,
        "policies": {str(pid): _policy_summary(progress, pid, population.get(pid, {})) for pid in progress.stats},
        "target_reached_at_env_steps": state.target_reached_at,
        "policy_lag": None if lag_t is None else {"min": lag_t[0], "mean": lag_t[1], "max": lag_t[2]},
        "time_breakdown": times.fractions(),
        "eval": None if not cfg.eval.period else {"last": last_eval, "best": state.best_eval},
        "run_dir": str(run_dir),
    }
    write_json(path, summary)
    return summary


def _policy_summary(progress: Progress, pid: int, population: dict) -> dict:
    s = progress.stats[pid]
    out = {"return_mean_last100": None if not s.returns else float(np.mean(list(s.returns)[-100:])),
           "episodes": s.episodes, "env_steps": progress.policy_steps[pid]}
    out |= {f"{k}_mean": float(np.mean(v)) for k, v in s.extras.items() if v}
    return out | population
