"""What a population costs: trainer FPS on CartPole-v1 with 1, 2 and 4 policies on the same samplers.

    python benchmarks/population_cartpole.py [--env-steps 200000] [--sizes 1 2 4] [--record]

Ray runtime, 2 samplers x 8 envs, no PBT. Every policy has its own learner actor, so on a machine with few
cores the learners share them; the total env steps are the same for every size. Configurations run one
after the other in this process; compare the ratios of one invocation.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _record import append  # noqa: E402

from asyncrl.config.loader import load_config  # noqa: E402
from asyncrl.training.trainer import train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env-steps", type=int, default=200_000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--record", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    rows = []
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as run_dir:
            cfg = load_config(["env=cartpole", "runtime=ray", "runtime.num_samplers=2", "runtime.num_envs=8",
                               f"population.size={size}", f"run_dir={run_dir}", f"train.env_steps={args.env_steps}",
                               "logging.wandb=disabled", "logging.tensorboard=false"])
            summary = train(cfg)
        returns = [p["return_mean_last100"] for p in summary["policies"].values()]
        row = (size, summary["fps"], summary["fps_after_startup"], summary["train_steps"],
               min(r for r in returns if r is not None), max(r for r in returns if r is not None))
        rows.append(row)
        print(f"population {size}: {row[1]:.0f} steps/s ({row[2]:.0f} after start-up), {row[3]} learner steps, "
              f"return {row[4]:.1f}-{row[5]:.1f}", flush=True)

    table = ["| policies | env steps/s (whole run) | env steps/s (after start-up) | learner steps | "
             "return of the worst / best policy (last 100) |", "|---|---|---|---|---|"]
    table += [f"| {r[0]} | {r[1]:.0f} | {r[2]:.0f} | {r[3]} | {r[4]:.1f} / {r[5]:.1f} |" for r in rows]
    print("\n".join(table))
    if args.record:
        append(f"Population cost, CartPole-v1, {args.env_steps} env steps per configuration, Ray, 2 samplers x 8 envs",
               "\n".join(table))


if __name__ == "__main__":
    main()
