"""A long side by side that survives the end of a session: asyncrl trains a recipe for `--hours` of wall time,
then Sample Factory 2.1.1 trains on the frame budget asyncrl reached, on the same machine.

    python benchmarks/long_run.py --env doom_health_gathering [--hours 2] [--seeds 0 1 2] [--for-minutes 60]
        [--dir DIR] [--curves PNG] [--record]

Each invocation works for at most `--for-minutes` (default: until done) and stops its run with Ctrl-C, which
makes both systems write a checkpoint; running the same command again resumes where it stopped (asyncrl
from its latest checkpoint with its env-step counter and accumulated wall time, SF with
`--restart_behavior=resume`, which restores its frame count). Two hours of asyncrl at ~4.5k frames/s is
~33M frames, which takes SF ~4.5 hours here, so the pair spans several sessions of this machine.

State lives in `--dir` (default `.long_runs/<env>/`, ignored by git): `state.json` (phase, budget, every
chunk's wall time and frames), `asyncrl/` (the run directory) and `sf/` (SF's train_dir and its log); with
`--seeds` other than `0` alone, one such set per seed in `seed<S>/` (SF `--seed=S`, ours `seed=S`), the pairs
one after the other, and the report (a row per seed and system, curves with the min-max band) once all are done.
The layout is vs_sample_factory.py's: SF 2 workers x envs/2, asyncrl the recipe's sampler layout, the same
model, rollout and batch. Figures when both are done: frames, wall time (startup of every chunk included),
frames/s, the final mean return (last 100 episodes), and both curves against frames (`--curves`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _record import append  # noqa: E402
from sample_factory import parse_sf_log, run_sample_factory  # noqa: E402
from vs_sample_factory import WORKERS, draw_curves, recipe, run_ours  # noqa: E402

from asyncrl.outputs.run_dir import write_json  # noqa: E402

REPO = HERE.parent
SF_LOG_GLOB = "*.stdout.txt"
NO_FRAME_LIMIT = 10**13  # asyncrl's budget is its wall time; frames are not its limit


def load_state(path: Path, args: argparse.Namespace, seed: int) -> dict:
    if path.exists():
        state = json.loads(path.read_text())
        state.setdefault("seed", 0)  # states written before --seeds
        asked = {"env": args.env, "hours": args.hours, "envs": args.envs, "seed": seed}
        mismatch = {k: (state[k], v) for k, v in asked.items() if state[k] != v}
        if mismatch:
            raise SystemExit(f"{path} belongs to another run ({', '.join(f'{k}: {a} there, {b} asked' for k, (a, b) in mismatch.items())}); "
                             "use another --dir or the same arguments")
        return state
    return {"env": args.env, "hours": args.hours, "envs": args.envs, "seed": seed, "budget_frames": None,
            "ours": {"chunks": [], "done": False}, "sf": {"chunks": [], "done": False}}


def start_chunk(state: dict, system: str, path: Path) -> dict:
    """A chunk's record, saved before it runs: if this invocation is killed (the session ended), the next
    one finds it without a wall time and counts it up to the last write of the killed run's log."""
    chunk = {"started_at": time.time()}
    state[system]["chunks"].append(chunk)
    write_json(path, state)
    return chunk


def close_killed_chunk(chunks: list[dict], last_write: Path) -> None:
    if chunks and "wall_s" not in chunks[-1]:
        mtime = last_write.stat().st_mtime if last_write.exists() else chunks[-1]["started_at"]
        chunks[-1].update(wall_s=max(0.0, mtime - chunks[-1]["started_at"]), killed=True)


def min_chunk_minutes(state: dict) -> float:
    """The shortest chunk worth starting. Sample Factory's first chunk must live past its startup and its first
    checkpoint (every 120 s by default): without one the next invocation cannot resume it and would start over."""
    sf_first = state["ours"]["done"] and not state["sf"]["chunks"]
    return 10.0 if sf_first else 2.0


