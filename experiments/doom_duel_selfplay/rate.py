"""Rate the snapshots of duel runs against each other and against the built-in bot, over training time.

    python experiments/doom_duel_selfplay/rate.py runs/doom_duel_bots [runs/doom_duel_selfplay ...] \\
        [--snapshots 8[,N2...]] [--bot-matches 10] [--pair-matches 4] [--neighbours 2] [--minutes 2.0] \\
        [--out experiments/doom_duel_selfplay]

A snapshot is one policy of one kept checkpoint (``--snapshots`` of a run's checkpoints, evenly spaced, the last
always among them; one count for all runs or one per run). Every snapshot plays ``--bot-matches`` matches against one built-in ViZDoom bot, and
``--pair-matches`` duels (seats alternating) against each of the next ``--neighbours`` snapshots in training
order, all runs' snapshots in one order, so early and late snapshots are linked through the ones between them
and through the bot. Matches last ``--minutes``; actions are sampled from the policy, as in training. A match is
won with strictly the most frags, drawn on a tie.

The ratings are fitted to all games at once (``asyncrl.evaluation.rating``: Bradley-Terry on the Elo scale,
400 points = 10:1 odds), the bot anchored at 0. Runs are taken as stages of one training: a run started with
``train.init_from`` continues the frame axis of the run before it. Each rating has a 90% interval from refitting
on resampled games. Writes ``ratings.json`` and ``rating.png``
(rating and frags/deaths per match against the bot, over training frames) into ``--out`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from asyncrl.evaluation.loading import load_policy, load_run_config  # noqa: E402
from asyncrl.evaluation.matches import play_match  # noqa: E402
from asyncrl.evaluation.rating import bootstrap_intervals, fit_ratings, match_score  # noqa: E402
from asyncrl.outputs.checkpoint import CheckpointManager, load_checkpoint_file  # noqa: E402
from asyncrl_envs.vizdoom import DoomMatch, get_match_spec  # noqa: E402

BOT = "bot"


@dataclass
class Snapshot:
    name: str  # run/p<policy>@<thousands of frames>k
    run: str
    policy_id: int
    frames: int  # training frames of this stage and the stages before it
    checkpoint: Path


def evenly_spaced(items: list, count: int) -> list:
    """``count`` of ``items`` spread over them, the first and the last included."""
    if len(items) <= count:
        return list(items)
    return [items[i] for i in np.unique(np.linspace(0, len(items) - 1, count).round().astype(int))]


def find_snapshots(runs: list[str], per_run: list[int]) -> list[Snapshot]:
    snapshots, frames_before = [], 0
    for run, count in zip(runs, per_run, strict=True):
        run_dir = Path(run)
        cfg = load_run_config(run_dir / "config.yaml")
        if cfg.train.init_from is None:
            frames_before = 0
        paths = CheckpointManager(run_dir / "checkpoints", keep=1).paths()
        if not paths:
            raise SystemExit(f"{run}: no checkpoints in {run_dir / 'checkpoints'}; expected a trained duel run")
        last_frames = 0
        for path in evenly_spaced(paths, count):
            state = load_checkpoint_file(path)
            for pid, learner in sorted(state["learners"].items()):
                frames = frames_before + int(learner["env_steps"]) * cfg.env.frameskip
                snapshots.append(Snapshot(f"{run_dir.name}/p{pid}@{frames // 1000}k", run, pid, frames, path))
                last_frames = max(last_frames, frames)
        frames_before = last_frames
    names = [s.name for s in snapshots]
    if len(set(names)) < len(names):
        raise SystemExit(f"runs {runs} name some snapshot twice; expected each run directory once")
    return snapshots


def rate(runs: list[str], per_run: list[int], bot_matches: int, pair_matches: int, neighbours: int,
         minutes: float) -> dict:
    snapshots = find_snapshots(runs, per_run)
    models = {s.name: load_policy(str(s.checkpoint), s.policy_id).model for s in snapshots}
    frameskip = load_run_config(Path(runs[0]) / "config.yaml").env.frameskip
    spec = get_match_spec("doom_duel")
    games, bot_stats = [], {}
    started = time.monotonic()
    vs_bot = DoomMatch(spec, frameskip=frameskip, num_agents=1, num_bots=1, timelimit_minutes=minutes)
    try:
        for s in snapshots:
            results = [play_match(vs_bot, [models[s.name]], seed=1000 + m)[0] for m in range(bot_matches)]
            games += [(s.name, BOT, match_score(r)) for r in results]
            bot_stats[s.name] = {key: float(np.mean([r.get(key, 0.0) for r in results]))
                                 for key in ("frags", "deaths", "hits", "damage")}
            bot_stats[s.name]["score"] = float(np.mean([match_score(r) for r in results]))
            print(f"{s.name} vs bot: {bot_stats[s.name]} ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    finally:
        vs_bot.close()
    duel = DoomMatch(spec, frameskip=frameskip, num_agents=2, num_bots=0, timelimit_minutes=minutes)
    try:
        for i, a in enumerate(snapshots):
            for b in snapshots[i + 1:i + 1 + neighbours]:
                for m in range(pair_matches):
                    first, second = (a, b) if m % 2 == 0 else (b, a)
                    result = play_match(duel, [models[first.name], models[second.name]], seed=2000 + m)[0]
                    games.append((first.name, second.name, match_score(result)))
            print(f"{a.name} duels done ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    finally:
        duel.close()
    result = {"runs": runs, "minutes": minutes, "bot_matches": bot_matches, "pair_matches": pair_matches,
              "neighbours": neighbours, "wall_s": time.monotonic() - started,
              "snapshots": [{"name": s.name, "run": s.run, "policy": s.policy_id, "frames": s.frames,
                             "checkpoint": str(s.checkpoint), "vs_bot": bot_stats[s.name]} for s in snapshots],
              "games": games}
    return with_ratings(result)


def with_ratings(result: dict) -> dict:
    """Fit the ratings (and their 90% bootstrap intervals) to the result's games."""
    games = [tuple(g) for g in result["games"]]
    result["ratings"] = fit_ratings(games, anchor=BOT)
    intervals = bootstrap_intervals(games, anchor=BOT)
    for s in result["snapshots"]:
        s["rating"], s["rating_90"] = result["ratings"][s["name"]], intervals[s["name"]]
    return result


