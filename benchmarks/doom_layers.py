"""Where the time goes on doom_basic: each layer of the trainer measured alone, then all together.

    python benchmarks/doom_layers.py [--seconds 20] [--record] [-- key=value ...]

The layout is the recipe's (`experiment=doom_basic` plus any overrides after `--`): its samplers and envs,
its core pinning (sampler i on its core, the learner on its own) and its precision. Layers, one after the
other (never two at once), in frames/s (agent steps x frameskip 4):
  1. raw simulator: make_action on the engine, random buttons, one process per sampler (pinned like them),
     and one per core: the simulator's limit on this machine;
  2. sampler, random actions: our EnvGroup/Sampler with preprocessing, no model;
  3. sampler + local inference: the conv + GRU(512) policy run inside each sampler;
  4. learner alone: train steps on synthetic batches of the configured size (samples/s x 4), unpinned,
     with 1 and 2 threads;
  5. full trainer: the recipe on the Ray runtime, measured after start-up.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _record import append  # noqa: E402

FRAMESKIP = 4


class RandomClient:
    """Inference stand-in: uniform random actions, zero values, no model."""

    def __init__(self, spec, state_size: int):
        self.spec, self.state_size, self.rng = spec, state_size, np.random.default_rng(0)

    def submit(self, policy_id, obs, rnn_state):
        from asyncrl.data import PolicyOutput

        n = len(next(iter(obs.values())))
        highs = self.spec.high.astype(np.int64) + 1 if self.spec.is_discrete else None
        actions = self.rng.integers(0, highs, size=(n, self.spec.action_dim)) if highs is not None else None
        zeros = np.zeros(n, np.float32)
        return PolicyOutput(actions, zeros, zeros, rnn_state, 0)

    def result(self, handle):
        return handle


def _sampler_worker(index: int, overrides: list[str], seconds: float, with_model: bool, out) -> None:
    import torch

    from asyncrl.config.loader import load_config
    from asyncrl.env_api.factory import probe_spaces
    from asyncrl.inference.client import LocalInference
    from asyncrl.inference.policy_runner import PolicyRunner
    from asyncrl.learning.learner import Learner
    from asyncrl.models.distributions import ActionSpec
    from asyncrl.runtime.affinity import pin_process, sampler_core
    from asyncrl.runtime.builders import build_sampler
    from asyncrl.runtime.machine import with_hardware_defaults

    cfg, _ = with_hardware_defaults(load_config(overrides), "cpu")  # precision auto decided as a run decides it
    if cfg.runtime.pin_cores:
        pin_process({sampler_core(index, cfg.runtime.learner_threads)})
    torch.set_num_threads(cfg.runtime.sampler_threads)
    spaces = probe_spaces(cfg.env)
    if with_model:
        runner = PolicyRunner(spaces.obs, spaces.action, cfg.model, precision=cfg.runtime.precision)
        runner.set_weights(Learner(0, spaces.obs, spaces.action, cfg.model, cfg.algo).weights())
        client, size = LocalInference(runner), runner.models[0].state_size
    else:
        client, size = RandomClient(ActionSpec.from_space(spaces.action), 0), 0
    sampler = build_sampler(cfg, index, client, size)
    sampler.collect()  # warm-up: engines started, first episode under way
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        _, meta = sampler.collect()
        steps += sum(meta.steps_per_policy.values())
    out.put((steps, time.perf_counter() - start))
    sampler.close()


def measure_samplers(overrides: list[str], samplers: int, seconds: float, with_model: bool) -> float:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_sampler_worker, args=(i, overrides, seconds, with_model, out)) for i in range(samplers)]
    for p in procs:
        p.start()
    results = [out.get(timeout=seconds + 300) for _ in procs]
    for p in procs:
        p.join()
    return sum(steps / dt for steps, dt in results) * FRAMESKIP


def measure_raw(procs: int, seconds: float, pin: bool) -> float:
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "raw_vizdoom.py"), "--procs", str(procs),
                           "--seconds", str(seconds), *(["--pin"] if pin else [])], capture_output=True, text=True,
                          check=True)
    line = proc.stdout.strip().splitlines()[-1]
    # The raw benchmark's result line ends in "... <frames/s> frames/s ..."; take the number before it.
    words = line.replace(",", "").split()
    return float(words[words.index("frames/s") - 1])


def _learner_worker(overrides: list[str], seconds: float, threads: int, out) -> None:
    import torch

    from asyncrl.config.loader import load_config
    from asyncrl.data import Trajectory
    from asyncrl.env_api.factory import probe_spaces
    from asyncrl.runtime.builders import build_learner
    from asyncrl.runtime.machine import with_hardware_defaults

    cfg, _ = with_hardware_defaults(load_config(overrides), "cpu")
    torch.set_num_threads(threads)  # alone on the machine: no pinning, every core is its
    spaces = probe_spaces(cfg.env)
    learner = build_learner(cfg, spaces)
    t, b = cfg.algo.rollout, cfg.algo.batch_size // cfg.algo.rollout
    rng = np.random.default_rng(0)
    obs = {k: rng.integers(0, 255, size=(t + 1, b, *s.shape), dtype=np.uint8) for k, s in spaces.obs.spaces.items()}
    zeros = np.zeros((t, b), np.float32)
    batch = Trajectory(0, obs, rng.integers(0, 2, size=(t, b, 1)), zeros, zeros.astype(bool), zeros.astype(bool),
                       zeros, np.full((t, b), -1.0, np.float32), zeros, np.zeros((t, b), np.int64),
                       np.zeros((b, learner.model.state_size), np.float32))
    learner.train([batch])  # warm-up
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        learner.train([batch])
        steps += batch.num_steps
    out.put(steps / (time.perf_counter() - start) * FRAMESKIP)


def measure_learner(overrides: list[str], seconds: float, threads: int) -> float:
    """In a process of its own, so that pinning it leaves this one alone."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_learner_worker, args=(overrides, seconds, threads, out))
    proc.start()
    fps = out.get(timeout=seconds + 300)
    proc.join()
    return fps