def ours_chunk(state: dict, chunk: dict, run_dir: Path, minutes_left: float, extra: list[str]) -> None:
    """asyncrl until its accumulated wall time (its own count, kept in its checkpoints) reaches --hours, or
    this invocation's time is up."""
    summary = run_dir / "summary.json"
    done_s = json.loads(summary.read_text())["wall_s"] if summary.exists() else 0.0
    remaining_s = state["hours"] * 3600 - done_s
    overrides = [f"seed={state['seed']}", *extra, f"train.max_wall_s={remaining_s:.0f}"]
    result = run_ours(state["env"], state["envs"], 1, NO_FRAME_LIMIT, overrides,
                      timeout_s=min(remaining_s + 600, minutes_left * 60), run_dir=run_dir, resume=summary.exists())
    if result["frames"] is None:
        raise SystemExit(f"asyncrl failed:\n{result['log_tail']}")
    chunk.update({k: result[k] for k in ("frames", "run_wall_s", "wall_s", "fps_after_startup", "status", "cmd")})
    if result["status"] == "completed":
        state["ours"]["done"] = True
        state["budget_frames"] = result["frames"]
    print(f"asyncrl: {result['frames']:,} frames, {result['run_wall_s']:.0f} s of {state['hours'] * 3600:.0f} s "
          f"({result['status']})", flush=True)


def sf_chunk(state: dict, chunk: dict, sf_dir: Path, minutes_left: float, batch: int) -> None:
    """Sample Factory until it reaches asyncrl's frames, or this invocation's time is up."""
    resume = len(state["sf"]["chunks"]) > 1
    result = run_sample_factory(env=state["env"], num_workers=WORKERS, envs_per_worker=state["envs"] // WORKERS,
                                frames=state["budget_frames"], batch_size=batch, timeout_s=minutes_left * 60,
                                extra_args=[f"--seed={state['seed']}"], experiment_dir=sf_dir, resume=resume)
    chunk.update({k: result.get(k) for k in ("frames", "wall_s", "fps_steady", "timed_out", "returncode", "cmd",
                                             "resumed_at_frames")})
    if resume and result.get("resumed_at_frames") is None:
        raise SystemExit(f"Sample Factory did not resume from its checkpoint in {sf_dir} (no 'Loaded experiment "
                         f"state' in its log), so it trained from scratch: see {result.get('log')}")
    if result["returncode"] == 0 and not result["timed_out"]:
        state["sf"]["done"] = True
    elif not result["timed_out"]:
        raise SystemExit(f"Sample Factory failed:\n{result.get('log_tail')}")
    print(f"Sample Factory: {result.get('frames') or 0:,} of {state['budget_frames']:,} frames", flush=True)


def sf_curve(sf_dir: Path) -> tuple[list[tuple[int, float]], float | None]:
    """SF's curve and last mean return over every chunk's log (SF's frame counts continue across resumes)."""
    lines = [line for log in sorted(sf_dir.glob(SF_LOG_GLOB)) for line in log.read_text(errors="replace").splitlines()]
    parsed = parse_sf_log(lines)
    return parsed["curve"], parsed["reward_last"]


def seed_figures(state: dict, run_dir: Path, sf_dir: Path) -> dict:
    """One seed's pair, both done: frames, wall time over every chunk, frames/s, final return, SF's curve."""
    ours_last = json.loads((run_dir / "summary.json").read_text())
    ours_frames = ours_last["frames"]  # every chunk's; a killed chunk's frames after its last checkpoint are redone
    ours_wall = sum(c["wall_s"] for c in state["ours"]["chunks"])
    sf_frames = state["sf"]["chunks"][-1]["frames"]
    sf_wall = sum(c["wall_s"] for c in state["sf"]["chunks"])
    curve, sf_return = sf_curve(sf_dir)
    resumes = [c["resumed_at_frames"] for c in state["sf"]["chunks"] if c.get("resumed_at_frames")]
    return {
        "seed": state["seed"],
        "sf": {"frames": sf_frames, "wall_s": sf_wall, "fps_mean_overall": sf_frames / sf_wall,
               "reward_last": sf_return, "curve": curve, "resumes": resumes},
        "ours": {"frames": ours_frames, "wall_s": ours_wall, "fps_after_startup": ours_frames / ours_wall,
                 "reward_last": (ours_last["policies"].get("0") or {}).get("return_mean_last100"),
                 "run_dir": str(run_dir)},
    }


