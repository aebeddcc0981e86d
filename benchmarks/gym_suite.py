"""Gymnasium learning suite: each env with no overrides, at a published budget, beside a published score.

    python benchmarks/gym_suite.py [--envs ID ...] [--seeds 0 1 2] [--keep DIR] [--curves DIR] [--record]
                                   [-- OVERRIDES ...]

One run after the other (never two at once): `python -m asyncrl.train env=<id> train.env_steps=<budget>
seed=<s>`, nothing else, so each env gets the defaults of its family (conf/family/); overrides after `--` are
for the A/B runs that choose those defaults, and the table then names them. Our score is measured as the
reference measures its own: against cleanRL, the mean return of the last 100 training episodes at the end of
the budget (not the best moment: a run that solves and then collapses scores its collapse); against the SB3 zoo,
whose figures are deterministic evaluations of the final agent, `asyncrl.eval` of the final checkpoint (greedy,
30 episodes, seeds 10000+). The table shows both where both are measured. An env counts as reached when our mean
over seeds is at least the reference's mean less its reported spread (the reference's own seed-to-seed or
episode-to-episode std). `--reuse` scores runs already completed in `--keep` again instead of retraining them.

References (what each figure is, and where it is published):
- cleanRL's Open RL Benchmark, tag pr-424 (vwxyzjn/cleanrl docs/benchmark/ppo.md and
  ppo_continuous_action.md; docs/rl-algorithms/ppo.md for Atari): `ppo.py` at 500k steps, `ppo_continuous_action.py`
  on MuJoCo v4 at 1M steps, `ppo_atari.py` on NoFrameskip-v4 at 10M steps (40M frames); the average episodic
  return, mean +- std over seeds.
- rl-baselines3-zoo `benchmark.md` (DLR-RM/rl-baselines3-zoo): PPO with the zoo's tuned hyperparameters, the
  mean reward of the trained agent (deterministic) +- std over evaluation episodes, at the stated budget.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from _record import append  # noqa: E402


@dataclass(frozen=True)
class Entry:
    env: str
    budget: int  # env steps
    reference: float
    spread: float
    source: str
    greedy_eval: bool = False  # the reference is a deterministic evaluation of the final agent (the zoo's)


CLEANRL = "cleanRL ppo.py, 500k steps"
CLEANRL_MUJOCO = "cleanRL ppo_continuous_action.py (-v4), 1M steps"
CLEANRL_ATARI = "cleanRL ppo_atari.py (NoFrameskip-v4), 10M steps"
ZOO = "SB3 zoo PPO (tuned), deterministic eval"
EVAL_EPISODES, EVAL_SEED = 30, 10_000
SUITE = (
    Entry("CartPole-v1", 500_000, 490.04, 6.12, CLEANRL),
    Entry("Acrobot-v1", 500_000, -86.36, 1.32, CLEANRL),
    # The zoo's budget is 100k steps with Pendulum-specific settings (gamma 0.9, lr 1e-3, gSDE); ours is 10x that.
    Entry("Pendulum-v1", 1_000_000, -172.23, 104.16, f"{ZOO}, 100k steps", greedy_eval=True),
    # Box2D (pip install 'asyncrl[box2d]'): our v3 against the zoo's v2 (v3 fixed the lander's determinism).
    Entry("LunarLander-v3", 1_000_000, 242.119, 31.823, f"{ZOO}, 1M steps (v2)", greedy_eval=True),
    Entry("LunarLanderContinuous-v3", 1_000_000, 270.863, 32.072, f"{ZOO}, 1M steps (v2)", greedy_eval=True),
    # MuJoCo (pip install 'asyncrl[mujoco]'): our v5 against cleanRL's v4 (the same models; v5 fixes bugs).
    Entry("InvertedPendulum-v5", 1_000_000, 963.09, 22.20, CLEANRL_MUJOCO),
    Entry("HalfCheetah-v5", 1_000_000, 1442.64, 46.03, CLEANRL_MUJOCO),
    Entry("Hopper-v5", 1_000_000, 2382.86, 271.74, CLEANRL_MUJOCO),
    Entry("Walker2d-v5", 1_000_000, 2287.95, 571.78, CLEANRL_MUJOCO),
    # Atari (pip install 'asyncrl[atari]'): sticky actions here, none in cleanRL's v4 (which makes it easier).
    Entry("ALE/Pong-v5", 10_000_000, 20.36, 0.20, CLEANRL_ATARI),
    Entry("ALE/Breakout-v5", 10_000_000, 414.66, 28.09, CLEANRL_ATARI),
)


def greedy_eval(run_dir: Path) -> float | None:
    """The final checkpoint's mean return over EVAL_EPISODES greedy episodes (``asyncrl.eval``)."""
    cmd = [sys.executable, "-m", "asyncrl.eval", f"run={run_dir}", f"episodes={EVAL_EPISODES}", f"seed={EVAL_SEED}"]
    if subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False).returncode != 0:
        return None
    return json.loads((run_dir / "eval.json").read_text())["return"]["mean"]


