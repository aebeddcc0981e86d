"""The same training command on an older revision and on this checkout, alternately: did a change cost speed?

    python benchmarks/ab_revisions.py --base REV [--rounds 2] [--frames 400000] [--record] -- OVERRIDES...

Each round runs the base revision (a temporary git worktree) and then this checkout, one after the other (never
two at once), so drift of a shared machine hits both alike; the table gives each run's frames/s after start-up
and the ratio of the means.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _record import append  # noqa: E402
from doom_levers import worktree  # noqa: E402
from vs_sample_factory import REPO, run_trainer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the git revision to compare with")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--frames", type=int, default=400_000)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--record", action="store_true", help="append the table to benchmarks/RESULTS.md")
    parser.add_argument("overrides", nargs="*", default=["experiment=doom_basic"])
    args = parser.parse_args()
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, check=True).stdout.strip()
    this = f"{head}{' + uncommitted changes' if dirty else ''}"
    fps: dict[str, list[float]] = {args.base: [], this: []}
    with worktree(args.base) as tree:
        for r in range(args.rounds):
            for label, repo in ((args.base, tree), (this, REPO)):
                result = run_trainer(args.overrides, args.frames, args.timeout, repo=repo)
                fps[label].append(result.get("fps_after_startup") or 0.0)
                print(f"round {r + 1}, {label}: {result.get('fps_after_startup')} frames/s, {result.get('status')}",
                      flush=True)
    means = {k: sum(v) / len(v) for k, v in fps.items()}
    table = [f"`{' '.join(args.overrides)}`, {args.frames:,} frames per run, {args.rounds} rounds, base first in "
             "each round; frames/s after start-up.", "",
             "| revision | frames/s per run | mean |", "|---|---|---|"]
    table += [f"| {k} | {', '.join(f'{x:,.0f}' for x in v)} | {means[k]:,.0f} |" for k, v in fps.items()]
    table += ["", f"Ratio {this} / {args.base}: {means[this] / means[args.base]:.3f}"
              if means[args.base] else "The base revision produced no figure."]
    print("\n".join(table))
    if args.record:
        append(f"A/B of revisions {args.base} vs {this}", "\n".join(table))


if __name__ == "__main__":
    main()
