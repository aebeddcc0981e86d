"""EnvPool's C++ batched stepping against ours (Python, one env after the other) on the same scenario.

    python benchmarks/envpool_layer.py [--envs 8] [--seconds 20] [--record]

Random actions, no model, one process pinned to one core (what one sampler has on a 2-core machine), frames/s =
agent steps x frameskip 4, one measurement after the other:
  - VizDoom basic: ours `env=doom_basic` (RGB 128x72 from a 160x120 render, frameskip 4) against EnvPool's
    `Basic-v1` at 128x72, no frame stack, frameskip 4 (its own basic.cfg and screen format), one EnvPool thread;
  - Atari Pong: ours `env=ALE/Pong-v5` (sticky actions, 84x84 gray, 4 stacked, max-pooled frameskip 4) against
    EnvPool's `Pong-v5` with the same preprocessing and sticky actions, one EnvPool thread.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import queue
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _record import append  # noqa: E402

FRAMESKIP = 4
ENVPOOL_TASKS = {
    # use_combined_action: one Discrete over button combinations, as ours (its default is a Box of buttons).
    "doom_basic": ("Basic-v1", {"img_height": 72, "img_width": 128, "stack_num": 1, "frame_skip": FRAMESKIP,
                                "use_combined_action": True}),
    "ALE/Pong-v5": ("Pong-v5", {"img_height": 84, "img_width": 84, "stack_num": 4, "frame_skip": FRAMESKIP,
                                "repeat_action_probability": 0.25, "noop_max": 30}),
}


def _pin() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


def _ours(env_name: str, num_envs: int, seconds: float, out) -> None:
    _pin()
    from asyncrl.config.loader import load_config
    from asyncrl.env_api.factory import load_env_factory
    from asyncrl.models.distributions import ActionSpec
    from asyncrl.sampling.env_group import EnvGroup

    cfg = load_config([f"env={env_name}"])
    group = EnvGroup(load_env_factory(cfg.env), range(num_envs), list(range(num_envs)))
    spec = ActionSpec.from_space(group.action_space)
    rng = np.random.default_rng(0)
    group.reset()

    def actions():
        return spec.to_env_batch(rng.integers(0, spec.high.astype(np.int64) + 1, size=(num_envs, spec.action_dim)))

    for _ in range(50):  # warm-up
        group.step(actions())
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        group.step(actions())
        steps += num_envs
    out.put(steps * FRAMESKIP / (time.perf_counter() - start))
    group.close()


def _envpool(task: str, kwargs: dict, num_envs: int, seconds: float, out) -> None:
    _pin()
    import envpool

    env = envpool.make(task, env_type="gymnasium", num_envs=num_envs, batch_size=num_envs, num_threads=1, seed=0,
                       **kwargs)
    n = env.action_space.n
    rng = np.random.default_rng(0)
    env.reset()
    for _ in range(50):
        env.step(rng.integers(0, n, size=num_envs))
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        env.step(rng.integers(0, n, size=num_envs))
        steps += num_envs
    out.put(steps * FRAMESKIP / (time.perf_counter() - start))
    env.close()


def _measure(target, *args) -> float:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, out))
    proc.start()
    while proc.is_alive() or not out.empty():  # a child that dies before it reports ends the wait
        try:
            result = out.get(timeout=1.0)
        except queue.Empty:
            continue
        proc.join()
        return result
    raise SystemExit(f"{target.__name__}{args[:2]} died (exit code {proc.exitcode}) before reporting; see above")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--record", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = parser.parse_args()
    rows = []
    for env_name, (task, kwargs) in ENVPOOL_TASKS.items():
        ours = _measure(_ours, env_name, args.envs, args.seconds)
        pool = _measure(_envpool, task, kwargs, args.envs, args.seconds)
        rows.append((env_name, task, ours, pool))
        print(env_name, f"ours {ours:,.0f}", f"envpool {pool:,.0f}", flush=True)
    table = [f"{args.envs} envs, random actions, no model, one process pinned to one core, {args.seconds:g} s each; "
             "frames/s (agent steps x 4).", "",
             "| scenario | ours (Python, one env after the other) | EnvPool (C++, 1 thread) | EnvPool / ours |",
             "|---|---|---|---|"]
    table += [f"| `env={name}` vs EnvPool `{task}` | {ours:,.0f} | {pool:,.0f} | {pool / ours:.2f}x |"
              for name, task, ours, pool in rows]
    print("\n".join(table))
    if args.record:
        append("EnvPool's stepping against ours, the same scenarios", "\n".join(table))


if __name__ == "__main__":
    main()
