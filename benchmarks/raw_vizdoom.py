"""Raw VizDoom speed: random actions in N processes, the simulator's limit on this machine.

    python benchmarks/raw_vizdoom.py [--scenario doom_basic] [--procs 1] [--pin] [--seconds 10]
                                     [--frameskip 4] [--mode raw|env]

mode raw: ``make_action(buttons, frameskip)`` on the scenario's engine (160x120, its buttons), a new
episode whenever one ends. mode env: ``DoomEnv.step`` with all of the preprocessing (resize, CHW, shaping).
``--pin`` pins process i and its engine to core i mod cores. Frames = steps x frameskip (Sample Factory's
convention). Prints one result line. Ratios within one invocation compare; absolute figures drift with
the machine's load.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WARMUP_S = 1.0


def _worker(scenario: str, frameskip: int, mode: str, pin_core: int | None, seconds: float, seed: int, out):
    from asyncrl_envs.vizdoom import DoomEnv, get_spec

    env = DoomEnv(get_spec(scenario), frameskip=frameskip, pin_core=pin_core)
    try:
        env.reset(seed=seed)
        env.action_space.seed(seed)
        actions = [env.action_space.sample() for _ in range(1024)]
        buttons = [env.buttons_for(a) for a in actions]
        game = env.game
        steps, start, counting = 0, time.perf_counter(), False
        while True:
            if mode == "raw":
                game.make_action(buttons[steps % 1024], frameskip)
                if game.is_episode_finished():
                    env.reset()
                    game = env.game
            else:
                _, _, terminated, truncated, _ = env.step(actions[steps % 1024])
                if terminated or truncated:
                    env.reset()
            steps += 1
            now = time.perf_counter()
            if not counting and now - start >= WARMUP_S:
                steps, start, counting = 0, now, True
            elif counting and now - start >= seconds:
                out.put((steps, now - start))
                return
    finally:
        env.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="doom_basic")
    parser.add_argument("--procs", type=int, default=1)
    parser.add_argument("--pin", action="store_true", help="pin process i (and its engine) to core i mod cores")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time per process, after 1 s warm-up")
    parser.add_argument("--frameskip", type=int, default=4)
    parser.add_argument("--mode", choices=("raw", "env"), default="raw")
    args = parser.parse_args()

    cores = os.cpu_count() or 1
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(args.scenario, args.frameskip, args.mode,
                                               i % cores if args.pin else None, args.seconds, i, out))
             for i in range(args.procs)]
    for p in procs:
        p.start()
    try:
        results = [out.get(timeout=args.seconds + 120) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    per_proc = [steps * args.frameskip / elapsed for steps, elapsed in results]
    total = sum(per_proc)
    print(f"raw_vizdoom scenario={args.scenario} mode={args.mode} procs={args.procs} pin={'on' if args.pin else 'off'}"
          f" frameskip={args.frameskip} seconds={args.seconds:g}: {total:.0f} frames/s"
          f" ({total / args.frameskip:.0f} steps/s; per process {', '.join(f'{f:.0f}' for f in per_proc)})")


if __name__ == "__main__":
    main()
