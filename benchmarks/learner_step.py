"""The learner alone on an experiment's batches: samples/s of `Learner.train` for a few variants, one after the other.

    python benchmarks/learner_step.py [--experiment doom_basic] [--batch N] [--seconds 15] [--threads 1]
                                      [--compile] [--record]

Variants: float32, and bfloat16 (`runtime.precision`) where this CPU computes it natively; torch's CPU
allocations backed by transparent huge pages (`THP_MEM_ALLOC_ENABLE`, on by default since asyncrl sets it) or
not; with `--compile`, also `torch.compile` on the encoder (compile time reported apart). Each variant runs in a
fresh process: torch reads the huge-page setting once per process, and no variant inherits another's heap.
Batches are synthetic (random frames, rollout 32) and the model is the experiment's; the figure is Sample
Factory's cost of a training sample, the largest of the three (env, inference, training) on a CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _record import append  # noqa: E402

from asyncrl.config.loader import load_config  # noqa: E402
from asyncrl.data import Trajectory  # noqa: E402
from asyncrl.env_api.factory import probe_spaces  # noqa: E402
from asyncrl.hardware import native_bf16  # noqa: E402
from asyncrl.runtime.builders import build_learner  # noqa: E402


def synthetic_batch(cfg, spaces, state_size: int) -> Trajectory:
    t, b = cfg.algo.rollout, cfg.algo.batch_size // cfg.algo.rollout
    rng = np.random.default_rng(0)
    obs = {k: rng.integers(0, 255, size=(t + 1, b, *s.shape), dtype=np.uint8) for k, s in spaces.obs.spaces.items()}
    zeros = np.zeros((t, b), np.float32)
    return Trajectory(0, obs, rng.integers(0, 2, size=(t, b, 1)), zeros, zeros.astype(bool), zeros.astype(bool),
                      zeros, np.full((t, b), -1.0, np.float32), zeros, np.zeros((t, b), np.int64),
                      np.zeros((b, state_size), np.float32))


def overrides(args: argparse.Namespace, precision: str) -> list[str]:
    batch = [f"algo.batch_size={args.batch}"] if args.batch else []
    return [f"experiment={args.experiment}", f"runtime.precision={precision}", *batch]


def measure(args: argparse.Namespace, precision: str, compiled: bool) -> tuple[float, float]:
    """(samples/s, seconds of the first two steps: start-up and, compiled, the compilation)."""
    import torch

    torch.set_num_threads(args.threads)
    cfg = load_config(overrides(args, precision))
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
    while time.perf_counter() - start < args.seconds:
        learner.train([batch])
        steps += batch.num_steps
    return steps / (time.perf_counter() - start), warmup


def measure_in_fresh_process(precision: str, compiled: bool, huge_pages: bool) -> tuple[float, float]:
    """``measure`` in a child process whose torch allocator has huge pages on or off."""
    env = os.environ | {"THP_MEM_ALLOC_ENABLE": "1" if huge_pages else "0"}
    cmd = [sys.executable, __file__, *sys.argv[1:], "--one", json.dumps([precision, compiled])]
    out = subprocess.run(cmd, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
    return tuple(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", default="doom_basic")
    parser.add_argument("--batch", type=int, default=None, help="algo.batch_size (default: the experiment's)")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile on the encoder")
    parser.add_argument("--record", action="store_true", help="append the table to benchmarks/RESULTS.md")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: [precision, compiled] in this process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args, *json.loads(args.one))))
        return
    precisions = ["fp32", "bf16"] if native_bf16("cpu") else ["fp32"]
    rows = []
    for precision in precisions:
        for compiled in (False, True) if args.compile else (False,):
            for huge_pages in (False, True):
                rate, warmup = measure_in_fresh_process(precision, compiled, huge_pages)
                rows.append((precision, compiled, huge_pages, rate, warmup))
                print(rows[-1], flush=True)
    cfg = load_config(overrides(args, "fp32"))
    table = [f"`experiment={args.experiment}`, batch {cfg.algo.batch_size} (rollout {cfg.algo.rollout}), "
             f"{args.threads} torch thread(s), {args.seconds:g} s per variant, each in a fresh process.", "",
             "| precision | torch.compile (encoder) | huge pages | samples/s | frames/s equivalent "
             "| first two steps, s |",
             "|---|---|---|---|---|---|"]
    skip = cfg.env.frameskip
    table += [f"| {p} | {'yes' if c else 'no'} | {'on' if h else 'off'} | {r:,.0f} | {skip * r:,.0f} | {w:.1f} |"
              for p, c, h, r, w in rows]
    print("\n".join(table))
    if args.record:
        append(f"Learner alone, {args.experiment} batches", "\n".join(table))


if __name__ == "__main__":
    main()
