"""Evaluate every policy of a doom duel self-play run against a random player and against a built-in bot.

    python experiments/doom_duel_selfplay/evaluate.py runs/doom_duel_selfplay [--matches 10] [--minutes 1.0]

Each policy plays ``--matches`` duels (actions sampled from the policy, as in training) of ``--minutes``
each: as player 0 against a player taking uniformly random actions, and as the only agent against one
built-in ViZDoom bot. A match is won when the policy's frags are strictly the most (Sample Factory's
win). Prints a markdown table and writes ``eval_duel.json`` into the run directory.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from asyncrl.evaluation.loading import load_policy, resolve
from asyncrl.evaluation.matches import play_match
from asyncrl.evaluation.rating import match_score
from asyncrl_envs.vizdoom import DoomMatch, get_match_spec


def evaluate(run: str, matches: int, minutes: float) -> dict:
    _, state, _, _ = resolve(run)
    results = {}
    for pid in sorted(state["learners"]):
        policy = load_policy(run, pid)
        cfg = policy.cfg
        row = {}
        for opponent, kwargs in (("random", {"num_agents": 2, "num_bots": 0}), ("bot", {"num_agents": 1, "num_bots": 1})):
            env = DoomMatch(get_match_spec(cfg.env.id), frameskip=cfg.env.frameskip, timelimit_minutes=minutes, **kwargs)
            try:
                players = [policy.model, None] if kwargs["num_agents"] == 2 else [policy.model]
                games = [play_match(env, players, seed=1000 + m)[0] for m in range(matches)]
            finally:
                env.close()
            row[opponent] = {"win_rate": float(np.mean([match_score(g) == 1.0 for g in games])),
                             "frags": float(np.mean([g.get("frags", 0.0) for g in games])),
                             "deaths": float(np.mean([g.get("deaths", 0.0) for g in games]))}
        results[pid] = row
        print(f"policy {pid}: {row}", file=sys.stderr)
    return {"run": run, "checkpoint_env_steps": int(state["counters"]["env_steps"]), "matches": matches,
            "minutes": minutes, "policies": results}


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--matches", type=int, default=10)
    parser.add_argument("--minutes", type=float, default=1.0)
    args = parser.parse_args()
    out = evaluate(args.run, args.matches, args.minutes)
    (Path(args.run) / "eval_duel.json").write_text(json.dumps(out, indent=2))
    print("| policy | win rate vs random | frags vs random | win rate vs bot | frags vs bot | deaths vs bot |")
    print("|---|---|---|---|---|---|")
    for pid, row in out["policies"].items():
        r, b = row["random"], row["bot"]
        print(f"| {pid} | {r['win_rate']:.2f} | {r['frags']:.2f} | {b['win_rate']:.2f} | {b['frags']:.2f} | "
              f"{b['deaths']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