def measure_trainer(overrides: list[str], seconds: float) -> tuple[float, float, str]:
    from asyncrl.config.loader import load_config
    from asyncrl.timing import TimeBreakdown
    from asyncrl.training.trainer import train

    with tempfile.TemporaryDirectory() as run_dir:
        cfg = load_config([*overrides, f"run_dir={run_dir}", f"train.max_wall_s={seconds + 15}",
                           "train.env_steps=100000000", "logging.wandb=disabled", "logging.tensorboard=false"])
        summary = train(cfg)
    times = TimeBreakdown()
    times.seconds = summary["time_breakdown"]  # fractions: line() prints them the same way
    return summary["fps_after_startup"], summary["fps"], times.line()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--record", action="store_true", help="append the table to benchmarks/RESULTS.md")
    parser.add_argument("overrides", nargs="*", help="overrides of experiment=doom_basic, after --")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from asyncrl.config.loader import load_config
    from asyncrl.runtime.machine import with_hardware_defaults

    overrides = ["experiment=doom_basic", *args.overrides]
    rt = with_hardware_defaults(load_config(overrides), "cpu")[0].runtime
    n, e, s, pin = rt.num_samplers, rt.num_envs, args.seconds, rt.pin_cores
    layout = f"{n} x {e} envs{', pinned' if pin else ''}, {rt.precision}"
    cores = os.cpu_count() or 1

    rows = [("raw simulator (make_action, random buttons)", f"{n} process(es){', pinned' if pin else ''}",
             measure_raw(n, s, pin))]
    print(rows[-1], flush=True)
    if cores != n:
        rows.append(("raw simulator, one process per core: this machine's limit", f"{cores} processes, pinned",
                     measure_raw(cores, s, True)))
        print(rows[-1], flush=True)
    rows.append(("sampler, random actions", layout, measure_samplers(overrides, n, s, with_model=False)))
    print(rows[-1], flush=True)
    rows.append(("sampler + local inference (conv+GRU512)", layout, measure_samplers(overrides, n, s, True)))
    print(rows[-1], flush=True)
    for threads in sorted({rt.learner_threads, 2}):
        rows.append((f"learner alone, batch 1024, {threads} thread(s)", f"1 process, {rt.precision}",
                     measure_learner(overrides, s, threads)))
        print(rows[-1], flush=True)
    after, whole, breakdown = measure_trainer(overrides, s * 3)
    rows.append(("full trainer (Ray, local inference), after start-up", layout, after))
    rows.append(("full trainer, whole run incl. start-up", layout, whole))
    print(rows[-2:], flush=True)

    table = ["| layer | layout | frames/s |", "|---|---|---|"]
    table += [f"| {name} | {lay} | {fps:,.0f} |" for name, lay, fps in rows]
    table += ["", f"Full trainer, where the time went: {breakdown}."]
    print("\n".join(table))
    if args.record:
        append(f"doom_basic layers, {s:.0f} s per layer", "\n".join(table))


if __name__ == "__main__":
    main()
