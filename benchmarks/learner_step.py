"""The learner alone on doom_basic batches: samples/s of `Learner.train` for a few variants, one after the other.

    python benchmarks/learner_step.py [--seconds 15] [--threads 1] [--record]

Variants: float32 and bfloat16 (`runtime.precision`), each also with `torch.compile` on the encoder (compile
time reported apart). Batches are synthetic (random frames, 1024 samples, rollout 32) and the model is
`experiment=doom_basic`'s; the figure is Sample Factory's cost of a training sample, the largest of the three
(env, inference, training) on a CPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _record import append  # noqa: E402

from asyncrl.config.loader import load_config  # noqa: E402
from asyncrl.data import Trajectory  # noqa: E402
from asyncrl.env_api.factory import probe_spaces
from asyncrl.runtime.builders import build_learner  # noqa: E402


def synthetic_batch(cfg, spaces, state_size: int) -> Trajectory:
    t, b = cfg.algo.rollout, cfg.algo.batch_size // cfg.algo.rollout
    rng = np.random.default_rng(0)
    obs = {k: rng.integers(0, 255, size=(t + 1, b, *s.shape), dtype=np.uint8) for k, s in spaces.obs.spaces.items()}
    zeros = np.zeros((t, b), np.float32)
    return Trajectory(0, obs, rng.integers(0, 2, size=(t, b, 1)), zeros, zeros.astype(bool), zeros.astype(bool),
                      zeros, np.full((t, b), -1.0, np.float32), zeros, np.zeros((t, b), np.int64),
                      np.zeros((b, state_size), np.float32))


def measure(precision: str, compiled: bool, seconds: float) -> tuple[float, float]:
    """(samples/s, seconds of the first two steps: start-up and, compiled, the compilation)."""
    cfg = load_config(["experiment=doom_basic", f"runtime.precision={precision}"])
    spaces = probe_spaces(cfg.env)
    learner = build_learner(cfg, spaces)
    if compiled:
        learner.model.encoder = torch.compile(learner.model.encoder)
    batch = synthetic_batch(cfg, spaces, learner.model.state_size)
    start = time.perf_counter()
    learner.train([batch])
    learner.train([batch])
    warmup = time.perf_counter() - start
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        learner.train([batch])
        steps += batch.num_steps
    return steps / (time.perf_counter() - start), warmup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--record", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for precision in ("fp32", "bf16"):
        for compiled in (False, True):
            rate, warmup = measure(precision, compiled, args.seconds)
            rows.append((precision, compiled, rate, warmup))
            print(rows[-1], flush=True)
    table = [f"Batch 1024 (rollout 32), {args.threads} torch thread(s).", "",
             "| precision | torch.compile (encoder) | samples/s | frames/s equivalent | first two steps, s |",
             "|---|---|---|---|---|"]
    table += [f"| {p} | {'yes' if c else 'no'} | {r:,.0f} | {4 * r:,.0f} | {w:.1f} |" for p, c, r, w in rows]
    print("\n".join(table))
    if args.record:
        append("Learner alone, doom_basic batches", "\n".join(table))


if __name__ == "__main__":
    main()