def plot(result: dict, out: Path) -> None:
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    lines: dict[tuple[str, int], list[dict]] = {}
    for s in result["snapshots"]:
        lines.setdefault((Path(s["run"]).name, s["policy"]), []).append(s)
    for (run, pid), points in lines.items():
        x = [p["frames"] / 1e6 for p in points]
        ratings = np.array([p["rating"] for p in points])
        low, high = np.array([p["rating_90"] for p in points]).T
        top.errorbar(x, ratings, yerr=[ratings - low, high - ratings], marker="o", capsize=3,
                     label=f"{run} policy {pid}")
        bottom.plot(x, [p["vs_bot"]["frags"] for p in points], marker="o", label=f"frags, {run} p{pid}")
        bottom.plot(x, [p["vs_bot"]["deaths"] for p in points], marker="x", linestyle="--",
                    label=f"deaths, {run} p{pid}")
    top.axhline(0.0, color="black", linewidth=1, label="built-in bot (anchor)")
    top.set_ylabel("rating (Elo scale, bot = 0; 90% bootstrap)")
    top.legend(fontsize=8)
    bottom.axhline(0.0, color="grey", linewidth=0.5)
    bottom.set_ylabel(f"per {result['minutes']:g}-minute match vs the bot")
    bottom.set_xlabel("training frames (millions)")
    bottom.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out)


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--snapshots", default="8", help="checkpoints rated per run: one count, or one per run")
    parser.add_argument("--bot-matches", type=int, default=10)
    parser.add_argument("--pair-matches", type=int, default=4)
    parser.add_argument("--neighbours", type=int, default=2)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--out", default=None, help="where ratings.json and rating.png go (default: the last run)")
    parser.add_argument("--from-json", default=None, help="refit and replot the games of a ratings.json; no matches")
    args = parser.parse_args()
    counts = [int(c) for c in args.snapshots.split(",")]
    if len(counts) not in (1, len(args.runs)) or min(counts) < 1:
        parser.error(f"--snapshots {args.snapshots}: expected one count >= 1, or one per run ({len(args.runs)})")
    counts = counts * len(args.runs) if len(counts) == 1 else counts
    out = Path(args.out or args.runs[-1])
    out.mkdir(parents=True, exist_ok=True)
    if args.from_json:
        result = with_ratings(json.loads(Path(args.from_json).read_text()))
    else:
        result = rate(args.runs, counts, args.bot_matches, args.pair_matches, args.neighbours, args.minutes)
    (out / "ratings.json").write_text(json.dumps(result, indent=2))
    plot(result, out / "rating.png")
    print("| snapshot | frames | rating (90%) | score vs bot | frags vs bot | deaths vs bot |")
    print("|---|---|---|---|---|---|")
    for s in result["snapshots"]:
        b = s["vs_bot"]
        low, high = s["rating_90"]
        print(f"| {s['name']} | {s['frames'] / 1e6:.2f}M | {s['rating']:.0f} ({low:.0f}..{high:.0f}) | {b['score']:.2f} | "
              f"{b['frags']:.2f} | {b['deaths']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
