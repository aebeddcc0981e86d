"""Learning curves from the runs' TensorBoard events, grouped into experiments across seeds.

Grouping: runs whose ``config.yaml`` are equal once ``seed``, ``name``, ``run_dir``,
``restart_behavior`` and ``logging.*`` are left out are one experiment played with different seeds.
A run without a ``config.yaml`` is grouped by its directory name with a trailing seed suffix
(``_seed3``, ``-seed3``, ``_s3``, ``-s3``) removed. A group is labelled by that stripped name.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from asyncrl.evaluation.cli_args import UsageError

IGNORED_KEYS = ("seed", "name", "run_dir", "restart_behavior", "logging")
_SEED_SUFFIX = re.compile(r"[_-](?:seed[_-]?|s)\d+$")
_SEED_ONLY = re.compile(r"(?:seed[_-]?|s)\d+")  # a run directory named by its seed alone: ENV/seed0


@dataclass
class Curve:
    run: Path
    frames: np.ndarray  # the event step: the trainer logs against frames
    # Seconds of training since the run's first event: a resumed run's sessions (one event file each) are laid
    # end to end, so the hours a run spent stopped between sessions are not drawn as training time.
    wall_s: np.ndarray
    values: np.ndarray


def event_dir(run: Path) -> Path | None:
    """Where a run's event files are: ``RUN/tensorboard`` or ``RUN`` itself."""
    for d in (run / "tensorboard", run):
        if d.is_dir() and any(d.glob("events.out.tfevents.*")):
            return d
    return None


def expand_runs(paths: list[str]) -> list[Path]:
    """Each path is a run directory, or a directory of run directories (``runs/``)."""
    runs: list[Path] = []
    for text in paths:
        path = Path(text)
        if not path.is_dir():
            raise UsageError(f"{text} is not a directory: expected a run directory (with tensorboard/) "
                             f"or a directory of runs")
        if event_dir(path) is not None:
            runs.append(path)
            continue
        children = sorted(c for c in path.iterdir() if c.is_dir() and event_dir(c) is not None)
        if not children:
            raise UsageError(f"{text} has no TensorBoard events (no {path / 'tensorboard'}/events.out.tfevents.*); "
                             f"was it trained with logging.tensorboard=false?")
        runs.extend(children)
    return runs


def _accumulator(path: Path):
    """The events under ``path``: a directory of event files, or one event file (one session)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(path), size_guidance={"scalars": 0})  # 0: keep every point
    acc.Reload()
    return acc


def _running_time(sessions: list[np.ndarray]) -> np.ndarray:
    """Wall times of each session's points, sessions in time order -> seconds of training: each session starts
    one of its own median logging intervals after the previous one's last point (a restart's own seconds are
    not logged)."""
    out, end = [], None
    for wall in sessions:
        step = float(np.median(np.diff(wall))) if len(wall) > 1 else 0.0
        start = 0.0 if end is None else end + step
        out.append(wall - wall[0] + start)
        end = out[-1][-1]
    return np.concatenate(out) if out else np.zeros(0)


def policy_metrics(run: Path, metric: str) -> dict[int, str]:
    """Policy id -> its tag of ``metric`` in a population run (policy 0's is the plain tag)."""
    tags = _accumulator(event_dir(run)).Tags().get("scalars", [])
    found = {0: metric} if metric in tags else {}
    for tag in tags:
        head, _, rest = tag.partition("/")
        if rest == metric and head.startswith("policy") and head[6:].isdigit():
            found[int(head[6:])] = tag
    return dict(sorted(found.items()))


def read_curve(run: Path, metric: str) -> Curve:
    # One accumulator per event file: the trainer opens one per session, and the sessions' points are laid end
    # to end in time (see Curve.wall_s).
    files = [_accumulator(f) for f in sorted(event_dir(run).glob("events.out.tfevents.*"))]
    tags = sorted({t for acc in files for t in acc.Tags().get("scalars", [])})
    if metric not in tags:
        raise UsageError(f"{run} has no scalar {metric!r} in its TensorBoard events; it has: "
                         f"{', '.join(tags) or 'none'}")
    sessions = [sorted(acc.Scalars(metric), key=lambda e: e.wall_time)
                for acc in files if metric in acc.Tags().get("scalars", [])]
    sessions = sorted((s for s in sessions if s), key=lambda s: s[0].wall_time)
    events = [e for s in sessions for e in s]
    wall = _running_time([np.array([e.wall_time for e in s]) for s in sessions])
    frames = np.array([e.step for e in events], dtype=np.float64)
    values = np.array([e.value for e in events], dtype=np.float64)
    return Curve(run, frames, wall, values)


def strip_seed(name: str) -> str:
    return _SEED_SUFFIX.sub("", name)


def experiment_key(run: Path) -> str:
    config = run / "config.yaml"
    if not config.is_file():
        return "name:" + strip_seed(run.name)
    data = yaml.safe_load(config.read_text()) or {}
    return json.dumps({k: v for k, v in data.items() if k not in IGNORED_KEYS}, sort_keys=True)


def run_label(run: Path) -> str:
    """The run's name without its seed suffix; for a directory named by its seed alone, its parent's name."""
    run = run.resolve()
    return run.parent.name if _SEED_ONLY.fullmatch(run.name) else strip_seed(run.name)


def group_runs(runs: list[Path]) -> dict[str, list[Path]]:
    """Label -> runs of one experiment, in the order first seen. Two experiments with one label (the same
    env in two sweeps' folders) are told apart by the folder above, then by a number."""
    groups: dict[str, list[Path]] = {}
    labels: dict[str, str] = {}
    for run in runs:
        key = experiment_key(run)
        if key not in labels:
            label = run_label(run)
            if label in groups:
                above = run.resolve().parent
                label = f"{(above.parent if _SEED_ONLY.fullmatch(run.resolve().name) else above).name}/{label}"
            base, n = label, 2
            while label in groups:
                label, n = f"{base} ({n})", n + 1
            labels[key] = label
        groups.setdefault(labels[key], []).append(run)
    return groups


def spread(xs: list[np.ndarray], ys: list[np.ndarray], points: int = 200):
    """Mean, min and max of several curves on a common grid, where every curve has data (their overlap).

    Returns ``(grid, mean, low, high)``, or None when the curves do not overlap.
    """
    start, stop = max(x.min() for x in xs), min(x.max() for x in xs)
    if stop <= start:
        return None
    grid = np.linspace(start, stop, points)
    order = [np.argsort(x, kind="stable") for x in xs]  # a resumed run may log a few steps twice
    on_grid = np.stack([np.interp(grid, x[o], y[o]) for x, y, o in zip(xs, ys, order, strict=True)])
    return grid, on_grid.mean(0), on_grid.min(0), on_grid.max(0)
