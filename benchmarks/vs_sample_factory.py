"""asyncrl against Sample Factory 2.1.1 on a VizDoom scenario, side by side in one invocation.

    python benchmarks/vs_sample_factory.py [--env doom_basic] [--envs 8 16 32 64] [--frames 400000]
        [--seeds 0 1 2] [--levels 0.5 0.75] [--curves curves.png] [--keep DIR] [--record] [-- key=value ...]

For each total number of envs, Sample Factory runs first (`sf_examples.vizdoom.train_vizdoom --device=cpu`,
2 workers x envs/2, one per core as SF advises, in its own venv, built on first use by `sample_factory.py`),
then asyncrl (`python -m asyncrl.train experiment=<env>`, the recipe's layout: `--samplers` 1 x envs, pinned
to one core, the learner on the other; `env=<env>` with the doom_basic recipe's runtime where the scenario has
no recipe of its own), never both at once. Each system in its best layout here; both train the
same model (conv 8x8/4-4x4/2-3x3/2, FC 512, GRU 512, 3x72x128 input), rollout 32, the recipe's batch (1024 for
doom_basic; Sample Factory is given the same), for the same
number of frames (agent steps x frameskip 4). Printed and recorded per row:

- FPS after start-up: SF's least-squares slope of frames against its log's timestamps from its first
  report with frames; ours from the trainer's first collected chunk (summary.json). Both exclude process
  and engine start-up; "whole" divides the frames by the wall time from spawn to exit instead.
- peak memory of the whole process tree (Ray's daemons and workers included), as summed PSS (shared pages
  split among their users: the physical total) and summed RSS;
- the mean episode return over the last 100 episodes (in the scenario's reward scale: x0.01 for doom_basic, x1 for defend_the_center) at the end, so
  "as fast" is read beside "learning as well";
- ours: where each component's time went (the trainer's end-of-run line).

With `--seeds`, each system runs once per seed (SF `--seed=S`, ours `seed=S`), alternating systems, and each
figure is the mean over seeds with its min..max; the frames at which each system's curve (mean return of the
last 100 episodes) first reaches each of `--levels` (default per scenario: the levels its page quotes) are
listed per seed, with their mean.

Extra `key=value` arguments after `--` go to asyncrl's command line (e.g. `-- runtime.precision=fp32`).
`--curves PNG` draws both systems' mean return (last 100 episodes) against frames, one panel per env count,
the mean over seeds with a min-max band; `--keep DIR` keeps both systems' run directories and logs there.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _record import append  # noqa: E402
from proc_tree import PeakTreeMemory  # noqa: E402
from sample_factory import run_sample_factory  # noqa: E402

REPO = HERE.parent
FRAMESKIP = 4
WORKERS = 2  # SF's rollout workers and our samplers: one per core of the 2-core machine
RAY_DAEMONS = (r"\braylet\b", r"gcs_server", r"ray/dashboard", r"default_worker\.py")
# The levels each scenario's page quotes frames-to-reach for (scenario reward scale).
LEVELS = {"doom_basic": (0.5, 0.75), "doom_defend_the_center": (10.0, 20.0)}
# Where Sample Factory ends after the paper's 500M frames per scenario: the range of the third-party model cards
# trained with the paper's seeds (huggingface.co/edbeeching/doom_<env>_<seed>; ../shared/SAMPLE_FACTORY.md §6).
# Their units are not verified (health_gathering's 66 cannot be unshaped), so the curves draw them as a band
# labelled as such, never as a target; scenarios without a card get none.
REFERENCES = {"doom_my_way_home": (0.98, 0.98), "doom_defend_the_center": (24.0, 24.67),
              "doom_defend_the_line": (34.7, 43.5), "doom_deadly_corridor": (17.1, 19.2)}


def run_trainer(overrides: list[str], frames: int, timeout_s: float, repo: Path = REPO,
                run_dir: Path | None = None, resume: bool = False, frameskip: int = FRAMESKIP) -> dict:
    """`python -m asyncrl.train <overrides>` for `frames` frames in a subprocess of its own session (so
    nothing it starts outlives it), from the checkout `repo` (another revision's worktree, say). ``run_dir``:
    keep the run there, with its TensorBoard events (else a temporary directory, without them). ``resume``:
    continue the run in ``run_dir`` from its latest checkpoint. Past ``timeout_s`` the run gets Ctrl-C (it
    writes a final checkpoint). ``frameskip``: the env's, to turn ``frames`` into agent steps."""
    with tempfile.TemporaryDirectory(prefix="asyncrl_bench_") as tmp:
        kept = run_dir is not None
        run_dir = Path(run_dir) if kept else Path(tmp)
        cmd = [sys.executable, "-m", "asyncrl.train", *overrides, f"run_dir={run_dir}",
               f"restart_behavior={'resume' if resume else 'overwrite'}",
               f"train.env_steps={frames // frameskip}", "logging.wandb=disabled",
               f"logging.tensorboard={'true' if kept else 'false'}"]
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace", start_new_session=True)
        timed_out = False
        try:
            with PeakTreeMemory(proc.pid, extra_patterns=RAY_DAEMONS, interval_s=0.5, track_pss=True) as mem:
                try:
                    out, _ = proc.communicate(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    timed_out = True
                    proc.send_signal(signal.SIGINT)
                    out, _ = proc.communicate(timeout=60)
        finally:
            wall_s = time.monotonic() - t0
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        summary_path = Path(run_dir) / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    breakdown = re.search(r"where the time went \(this session\): (.*)", out or "")
    return {
        "fps_after_startup": summary.get("fps_after_startup"),
        "fps_wall": summary["frames"] / wall_s if summary.get("frames") else None,
        "status": summary.get("status"), "run_wall_s": summary.get("wall_s"),  # all sessions of the run
        "frames": summary.get("frames"),
        "reward_last": (summary.get("policies", {}).get("0") or {}).get("return_mean_last100"),
        "policy_lag_mean": (summary.get("policy_lag") or {}).get("mean"),
        "peak_rss_bytes": mem.peak_bytes, "peak_pss_bytes": mem.peak_pss_bytes, "wall_s": wall_s,
        "cpu_by_role": mem.cpu_by_role(),
        "returncode": proc.returncode, "timed_out": timed_out, "time_breakdown": breakdown and breakdown.group(1),
        "cmd": " ".join(["python", *cmd[1:]]), "log_tail": None if proc.returncode == 0 else (out or "")[-3000:],
    }


def recipe(env: str) -> list[str]:
    """`experiment=<env>` where the scenario has a recipe, else the env with the doom_basic recipe's runtime."""
    if (REPO / "conf" / "experiment" / f"{env}.yaml").is_file():
        return [f"experiment={env}"]
    from asyncrl.config.loader import load_config

    rt = load_config(["experiment=doom_basic"]).runtime
    return [f"env={env}", f"runtime.pin_cores={rt.pin_cores}", f"runtime.precision={rt.precision}",
            f"runtime.learner_threads={rt.learner_threads}"]


def run_ours(env: str, num_envs: int, samplers: int, frames: int, extra: list[str], timeout_s: float,
             run_dir: Path | None = None, resume: bool = False) -> dict:
    """The scenario's recipe with `num_envs` envs over `samplers` samplers."""
    layout = [f"runtime.num_samplers={samplers}", f"runtime.num_envs={num_envs // samplers}"]
    return run_trainer([*recipe(env), *layout, *extra], frames, timeout_s, run_dir=run_dir, resume=resume)


def sf_points(sf: dict) -> tuple[np.ndarray, np.ndarray] | None:
    return tuple(np.asarray(v, dtype=float) for v in zip(*sf["curve"], strict=True)) if sf.get("curve") else None


def our_points(ours: dict) -> tuple[np.ndarray, np.ndarray] | None:
    if not ours.get("run_dir"):
        return None
    from asyncrl.evaluation.curves import read_curve

    c = read_curve(Path(ours["run_dir"]), "stats/return_mean")
    return (c.frames.astype(float), c.values.astype(float)) if len(c.frames) else None


def frames_to_reach(points: tuple[np.ndarray, np.ndarray] | None, level: float) -> float | None:
    """The first logged frame count at which the curve is at ``level`` or above; None if never."""
    if points is None:
        return None
    frames, values = points
    hit = np.flatnonzero(values >= level)
    return float(frames[hit[0]]) if hit.size else None


def draw_curves(rows: list, env: str, path: Path, reference: bool = True) -> None:
    """Mean return against frames, SF's and ours, one panel per env count: the mean over seeds, and the
    min-max band where there are several; with `reference`, the scenario's band from REFERENCES."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from asyncrl.evaluation.curves import spread

    fig, axes = plt.subplots(1, len(rows), figsize=(5 * len(rows), 3.6), squeeze=False)
    for ax, (n, runs) in zip(axes[0], rows, strict=True):
        for name, key, points_of in (("Sample Factory 2.1.1", "sf", sf_points), ("asyncrl", "ours", our_points)):
            curves = [p for p in (points_of(r[key]) for r in runs) if p is not None]
            if not curves:
                continue
            fps = _mean([r[key].get("fps_mean_overall" if key == "sf" else "fps_after_startup") for r in runs])
            label = f"{name} ({_num(fps)} frames/s{f', {len(curves)} seeds' if len(curves) > 1 else ''})"
            band = spread([c[0] for c in curves], [c[1] for c in curves]) if len(curves) > 1 else None
            if band is None:
                (line,) = ax.plot(*curves[0], label=label)
            else:
                grid, mean, low, high = band
                (line,) = ax.plot(grid, mean, label=label)
                ax.fill_between(grid, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
            # SF restarts its 100-episode window on a resume, so its curve dips there: mark them, not hide them.
            resumes = [f for r in runs for f in r[key].get("resumes", ())] if key == "sf" else []
            for i, resumed_at in enumerate(resumes):
                ax.axvline(resumed_at, color=line.get_color(), linestyle=":", linewidth=0.8,
                           label="Sample Factory resumed (its window restarts)" if i == 0 else None)
        if reference and env in REFERENCES:
            low, high = REFERENCES[env]
            # A card range of one value (my_way_home) would be a band of zero height: widen it to a visible line.
            ax.axhspan(low, high + 1e-3 * max(abs(high), 1.0), color="0.5", alpha=0.35, linewidth=0,
                       label="Sample Factory at 500M frames (model cards, paper seeds)")
        ax.set_title(f"{env}, {n} envs")
        ax.set_xlabel("frames")
        ax.set_ylabel("mean return, last 100 episodes")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def _mean(xs: list[float | None]) -> float | None:
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def _band(xs: list[float | None], fmt: str = ",.0f") -> str:
    """The mean and, over several seeds, ``(min..max)``; a seed without the figure makes it n/a."""
    if not xs or any(x is None for x in xs):
        return "n/a"
    if len(xs) == 1:
        return _num(xs[0], fmt)
    return f"{_num(_mean(xs), fmt)} ({_num(min(xs), fmt)}..{_num(max(xs), fmt)})"


def _times(cell: str) -> str:
    """A ratio cell: ``1.35x``, or n/a where a system did not run."""
    return cell if cell == "n/a" else f"{cell}x"


def _gib(n: float | None) -> str:
    return "n/a" if not n else f"{n / 2**30:.2f}"


def _num(x: float | None, fmt: str = ",.0f") -> str:
    return "n/a" if x is None else format(x, fmt)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="doom_basic", help="a VizDoom scenario both systems know by this name")
    parser.add_argument("--envs", type=int, nargs="+", default=[8], help="total envs (split over 2 processes)")
    parser.add_argument("--curves", type=Path, default=None, help="write both learning curves to this PNG")
    parser.add_argument("--keep", type=Path, default=None, help="keep both systems' runs and logs here")
    parser.add_argument("--frames", type=int, default=400_000, help="frames per run, both systems")
    parser.add_argument("--sf-batched", action="store_true", help="SF's --batched_sampling=True")
    parser.add_argument("--sf-huge-pages", action="store_true",
                        help="give SF's torch the huge pages asyncrl sets for itself (THP_MEM_ALLOC_ENABLE=1)")
    parser.add_argument("--samplers", type=int, default=1, help="asyncrl's samplers (the recipe's layout: 1)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="per run, seconds")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="one run per system per seed")
    parser.add_argument("--levels", type=float, nargs="*", default=None,
                        help="returns to report frames-to-reach for (default: the scenario's, see LEVELS)")
    parser.add_argument("--record", action="store_true", help="append the table to benchmarks/RESULTS.md")
    parser.add_argument("--without-sf", action="store_true",
                        help="asyncrl only, for scenarios Sample Factory 2.1.1 has no spec for (take_cover, "
                             "predict_position); SF's columns read n/a")
    parser.add_argument("--reference", action=argparse.BooleanOptionalAction, default=True,
                        help="draw the scenario's 500M-frame band (REFERENCES) on the curves; --no-reference "
                             "where a short budget's curves would be squeezed under it")
    parser.add_argument("ours", nargs="*", help="extra asyncrl overrides, after --")
    args = parser.parse_args()
    if any(n % WORKERS or n % args.samplers for n in args.envs):
        parser.error(f"--envs must be multiples of {WORKERS} (SF's workers) and of --samplers")

    from asyncrl.config.loader import load_config

    batch = load_config([*recipe(args.env), *args.ours]).algo.batch_size  # the recipe's; SF gets the same
    levels = args.levels if args.levels is not None else LEVELS.get(args.env, ())
    keep = args.keep or (Path(tempfile.mkdtemp(prefix="vs_sf_")) if args.curves or levels else None)
    rows = []
    for n in args.envs:
        runs = []
        for seed in args.seeds:
            tag = f"{n}envs" + ("" if args.seeds == [0] else f"_seed{seed}")
            sf = {}
            if not args.without_sf:
                sf = run_sample_factory(env=args.env, num_workers=WORKERS, envs_per_worker=n // WORKERS,
                                        frames=args.frames, batch_size=batch, batched_sampling=args.sf_batched,
                                        huge_pages=args.sf_huge_pages, timeout_s=args.timeout,
                                        extra_args=[f"--seed={seed}"],
                                        experiment_dir=None if keep is None else keep / f"sf_{tag}")
                print(f"SF {n} envs seed {seed}: "
                      f"{json.dumps({k: v for k, v in sf.items() if k not in ('log_tail', 'curve')})}", flush=True)
            run_dir = None if keep is None else keep / f"asyncrl_{tag}"
            ours = run_ours(args.env, n, args.samplers, args.frames, [f"seed={seed}", *args.ours], args.timeout,
                            run_dir=run_dir)
            ours["run_dir"] = None if run_dir is None else str(run_dir)
            print(f"asyncrl {n} envs seed {seed}: {json.dumps(ours)}", flush=True)
            runs.append({"seed": seed, "sf": sf, "ours": ours})
        rows.append((n, runs))

    seeds = " ".join(map(str, args.seeds))
    table = [f"{args.env}, frames per run: {args.frames:,}, seeds {seeds} (each figure: mean (min..max) over "
             f"seeds). Both systems: conv+FC512+GRU512 on 3x72x128, rollout "
             f"32, batch {batch}, CPU only. SF: {WORKERS} workers x envs/{WORKERS}, "
             f"{'with' if args.sf_batched else 'without'} batched sampling, "
             f"{'with' if args.sf_huge_pages else 'without'} huge pages (THP_MEM_ALLOC_ENABLE). "
             f"asyncrl: `{' '.join(recipe(args.env))}`, "
             f"{args.samplers} sampler(s) x envs/{args.samplers}, extra overrides: {' '.join(args.ours) or 'none'}.",
             "",
             "| envs | SF frames/s (after start-up / whole) | asyncrl frames/s (after start-up / whole) | ratio | "
             "peak PSS GiB SF / asyncrl | peak RSS GiB SF / asyncrl | return (last 100, scenario reward scale) SF / asyncrl |",
             "|---|---|---|---|---|---|---|"]
    for n, runs in rows:
        sf, ours = [r["sf"] for r in runs], [r["ours"] for r in runs]
        ratio = [o["fps_after_startup"] / f["fps_mean_overall"] if o["fps_after_startup"] and f.get("fps_mean_overall")
                 else None for f, o in zip(sf, ours, strict=True)]
        table.append(
            f"| {n} | {_band([f.get('fps_mean_overall') for f in sf])} / {_band([f.get('fps_wall') for f in sf])} | "
            f"{_band([o['fps_after_startup'] for o in ours])} / {_band([o['fps_wall'] for o in ours])} | "
            f"{_times(_band(ratio, '.2f'))} | "
            f"{_gib(_mean([f.get('peak_pss_bytes') for f in sf]))} / {_gib(_mean([o['peak_pss_bytes'] for o in ours]))} | "
            f"{_gib(_mean([f.get('peak_rss_bytes') for f in sf]))} / {_gib(_mean([o['peak_rss_bytes'] for o in ours]))} | "
            f"{_band([f.get('reward_last') for f in sf], '.2f')} / {_band([o['reward_last'] for o in ours], '.2f')} |")
    table.append("")
    if levels or (keep is not None and not args.without_sf):
        table += ["Frames at which the mean return (last 100 episodes) first reaches each level, per seed "
                  f"({seeds}; never: not within the budget):", "",
                  "| envs | level | SF | SF mean | asyncrl | asyncrl mean |", "|---|---|---|---|---|---|"]
        for n, runs in rows:
            # The question a side by side asks last: when does each reach where Sample Factory ends on the mean?
            sf_final = _mean([r["sf"].get("reward_last") for r in runs])
            named = [(f"{level:g}", level) for level in levels]
            if sf_final is not None:
                named.append((f"SF's final mean, {sf_final:.2f}", sf_final))
            curves = {"sf": [sf_points(r["sf"]) for r in runs], "ours": [our_points(r["ours"]) for r in runs]}
            for name, level in named:
                sf_at, our_at = ([frames_to_reach(c, level) for c in curves[key]] for key in ("sf", "ours"))
                # n/a: the system has no curve (did not run); never: its curve stays under the level.
                cells = [", ".join("n/a" if c is None else "never" if f is None else f"{f:,.0f}"
                                   for c, f in zip(curves[key], at, strict=True))
                         for key, at in (("sf", sf_at), ("ours", our_at))]
                table.append(f"| {n} | {name} | {cells[0]} | {_band(sf_at)} | {cells[1]} | {_band(our_at)} |")
        table.append("")
    table += [f"- asyncrl, {n} envs, seed {r['seed']}, where the time went: {r['ours']['time_breakdown']}"
              for n, runs in rows for r in runs]
    if args.curves:
        draw_curves(rows, args.env, args.curves, args.reference)
        table += ["", f"Learning curves: `{args.curves}`."]
    print("\n".join(table))
    if args.record:
        what = ("asyncrl alone (--without-sf)" if args.without_sf
                else "side by side, asyncrl vs Sample Factory 2.1.1")
        append(f"{args.env} {what}, {args.frames:,} frames per run, seeds {seeds}", "\n".join(table))


if __name__ == "__main__":
    main()