def report(states: list[dict], runs: list[dict], curves: Path | None, record: bool) -> None:
    first = states[0]
    chunks = {s: sum(len(st[s]["chunks"]) for st in states) for s in ("ours", "sf")}
    killed = sum(c.get("killed", False) for st in states for s in ("ours", "sf") for c in st[s]["chunks"])
    table = [f"{first['env']}: asyncrl trained for {first['hours']:g} h of wall time, then Sample Factory 2.1.1 on "
             f"the frames asyncrl reached, {first['envs']} envs each (SF {WORKERS} workers x {first['envs'] // WORKERS}; "
             f"asyncrl `{' '.join(recipe(first['env']))}`), batch and model as the recipe, CPU only; seeds "
             f"{' '.join(str(st['seed']) for st in states)}. Chunks: asyncrl {chunks['ours']}, SF {chunks['sf']} "
             f"(each resumed from its checkpoint; killed by the end of a session: {killed}, counted to their last "
             "log line).", "",
             "| system | seed | frames | wall time h (every chunk's startup included) | frames/s | return (last 100 episodes) |",
             "|---|---|---|---|---|---|"]
    for name, key in (("Sample Factory 2.1.1", "sf"), ("asyncrl", "ours")):
        for r in runs:
            fig = r[key]
            fps = fig["fps_mean_overall" if key == "sf" else "fps_after_startup"]
            ret = "n/a" if fig["reward_last"] is None else f"{fig['reward_last']:.2f}"
            table.append(f"| {name} | {r['seed']} | {fig['frames']:,} | {fig['wall_s'] / 3600:.2f} | {fps:,.0f} | {ret} |")
    ratios = [r["ours"]["fps_after_startup"] / r["sf"]["fps_mean_overall"] for r in runs]
    table += ["", f"Ratio of frames/s: {', '.join(f'{x:.2f}x' for x in ratios)} (seeds in order)."]
    if curves:
        draw_curves([(first["envs"], runs)], first["env"], curves)
        table += ["", f"Learning curves: `{curves}`."]
    print("\n".join(table))
    if record:
        append(f"{first['env']}, {first['hours']:g} hours of asyncrl and Sample Factory on the same frames",
               "\n".join(table))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", required=True, help="a VizDoom scenario both systems know by this name")
    parser.add_argument("--hours", type=float, default=2.0, help="asyncrl's wall-time budget")
    parser.add_argument("--envs", type=int, default=16, help="total envs, both systems")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="one pair of runs per seed, in turn")
    parser.add_argument("--for-minutes", type=float, default=float("inf"), help="stop this invocation after this")
    parser.add_argument("--dir", type=Path, default=None, help="state and runs (default .long_runs/<env>)")
    parser.add_argument("--curves", type=Path, default=None, help="when both are done: both curves to this PNG")
    parser.add_argument("--record", action="store_true", help="when both are done: append to benchmarks/RESULTS.md")
    parser.add_argument("ours", nargs="*", help="extra asyncrl overrides, after --")
    args = parser.parse_args()
    if args.envs % WORKERS:
        parser.error(f"--envs must be a multiple of {WORKERS} (SF's workers)")

    from asyncrl.config.loader import load_config

    deadline = time.monotonic() + args.for_minutes * 60
    root = args.dir or REPO / ".long_runs" / args.env
    batch = load_config([*recipe(args.env), *args.ours]).algo.batch_size
    states, runs = [], []
    for seed in args.seeds:
        seed_root = root if args.seeds == [0] else root / f"seed{seed}"
        seed_root.mkdir(parents=True, exist_ok=True)
        state_path, run_dir, sf_dir = seed_root / "state.json", seed_root / "asyncrl", seed_root / "sf"
        state = load_state(state_path, args, seed)
        close_killed_chunk(state["ours"]["chunks"], run_dir / "train.log")
        close_killed_chunk(state["sf"]["chunks"], next(iter(sf_dir.glob(SF_LOG_GLOB)), sf_dir / "none"))
        while not state["sf"]["done"]:
            minutes_left = (deadline - time.monotonic()) / 60
            if minutes_left < min_chunk_minutes(state):
                print(f"time is up for this invocation; run the same command again to go on ({state_path})")
                return
            if not state["ours"]["done"]:
                ours_chunk(state, start_chunk(state, "ours", state_path), run_dir, minutes_left, args.ours)
            else:
                sf_chunk(state, start_chunk(state, "sf", state_path), sf_dir, minutes_left, batch)
            write_json(state_path, state)
        states.append(state)
        runs.append(seed_figures(state, run_dir, sf_dir))
    report(states, runs, args.curves, args.record)

if __name__ == "__main__":
    main()
