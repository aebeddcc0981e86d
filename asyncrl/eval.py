"""``python -m asyncrl.eval run=PATH [episodes=N] [greedy=true] [seed=S] [video=true] [policy=0] [max_steps=N]
[opponent=self|random]``

Plays ``episodes`` episodes of a trained policy in a fresh env built from the run's config, prints the
mean return with its standard deviation and a 95% confidence interval, and the mean of each numeric stat
the env reports in ``info["episode_stats"]`` (kills, frags, ...); writes them to ``eval.json`` in the run
directory (or beside the checkpoint file). ``video=true`` also writes ``eval_video.mp4`` of every
episode: the image observations themselves when there are some, else ``env.render()`` (the env is then
built with ``env.kwargs.render_mode=rgb_array``).

A multi-agent env (a VizDoom match, a PettingZoo game) is played with the policy in seat 0 and, in the other
seats, the policy itself (``opponent=self``) or uniformly random actions (``opponent=random``); the report has
every seat's return and stats, and ``video=true`` writes one video per seat of what that agent sees
(``eval_video_agent<i>.mp4``, image observations only).

Bad input ends with one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym

from asyncrl.evaluation.cli_args import MISSING, UsageError, check, parse_kv, run_tool
from asyncrl.evaluation.episodes import Episode, FrameHook, play
from asyncrl.evaluation.loading import LoadedPolicy, load_policy
from asyncrl.evaluation.stats import mean_stats, summarize
from asyncrl.evaluation.video import VideoWriter, chw_to_frame, image_key
from asyncrl.outputs.run_dir import write_json

USAGE = ("usage: python -m asyncrl.eval run=RUN_DIR|CHECKPOINT [episodes=10] [greedy=true] [seed=0] "
         "[video=false] [policy=0] [max_steps=100000] [opponent=self|random]")
log = logging.getLogger("asyncrl.eval")


@dataclass
class EvalArgs:
    run: str = MISSING  # a run directory (its latest valid checkpoint) or a checkpoint file
    episodes: int = 10
    greedy: bool = True  # the distribution's mode; false samples actions
    seed: int = 0  # episode i resets the env with seed + i
    video: bool = False  # write eval_video.mp4
    policy: int = 0  # which policy of the checkpoint
    max_steps: int = 100_000  # an episode still running after this many steps is cut (and flagged)
    opponent: str = "self"  # multi-agent envs: the other seats play the policy (self) or random actions

    def __post_init__(self) -> None:
        check(self.opponent in ("self", "random"), "opponent", self.opponent, "expected self or random")
        check(self.episodes >= 1, "episodes", self.episodes, "expected an integer >= 1")
        check(self.max_steps >= 1, "max_steps", self.max_steps, "expected an integer >= 1")
        check(self.policy >= 0, "policy", self.policy, "expected an integer >= 0")


def _make_env(policy: LoadedPolicy, render: bool) -> gym.Env:
    from asyncrl.env_api.factory import load_env_factory

    env_cfg = policy.cfg.env
    if not render:
        return load_env_factory(env_cfg)(0)
    env_cfg = dataclasses.replace(env_cfg, kwargs={**env_cfg.kwargs, "render_mode": "rgb_array"})
    # rgb_array never opens a window; without this SDL (pygame) looks for a display and complains.
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    try:
        return load_env_factory(env_cfg)(0)
    except (TypeError, ValueError) as e:  # a factory that does not take render_mode
        raise UsageError(f"video=true needs env.render(), but env.factory={env_cfg.factory} rejected "
                         f"render_mode='rgb_array' ({str(e).splitlines()[0]}); evaluate without video") from e


def _frame_hook(env: gym.Env, key: str | None, writer: VideoWriter) -> FrameHook:
    if key is not None:
        return lambda obs: writer.add(chw_to_frame(obs[key]))
    return lambda obs: writer.add(env.render())


def evaluate(args: EvalArgs) -> tuple[dict, Path]:
    """Run the evaluation ``args`` describes and write ``eval.json``; returns what it holds and its path."""
    policy = load_policy(args.run, args.policy)
    if policy.spaces.num_agents > 1:
        return _evaluate_match(args, policy)
    key = image_key(policy.spaces.obs) if args.video else None
    env = _make_env(policy, render=args.video and key is None)
    video_path = policy.out_dir / "eval_video.mp4"
    writer = None
    try:
        if args.video:
            fps = max(1, round(env.metadata.get("render_fps", 30) / policy.cfg.env.frameskip))
            writer = VideoWriter(video_path, fps)
        hook = None if writer is None else _frame_hook(env, key, writer)
        episodes = play(policy.model, env, args.episodes, args.seed, args.greedy, args.max_steps, hook)
    finally:
        env.close()
        if writer is not None:
            writer.close()
    report = _report(args, policy, episodes, video_path if writer else None, writer.frames if writer else 0)
    write_json(policy.out_dir / "eval.json", report)
    return report, policy.out_dir / "eval.json"


def _evaluate_match(args: EvalArgs, policy: LoadedPolicy) -> tuple[dict, Path]:
    """Episodes of a multi-agent env, seat 0 played by the policy; one video per seat."""
    from asyncrl.env_api.factory import load_env_factory
    from asyncrl.evaluation.matches import play_match

    n = policy.spaces.num_agents
    key = image_key(policy.spaces.obs) if args.video else None
    if args.video and key is None:
        raise UsageError(f"video=true for a multi-agent env films each agent's image observations, and env "
                         f"{policy.cfg.env.name!r} has none; evaluate without video")
    players = [policy.model] + [policy.model if args.opponent == "self" else None] * (n - 1)
    env = load_env_factory(policy.cfg.env)(0)
    paths = [policy.out_dir / f"eval_video_agent{i}.mp4" for i in range(n)]
    fps = max(1, round(35 / policy.cfg.env.frameskip))  # VizDoom's 35 tics/s; matches are Doom's so far
    writers = [VideoWriter(p, fps) for p in paths] if args.video else []
    hook = (lambda i, obs: writers[i].add(chw_to_frame(obs[key]))) if writers else None
    try:
        episodes = [play_match(env, players, seed=args.seed + e, greedy=args.greedy, max_steps=args.max_steps,
                               on_obs=hook) for e in range(args.episodes)]
    finally:
        env.close()
        for w in writers:
            w.close()
    seats = [[ep[i] for ep in episodes] for i in range(n)]
    returns = [r["return"] for r in seats[0]]
    report = {
        "run": args.run, "checkpoint": str(policy.checkpoint), "env": policy.cfg.env.name,
        "env_steps": policy.env_steps, "policy": args.policy, "greedy": args.greedy, "opponent": args.opponent,
        "seeds": [args.seed + e for e in range(args.episodes)], "returns": returns,
        "lengths": [int(r["length"]) for r in seats[0]], "cut_by_max_steps": 0, "return": summarize(returns),
        "length_mean": sum(r["length"] for r in seats[0]) / len(returns),
        "episode_stats": mean_stats([{k: v for k, v in r.items() if k not in ("return", "length")} for r in seats[0]]),
        "agents": [{"return": summarize([r["return"] for r in seat]),
                    "episode_stats": mean_stats([{k: v for k, v in r.items() if k not in ("return", "length")}
                                                 for r in seat])} for seat in seats],
        "video": None if not writers else {"paths": [str(p) for p in paths], "frames": [w.frames for w in writers],
                                           "path": str(paths[0])},
    }
    write_json(policy.out_dir / "eval.json", report)
    return report, policy.out_dir / "eval.json"


def _report(args: EvalArgs, policy: LoadedPolicy, episodes: list[Episode], video: Path | None,
            frames: int) -> dict:
    returns = [e.ret for e in episodes]
    return {
        "run": args.run,
        "checkpoint": str(policy.checkpoint),
        "env": policy.cfg.env.name,
        "env_steps": policy.env_steps,
        "policy": args.policy,
        "greedy": args.greedy,
        "seeds": [e.seed for e in episodes],
        "returns": returns,
        "lengths": [e.length for e in episodes],
        "cut_by_max_steps": sum(e.cut for e in episodes),
        "return": summarize(returns),
        "length_mean": sum(e.length for e in episodes) / len(episodes),
        "episode_stats": mean_stats([e.stats for e in episodes if not e.cut]),
        "video": None if video is None else {"path": str(video), "frames": frames},
    }


def format_report(r: dict) -> str:
    ret = r["return"]
    ci = "n/a" if ret["ci95"] is None else f"[{ret['ci95'][0]:.2f}, {ret['ci95'][1]:.2f}]"
    mode = "greedy" if r["greedy"] else "sampled"
    seeds = r["seeds"]
    lines = [
        f"{len(seeds)} episodes of {r['env']}, policy {r['policy']}, {mode} actions, seeds {seeds[0]}..{seeds[-1]}, "
        f"checkpoint {r['checkpoint']} ({r['env_steps']} env steps)",
        f"return  mean {ret['mean']:.2f}  std {ret['std']:.2f}  95% CI {ci}  ({ret['ci_method']})",
        f"length  mean {r['length_mean']:.1f}" + (f"  ({r['cut_by_max_steps']} cut by max_steps)"
                                                  if r["cut_by_max_steps"] else ""),
    ]
    if r["episode_stats"]:
        lines.append("stats   " + "  ".join(f"{k} {v:.3g}" for k, v in r["episode_stats"].items()))
    for i, agent in enumerate(r.get("agents", [])[1:], start=1):
        who = "the policy" if r["opponent"] == "self" else "random actions"
        stats = "  ".join(f"{k} {v:.3g}" for k, v in agent["episode_stats"].items())
        lines.append(f"seat {i} ({who}): return mean {agent['return']['mean']:.2f}  {stats}".rstrip())
    return "\n".join(lines)


def _run(argv: list[str]) -> str:
    args = parse_kv(argv, EvalArgs, USAGE)
    report, json_path = evaluate(args)
    video = f" and {', '.join(report['video'].get('paths') or [report['video']['path']])}" if report["video"] else ""
    return f"{format_report(report)}\nwrote {json_path}{video}"


def main(argv: list[str] | None = None) -> int:
    return run_tool("asyncrl.eval", __doc__, argv, _run)


if __name__ == "__main__":
    sys.exit(main())
