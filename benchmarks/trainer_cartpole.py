"""End-to-end trainer FPS on CartPole-v1: serial vs Ray runtime, local vs remote inference.

    python benchmarks/trainer_cartpole.py [--env-steps 200000] [--record]

Runs one configuration after the other in this process (never two at once) and prints env steps per
second for each, measured by the trainer itself (summary.json). Ratios within one invocation compare;
absolute figures drift with the machine's load.
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

CONFIGS = [
    ("serial", "local", 1),
    ("ray", "local", 1),
    ("ray", "local", 2),
    ("ray", "remote", 2),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env-steps", type=int, default=200_000)
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--record", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    rows = []
    for runtime, inference, samplers in CONFIGS:
        with tempfile.TemporaryDirectory() as run_dir:
            cfg = load_config([
                "env=cartpole", f"runtime={runtime}", f"runtime.inference={inference}",
                f"runtime.num_samplers={samplers}", f"runtime.num_envs={args.num_envs}", f"run_dir={run_dir}",
                f"train.env_steps={args.env_steps}", "logging.wandb=disabled", "logging.tensorboard=false"])
            summary = train(cfg)
        row = (runtime, inference, samplers, args.num_envs, summary["fps"], summary["fps_after_startup"], summary["policies"]["0"]["return_mean_last100"],
               summary["policy_lag"]["mean"] if summary["policy_lag"] else float("nan"))
        rows.append(row)
        print(f"{runtime:6s} inference={inference:6s} samplers={samplers} envs/sampler={args.num_envs}: "
              f"{row[4]:8.0f} steps/s ({row[5]:.0f} after start-up), return {row[6]}, mean lag {row[7]:.2f}",
              flush=True)

    table = ["| runtime | inference | samplers | envs/sampler | env steps/s (whole run) | env steps/s (after start-up) "
             "| mean return (last 100) | mean policy lag |", "|---|---|---|---|---|---|---|---|"]
    table += [f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]:.0f} | {r[5]:.0f} | {r[6]:.1f} | {r[7]:.2f} |" for r in rows]
    print("\n".join(table))
    if args.record:
        append(f"Trainer FPS, CartPole-v1, {args.env_steps} env steps per configuration", "\n".join(table))


if __name__ == "__main__":
    main()
