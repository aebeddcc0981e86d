"""Does a bare VizDoom engine's memory grow with episodes, with steps, or neither? No trainer, no Ray.

    python benchmarks/engine_memory.py [--scenario basic] [--episodes 6000] [--steps 130000] [--record]

Two runs of one engine (160x120, no window, no sound), each sampling the engine process's private memory
(RssAnon in /proc/PID/status) as it goes:
- episodes: `new_episode()` then one step, `--episodes` times (what a sampler does with short episodes);
- steps: one episode with the engine's time-out off, `--steps` steps of frameskip 4 that do not shoot (the
  monster stays alive in `basic`, so the episode never ends).
A growth per episode that does not show per step is what asyncrl_envs.vizdoom's `engine_restart_episodes` answers.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _record import append  # noqa: E402
from proc_tree import private_bytes  # noqa: E402

SAMPLES = 5  # readings per run, first and last included


def start_engine(scenario: str, timeout: bool):
    import psutil
    import vizdoom as vzd

    game = vzd.DoomGame()
    game.load_config(os.path.join(vzd.scenarios_path, f"{scenario}.cfg"))
    game.set_window_visible(False)
    game.set_sound_enabled(False)
    game.set_screen_resolution(vzd.ScreenResolution.RES_160X120)
    if not timeout:
        game.set_episode_timeout(0)
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    game.init()
    engines = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    return game, engines[0].pid


def run(scenario: str, mode: str, count: int) -> list[tuple[int, int]]:
    """[(episodes or steps done, engine RssAnon KiB)] at SAMPLES evenly spaced points."""
    game, pid = start_engine(scenario, timeout=mode == "episodes")
    idle = [0.0] * game.get_available_buttons_size()
    move = [[1.0 if i == j else 0.0 for i in range(len(idle))] for j in range(min(2, len(idle)))]  # no ATTACK
    marks = {round(i * count / (SAMPLES - 1)) for i in range(SAMPLES)}
    readings = []
    try:
        for n in range(count + 1):
            if n in marks:
                readings.append((n, private_bytes(pid) // 1024))
            if n == count:
                break
            if mode == "episodes":
                game.new_episode()
                game.make_action(idle, 1)
            else:
                game.make_action(move[n % len(move)], 4)
                if game.is_episode_finished():
                    raise RuntimeError("the episode ended: pick a scenario the idle policy survives")
    finally:
        game.close()
    return readings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="basic", help="a .cfg of the vizdoom wheel, without .cfg")
    parser.add_argument("--episodes", type=int, default=6000)
    parser.add_argument("--steps", type=int, default=130_000)
    parser.add_argument("--record", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = parser.parse_args()

    import vizdoom

    rows = []
    for mode, count in (("episodes", args.episodes), ("steps", args.steps)):
        t0 = time.monotonic()
        readings = run(args.scenario, mode, count)
        (n0, first), (n1, last) = readings[1], readings[-1]  # from the second reading: after start-up
        per = (last - first) * 1024 / (n1 - n0)
        rows.append(f"| {count:,} {mode} | {' -> '.join(f'{kib / 1024:.2f}' for _, kib in readings)} | "
                    f"{per:+.3f} bytes per {mode[:-1]} | {time.monotonic() - t0:.0f} |")
    table = [f"vizdoom {vizdoom.__version__}, scenario `{args.scenario}`, one engine, engine private memory (RssAnon) "
             f"at {SAMPLES} evenly spaced points.", "",
             "| run | engine RssAnon MiB | slope after the first reading | seconds |", "|---|---|---|---|", *rows]
    print("\n".join(table))
    if args.record:
        append("VizDoom engine memory: per episode or per step?", "\n".join(table))


if __name__ == "__main__":
    main()