def score(entry: Entry, run_dir: Path, result: dict) -> dict:
    """The training score from the run's summary, and the greedy evaluation where the reference is one."""
    summary_path = run_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    result.update(train=(summary.get("policies", {}).get("0") or {}).get("return_mean_last100"),
                  status=summary.get("status"), fps=summary.get("fps_after_startup"))
    result["eval"] = greedy_eval(run_dir) if entry.greedy_eval and result["status"] == "completed" else None
    result["score"] = result["eval"] if entry.greedy_eval else result["train"]
    return result


def run(entry: Entry, seed: int, run_dir: Path, timeout_s: float, overrides: list[str], reuse: bool = False) -> dict:
    """One training run in a session of its own (nothing it starts outlives it); Ctrl-C past ``timeout_s``.
    ``reuse``: a run already completed in ``run_dir`` is scored again, not retrained."""
    done = run_dir / "summary.json"
    summary = json.loads(done.read_text()) if reuse and done.exists() else {}
    if summary.get("status") == "completed":
        config = (run_dir / "config.yaml").read_text()
        family = next((line.split(":", 1)[1].strip() for line in config.splitlines() if line.startswith("family:")),
                      "?")
        return score(entry, run_dir, {"wall_s": summary.get("wall_s"), "family": family, "returncode": 0,
                                      "tail": None, "reused": True})
    cmd = [sys.executable, "-m", "asyncrl.train", f"env={entry.env}", f"train.env_steps={entry.budget}",
           f"seed={seed}", f"run_dir={run_dir}", "restart_behavior=overwrite", "logging.wandb=disabled", *overrides]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace", start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    family = next((line.split("defaults of the ", 1)[1].split(" family", 1)[0] for line in out.splitlines()
                   if "defaults of the " in line), "?")
    return score(entry, run_dir, {"wall_s": time.monotonic() - t0, "family": family, "returncode": proc.returncode,
                                  "tail": None if proc.returncode == 0 else out[-2000:]})


def _plot(run_dirs: list[Path], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "asyncrl.plot", *map(str, run_dirs), "--out", str(out)], cwd=REPO,
                   check=False, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", default=[e.env for e in SUITE])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--keep", type=Path, default=None, help="keep the runs here (else a temporary directory)")
    parser.add_argument("--curves", type=Path, default=None, help="write one PNG per env here")
    parser.add_argument("--timeout", type=float, default=3600.0, help="per run, seconds")
    parser.add_argument("--reuse", action="store_true", help="score completed runs in --keep again, not retrain")
    parser.add_argument("--record", action="store_true", help="append the table to benchmarks/RESULTS.md")
    parser.add_argument("overrides", nargs="*", help="config overrides for every run (A/B runs of a default)")
    args = parser.parse_args()
    entries = [e for e in SUITE if e.env in args.envs]
    unknown = sorted(set(args.envs) - {e.env for e in SUITE})
    if unknown:
        parser.error(f"not in the suite: {', '.join(unknown)}; expected some of {', '.join(e.env for e in SUITE)}")

    rows = []
    with tempfile.TemporaryDirectory(prefix="asyncrl_suite_") as tmp:
        root = args.keep or Path(tmp)
        for entry in entries:
            runs = []
            for seed in args.seeds:
                run_dir = root / entry.env / f"seed{seed}"
                runs.append(run(entry, seed, run_dir, args.timeout, args.overrides, args.reuse))
                print(entry.env, seed, runs[-1], flush=True)
            if args.curves:
                png = args.curves / f"{entry.env.replace('/', '_')}.png"
                _plot([root / entry.env / f"seed{s}" for s in args.seeds], png)
            rows.append((entry, runs))

    table = ["| env | family | budget (steps) | reference | source | ours, mean (min..max) over seeds | reached | "
             "ours, the other measure | frames/s | wall s per run |", "|---|---|---|---|---|---|---|---|---|---|"]
    reached = 0
    for entry, runs in rows:
        scores = [r["score"] for r in runs if r["score"] is not None]
        if len(scores) < len(runs):
            table.append(f"| {entry.env} | {runs[0]['family']} | {entry.budget:,} | {entry.reference:g} +- "
                         f"{entry.spread:g} | {entry.source} | failed | no | | | |")
            continue
        mean = sum(scores) / len(scores)
        ok = mean >= entry.reference - entry.spread
        reached += ok
        fps = sum(r["fps"] or 0 for r in runs) / len(runs)
        wall = sum(r["wall_s"] or 0 for r in runs) / len(runs)
        # Beside the score, the training return where the score is a greedy evaluation.
        other = [r["train"] for r in runs if entry.greedy_eval and r["train"] is not None]
        other_cell = f"training, last 100: {sum(other) / len(other):.1f}" if other else ""
        table.append(f"| {entry.env} | {runs[0]['family']} | {entry.budget:,} | {entry.reference:g} +- "
                     f"{entry.spread:g} | {entry.source} | {mean:.1f} ({min(scores):.1f}..{max(scores):.1f}) | "
                     f"{'yes' if ok else 'no'} | {other_cell} | {fps:,.0f} | {wall:.0f} |")
    given = f"the overrides `{' '.join(args.overrides)}`" if args.overrides else "no overrides"
    table += ["", f"Reached: {reached} of {len(rows)} envs, seeds {', '.join(map(str, args.seeds))}; each run "
              f"with {given} but the budget and the seed."]
    print("\n".join(table))
    if args.record:
        append("Gymnasium learning suite, the defaults of each env family", "\n".join(table))


if __name__ == "__main__":
    main()
