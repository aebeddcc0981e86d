"""What in-training evaluation costs the run: frames/s without it, with it, and the evaluator's share of the CPU.

    python benchmarks/eval_overhead.py [--env doom_basic] [--frames 400000] [--period 12500] [--record]

Three runs of the env's recipe, one after the other: without evaluation, with `eval.period=PERIOD` (env steps)
and `eval.episodes=10`, and without again (the two runs without are this shared machine's noise). During the
run with evaluation a background thread reads the CPU time of the evaluator actor's process and its children
(its VizDoom engines) from /proc. The evaluator runs at nice 10, so it should take only CPU the run leaves idle;
the bar (issue 8): the run slows down by no more than the evaluator's share of the machine's CPU time, which is
`evaluator CPU seconds / (wall seconds x cores)` over the same span.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _record import append  # noqa: E402
from cluster_fps import FRAMESKIP  # noqa: E402
from vs_sample_factory import recipe  # noqa: E402


class EvaluatorCpu(threading.Thread):
    """Polls the evaluator's process tree; keeps each process's latest cumulative CPU seconds."""

    def __init__(self, every_s: float = 0.5):
        super().__init__(daemon=True)
        self.every_s = every_s
        self.stop = threading.Event()
        self.cpu_s: dict[int, float] = {}

    def run(self) -> None:
        while not self.stop.wait(self.every_s):
            for proc in psutil.process_iter(["cmdline"]):
                if "ray::EvaluatorActor" not in " ".join(proc.info["cmdline"] or ()):
                    continue
                try:
                    for p in [proc, *proc.children(recursive=True)]:
                        t = p.cpu_times()
                        self.cpu_s[p.pid] = t.user + t.system
                except psutil.Error:
                    continue  # exited between listing and reading

    @property
    def total_s(self) -> float:
        return sum(self.cpu_s.values())


def run(env: str, frames: int, eval_overrides: list[str]) -> tuple[dict, float, int]:
    """One training run: its summary, the evaluator's CPU seconds and the number of evaluations logged."""
    from asyncrl.config.loader import load_config
    from asyncrl.training.trainer import train

    watcher = EvaluatorCpu()
    watcher.start()
    try:
        with tempfile.TemporaryDirectory() as run_dir:
            steps = frames // FRAMESKIP.get(env, 4)
            cfg = load_config([*recipe(env), *eval_overrides, f"run_dir={run_dir}", f"train.env_steps={steps}",
                               "logging.wandb=disabled", "logging.tensorboard=false"])
            summary = train(cfg)
            log = (Path(run_dir) / "train.log").read_text()
    finally:
        watcher.stop.set()
        watcher.join()
    return summary, watcher.total_s, log.count("evaluation at ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="doom_basic")
    parser.add_argument("--frames", type=int, default=400_000)
    parser.add_argument("--period", type=int, default=12_500, help="eval.period, env steps")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--record", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cores = os.cpu_count() or 1
    with_eval = [f"eval.period={args.period}", f"eval.episodes={args.episodes}"]
    rows = []
    for label, overrides in (("no evaluation", ["eval.period=0"]), ("evaluation", with_eval),
                             ("no evaluation, again", ["eval.period=0"])):
        start = time.monotonic()
        summary, eval_cpu_s, evaluations = run(args.env, args.frames, overrides)
        wall = time.monotonic() - start
        rows.append((label, summary["fps_after_startup"], eval_cpu_s, eval_cpu_s / (wall * cores), evaluations))
        print(rows[-1], flush=True)
    base = (rows[0][1] + rows[2][1]) / 2
    label, fps, cpu_s, share, _ = rows[1]
    slowdown = 1 - fps / base
    table = [f"{args.env}, {args.frames:,} frames per run, the recipe's layout; evaluation every {args.period:,} env "
             f"steps, {args.episodes} greedy episodes each, on a nice-10 evaluator actor. {cores} cores.", "",
             "| run | frames/s after start-up | vs no evaluation (mean of both) | evaluations | evaluator CPU s | "
             "its share of the machine |", "|---|---|---|---|---|---|"]
    table += [f"| {r[0]} | {r[1]:,.0f} | {r[1] / base:.2f}x | {r[4]} | {r[2]:.1f} | {r[3]:.1%} |" for r in rows]
    table += ["", f"Slowdown with evaluation: {slowdown:+.1%} of frames/s, against the evaluator's {share:.1%} share of "
              f"the CPU ({'within' if slowdown <= share + abs(rows[0][1] - rows[2][1]) / base else 'beyond'} its "
              "share, counting the two runs without evaluation as the noise)."]
    print("\n".join(table))
    if args.record:
        append(f"In-training evaluation overhead, {args.env}", "\n".join(table))


if __name__ == "__main__":
    main()
