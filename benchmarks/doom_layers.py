"""Where the time goes on doom_basic: each layer of the trainer measured alone, then all together.

    python benchmarks/doom_layers.py [--seconds 20] [--samplers 2] [--num-envs 4] [--record]

Layers, one after the other (never two at once), in frames/s (agent steps x frameskip 4):
  1. raw simulator: make_action on the engine, random buttons, one process per sampler;
  2. sampler, random actions: our EnvGroup/Sampler with preprocessing, no model;
  3. sampler + local inference: the conv + GRU(512) policy run inside each sampler;
  4. learner alone: train steps on synthetic batches of the configured size (samples/s x 4);
  5. full trainer: `experiment=doom_basic` on the Ray runtime, measured after start-up.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
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


def _sampler_worker(index: int, num_envs: int, seconds: float, with_model: bool, out) -> None:
    import torch

    from asyncrl.config.loader import load_config
    from asyncrl.inference.client import LocalInference
    from asyncrl.inference.policy_runner import PolicyRunner
    from asyncrl.learning.learner import Learner
    from asyncrl.models.distributions import ActionSpec
    from asyncrl.runtime.components import build_sampler, probe_spaces

    torch.set_num_threads(1)
    cfg = load_config(["experiment=doom_basic", f"runtime.num_envs={num_envs}"])
    spaces = probe_spaces(cfg.env)
    if with_model:
        runner = PolicyRunner(spaces.obs, spaces.action, cfg.model)
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


def measure_samplers(samplers: int, num_envs: int, seconds: float, with_model: bool) -> float:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_sampler_worker, args=(i, num_envs, seconds, with_model, out)) for i in range(samplers)]
    for p in procs:
        p.start()
    results = [out.get(timeout=seconds + 300) for _ in procs]
    for p in procs:
        p.join()
    return sum(steps / dt for steps, dt in results) * FRAMESKIP


def measure_raw(samplers: int, seconds: float) -> float:
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "raw_vizdoom.py"), "--procs", str(samplers),
                           "--seconds", str(seconds)], capture_output=True, text=True, check=True)
    line = proc.stdout.strip().splitlines()[-1]
    # The raw benchmark's result line ends in "... <frames/s> frames/s ..."; take the number before it.
    words = line.replace(",", "").split()
    return float(words[words.index("frames/s") - 1])


def measure_learner(seconds: float, threads: int) -> float:
    import torch

    from asyncrl.config.loader import load_config
    from asyncrl.data import Trajectory
    from asyncrl.learning.learner import Learner
    from asyncrl.runtime.components import probe_spaces

    torch.set_num_threads(threads)
    cfg = load_config(["experiment=doom_basic"])
    spaces = probe_spaces(cfg.env)
    learner = Learner(0, spaces.obs, spaces.action, cfg.model, cfg.algo)
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
    return steps / (time.perf_counter() - start) * FRAMESKIP


def measure_trainer(samplers: int, num_envs: int, seconds: float) -> tuple[float, float]:
    from asyncrl.config.loader import load_config
    from asyncrl.run.trainer import train

    with tempfile.TemporaryDirectory() as run_dir:
        cfg = load_config(["experiment=doom_basic", f"runtime.num_samplers={samplers}", f"runtime.num_envs={num_envs}",
                           f"run_dir={run_dir}", f"train.max_wall_s={seconds + 15}", "train.env_steps=100000000",
                           "logging.wandb=disabled", "logging.tensorboard=false"])
        summary = train(cfg)
    return summary["fps_after_startup"], summary["fps"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--samplers", type=int, default=2)
    parser.add_argument("--num-envs", type=int, default=4)
    parser.add_argument("--record", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    n, e, s = args.samplers, args.num_envs, args.seconds

    rows = [("raw simulator (make_action, random buttons)", f"{n} processes", measure_raw(n, s))]
    print(rows[-1], flush=True)
    rows.append(("sampler, random actions", f"{n} x {e} envs", measure_samplers(n, e, s, with_model=False)))
    print(rows[-1], flush=True)
    rows.append(("sampler + local inference (conv+GRU512)", f"{n} x {e} envs", measure_samplers(n, e, s, True)))
    print(rows[-1], flush=True)
    for threads in (1, 2):
        rows.append((f"learner alone, batch 1024, {threads} thread(s)", "1 process", measure_learner(s, threads)))
        print(rows[-1], flush=True)
    after, whole = measure_trainer(n, e, s * 3)
    rows.append(("full trainer (Ray, local inference), after start-up", f"{n} x {e} envs", after))
    rows.append(("full trainer, whole run incl. start-up", f"{n} x {e} envs", whole))
    print(rows[-2:], flush=True)

    table = ["| layer | layout | frames/s |", "|---|---|---|"]
    table += [f"| {name} | {layout} | {fps:,.0f} |" for name, layout, fps in rows]
    print("\n".join(table))
    if args.record:
        append(f"doom_basic layers, {s:.0f} s per layer", "\n".join(table))


if __name__ == "__main__":
    main()
