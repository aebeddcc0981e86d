"""Evaluate every policy of a duel run (self-play or its bot stage) against a random player and a built-in bot.

    python experiments/doom_duel_selfplay/evaluate.py runs/doom_duel_selfplay [--matches 10] [--minutes 1.0]
    python experiments/doom_duel_selfplay/evaluate.py runs/doom_duel_bots --matches 20 --minutes 4
    python experiments/doom_duel_selfplay/evaluate.py RUN --policies 0,1 --out eval_01.json   (a share of the work)

Each policy plays ``--matches`` duels (actions sampled from the policy, as in training) of ``--minutes``
each: as player 0 against a player taking uniformly random actions, and as the only agent against one
built-in ViZDoom bot. A match is won when the policy's frags are strictly the most (Sample Factory's
win). Prints a markdown table and writes ``eval_duel.json`` into the run directory (or ``--out``); ``--policies``
evaluates some of the run's policies (a process each for two shares uses both cores of a 2-core machine).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
import torch

from asyncrl.evaluation.cli_args import UsageError
from asyncrl.evaluation.loading import load_policy, resolve
from asyncrl.evaluation.matches import play_match
from asyncrl.evaluation.rating import match_score
from asyncrl_envs.vizdoom import DoomMatch, get_match_spec

OPPONENTS = {"random": {"num_agents": 2, "num_bots": 0}, "bot": {"num_agents": 1, "num_bots": 1}}


def evaluate(run: str, matches: int, minutes: float, against: list[str], policies: list[int] | None = None) -> dict:
    _, state, _, _ = resolve(run)
    results = {}
    for pid in sorted(state["learners"]) if policies is None else policies:
        policy = load_policy(run, pid)
        cfg = policy.cfg
        row = {}
        for opponent in against:
            kwargs = OPPONENTS[opponent]
            # Both stages' policies are duel players (doom_duel_bots has the duel player's spaces).
            env = DoomMatch(get_match_spec("doom_duel"), frameskip=cfg.env.frameskip, timelimit_minutes=minutes,
                            **kwargs)
            try:
                players = [policy.model, None] if kwargs["num_agents"] == 2 else [policy.model]
                games = [play_match(env, players, seed=1000 + m)[0] for m in range(matches)]
            finally:
                env.close()
            scores = [match_score(g) for g in games]
            row[opponent] = {"win_rate": float(np.mean([s == 1.0 for s in scores])),
                             "draw_rate": float(np.mean([s == 0.5 for s in scores])),
                             "frags": float(np.mean([g.get("frags", 0.0) for g in games])),
                             "deaths": float(np.mean([g.get("deaths", 0.0) for g in games]))}
        results[pid] = row
        print(f"policy {pid}: {row}", file=sys.stderr)
    return {"run": run, "checkpoint_env_steps": int(state["counters"]["env_steps"]), "matches": matches,
            "minutes": minutes, "policies": results}


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    # One thread for batch-1 forwards: alone it costs nothing measurable (3 one-minute matches: 11.3 s against
    # 12.1 with torch's default of a thread per core), and two evaluations side by side on 2 cores with the
    # default ran 13x slower (their threads and the engines fought for the cores).
    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--matches", type=int, default=10)
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--against", default="random,bot", help="opponents, comma-separated: random, bot")
    parser.add_argument("--policies", default=None, help="policy ids, comma-separated (default: all of the run's)")
    parser.add_argument("--out", type=Path, default=None, help="the JSON to write (default: RUN/eval_duel.json)")
    args = parser.parse_args()
    against = args.against.split(",")
    if unknown := sorted(set(against) - set(OPPONENTS)):
        parser.error(f"--against {args.against}: unknown opponent {unknown[0]!r}; expected some of random, bot")
    try:
        policies = None if args.policies is None else [int(p) for p in args.policies.split(",")]
    except ValueError:
        parser.error(f"--policies {args.policies}: expected policy ids separated by commas, e.g. 0,1")
    try:
        out = evaluate(args.run, args.matches, args.minutes, against, policies)
    except UsageError as e:  # a run or policy that is not there: one line, not a traceback
        print(f"evaluate.py: {e}", file=sys.stderr)
        return 2
    (args.out or Path(args.run) / "eval_duel.json").write_text(json.dumps(out, indent=2))
    print("| policy | " + " | ".join(f"win / draw rate vs {o} | frags vs {o} | deaths vs {o}" for o in against) + " |")
    print("|---|" + "---|---|---|" * len(against))
    for pid, row in out["policies"].items():
        cells = [f"{row[o]['win_rate']:.2f} / {row[o]['draw_rate']:.2f} | {row[o]['frags']:.2f} | {row[o]['deaths']:.2f}"
                 for o in against]
        print(f"| {pid} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
