"""How the duel's players step: the env layer alone, random actions, no policy.

    python benchmarks/duel_match_step.py [--procs 2] [--matches 2] [--seconds 30] [--rounds 2]
        [--frameskips 2,4] [--record]

Each process holds `--matches` doom_duel matches (2 engines each, the wheel's cig.wad map01, 128x72 frames) and
steps them as a sampler's `EnvGroup` does: `step_async` on every match, then `step_wait` on every match. Two
ways for the players of a match to take a step of `frameskip` tics, each at every frameskip:

- tic barrier (what `DoomMatch` does, as Sample Factory's multi-agent wrapper does): every player's thread sets
  its action, advances one tic, and waits at a barrier for its peers, `frameskip` times;
- engine sync: every player's thread calls `make_action(action, frameskip)` and leaves the per-tic
  synchronisation to the engines' lockstep netgame (VizDoom's PLAYER mode waits for every player's ticcmd).

VizDoom's ASYNC modes are not among the variants: they run the game in real time (35 tics/s per match), ~30x
slower than either variant here. Frames = agent steps of both seats x frameskip. The variants alternate within a
round, `--rounds` rounds; printed per variant: frames/s (mean and range over rounds). Ratios within one
invocation compare; absolute figures move with the machine's load.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from _record import append  # noqa: E402

WARMUP_S = 2.0
VARIANTS = ("tic barrier", "engine sync")


def _engine_sync_step(self, action, tics: int) -> float:
    """`_LockstepGame.make_action` without the Python barrier: the netgame keeps the players in step."""
    return self._game.make_action(action, tics)


def _worker(variant: str, frameskip: int, matches: int, seconds: float, seed: int, out) -> None:
    import numpy as np

    import asyncrl_envs.vizdoom.match as match_module
    from asyncrl_envs.vizdoom import DoomMatch
    from asyncrl_envs.vizdoom.scenarios import get_match_spec

    if variant == "engine sync":
        match_module._LockstepGame.make_action = _engine_sync_step
    games = [DoomMatch(get_match_spec("doom_duel"), frameskip=frameskip) for _ in range(matches)]
    rng = np.random.default_rng(seed)
    try:
        for i, game in enumerate(games):
            game.reset(seed=seed * 100 + i)
        space = games[0].action_space
        actions = [[rng.integers(0, space.nvec) for _ in range(2)] for _ in range(256)]
        steps, start, counting = 0, time.perf_counter(), False
        while True:
            for i, game in enumerate(games):
                game.step_async(actions[(steps + i) % 256])
            for game in games:
                _, _, terminated, truncated, _ = game.step_wait()
                if terminated[0] or truncated[0]:
                    game.reset()
            steps += 1
            elapsed = time.perf_counter() - start
            if not counting and elapsed >= WARMUP_S:
                counting, steps, start = True, 0, time.perf_counter()
            elif counting and elapsed >= seconds:
                break
        out.put((steps * matches * 2 * frameskip / (time.perf_counter() - start), sum(g.restarts for g in games)))
    finally:
        for game in games:
            game.close()


def measure(variant: str, frameskip: int, procs: int, matches: int, seconds: float) -> tuple[float, int]:
    """Frames/s of `procs` processes stepping `matches` matches each, summed over the processes, and how many
    matches were restarted (a step that did not finish within the match's step timeout: a deadlock)."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(variant, frameskip, matches, seconds, p, out)) for p in range(procs)]
    for w in workers:
        w.start()
    results = [out.get(timeout=seconds + 120) for _ in workers]
    for w in workers:
        w.join()
    return sum(r for r, _ in results), sum(n for _, n in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--procs", type=int, default=2, help="processes (samplers), each with its matches")
    parser.add_argument("--matches", type=int, default=2, help="matches per process")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds per variant and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--frameskips", default="2,4")
    parser.add_argument("--record", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = parser.parse_args()

    frameskips = [int(f) for f in args.frameskips.split(",")]
    results: dict[tuple[str, int], list[float]] = {}
    restarts: dict[tuple[str, int], int] = {}
    for _ in range(args.rounds):
        for frameskip in frameskips:
            for variant in VARIANTS:
                fps, restarted = measure(variant, frameskip, args.procs, args.matches, args.seconds)
                results.setdefault((variant, frameskip), []).append(fps)
                restarts[variant, frameskip] = restarts.get((variant, frameskip), 0) + restarted
                print(f"{variant}, frameskip {frameskip}: {fps:,.0f} frames/s, {restarted} match(es) restarted",
                      flush=True)

    base = {fs: sum(results[("tic barrier", fs)]) / args.rounds for fs in frameskips}
    lines = [f"doom_duel env layer, random actions: {args.procs} process(es) x {args.matches} matches "
             f"(2 engines each), {args.seconds:g} s x {args.rounds} rounds per variant", "",
             "| players step by | frameskip | frames/s mean (min..max) | vs tic barrier at that frameskip | "
             "matches restarted (hung steps) |",
             "|---|---|---|---|---|"]
    for (variant, frameskip), rates in results.items():
        mean = sum(rates) / len(rates)
        lines.append(f"| {variant} | {frameskip} | {mean:,.0f} ({min(rates):,.0f}..{max(rates):,.0f}) | "
                     f"{mean / base[frameskip]:.2f}x | {restarts[variant, frameskip]} |")
    table = "\n".join(lines)
    print(table)
    if args.record:
        append("doom_duel: how the players of a match step (env layer)", table)


if __name__ == "__main__":
    main()
