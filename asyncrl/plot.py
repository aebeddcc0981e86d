"""``python -m asyncrl.plot RUN [RUN ...] [--out PNG] [--metric stats/return_mean] [--policies]``

Writes a PNG with two panels, the metric against frames and against wall time. Runs of one experiment
with different seeds (see ``asyncrl/evaluation/curves.py`` for how they are told apart) are drawn as
their mean and a min-max band over the range every one of them covers; a lone run as its own line. A
RUN may also be a directory of runs (``runs/``). Wall time is seconds of training since the run's first logged
point: a resumed run's sessions are laid end to end, without the time it was stopped between them.
``--policies`` draws every policy of a population run as its own line (policy 0 and ``policyN/METRIC``).

Bad input ends with one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asyncrl.evaluation.cli_args import UsageError
from asyncrl.evaluation.curves import Curve, expand_runs, group_runs, policy_metrics, read_curve, spread


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own is usage plus a line; ours is one line
        raise UsageError(f"{message}; usage: python -m asyncrl.plot RUN [RUN ...] [--out PNG] [--metric TAG]")


def _time_unit(seconds: float) -> tuple[float, str]:
    if seconds >= 3 * 3600:
        return 3600.0, "hours"
    if seconds >= 10 * 60:
        return 60.0, "minutes"
    return 1.0, "seconds"


def _draw(ax, curves: list[Curve], axis: str, scale: float, label: str, color) -> None:
    xs = [getattr(c, axis) / scale for c in curves]
    ys = [c.values for c in curves]
    agg = spread(xs, ys) if len(curves) > 1 else None
    if agg is None:  # one run, or runs that do not overlap: each its own line
        for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
            ax.plot(x, y, color=color, label=label if i == 0 else None)
        return
    grid, mean, low, high = agg
    ax.plot(grid, mean, color=color, label=label)
    ax.fill_between(grid, low, high, color=color, alpha=0.25, linewidth=0)


def plot(runs: list[str], out: Path, metric: str = "stats/return_mean",
         policies: bool = False) -> dict[str, list[Path]]:
    """Draw ``runs`` into ``out``; returns the groups drawn (label -> runs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = group_runs(expand_runs(runs))
    if policies:  # one line per policy of each run; seeds are not pooled
        groups = {f"{r.resolve().name} policy {pid}": [(r, tag)] for members in groups.values() for r in members
                  for pid, tag in policy_metrics(r, metric).items()}
        curves = {label: [read_curve(r, tag) for r, tag in members] for label, members in groups.items()}
        groups = {label: [r for r, _ in members] for label, members in groups.items()}
    else:
        curves = {label: [read_curve(r, metric) for r in members] for label, members in groups.items()}
    if not curves:
        raise UsageError(f"no run has the scalar {metric!r}")
    scale, unit = _time_unit(max(float(c.wall_s.max()) for cs in curves.values() for c in cs))
    fig, (by_frames, by_time) = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, cs) in enumerate(curves.items()):
        name = f"{label} ({len(cs)} seeds)" if len(cs) > 1 else label
        color = colors[i % len(colors)]
        _draw(by_frames, cs, "frames", 1.0, name, color)
        _draw(by_time, cs, "wall_s", scale, name, color)
    by_frames.set_xlabel("frames")
    by_time.set_xlabel(f"wall time ({unit})")
    for ax in (by_frames, by_time):
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    by_frames.legend(loc="best", fontsize="small")
    several = any(len(cs) > 1 for cs in curves.values())
    fig.suptitle(f"{metric}: mean and min-max over seeds" if several else metric)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=110)
    except OSError as e:
        raise UsageError(f"--out {out} cannot be written ({e.strerror}); choose a writable path") from e
    finally:
        plt.close(fig)
    return groups


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m asyncrl.plot", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run directories (or directories of runs)")
    parser.add_argument("--out", default="plot.png", help="the PNG to write (default: plot.png)")
    parser.add_argument("--metric", default="stats/return_mean",
                        help="a TensorBoard scalar tag, e.g. stats/return_mean (default) or perf/fps")
    parser.add_argument("--policies", action="store_true",
                        help="one line per policy of a population run (policyN/METRIC)")
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
        groups = plot(args.runs, Path(args.out), args.metric, args.policies)
    except UsageError as e:
        print(f"asyncrl.plot: {e}", file=sys.stderr)
        return 2
    n = sum(len(g) for g in groups.values())
    print(f"wrote {args.out}: {n} run(s) in {len(groups)} group(s): {', '.join(groups)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
