"""What each throughput lever contributes on doom_basic: the trainer run once per configuration.

    python benchmarks/doom_levers.py [--frames 300000] [--baseline-rev REV] [--no-sf] [--record]

One configuration after the other (never two at once), each for the same frames, measured by the trainer
itself (frames/s after start-up) with its end-of-run time breakdown. Sample Factory 2.1.1 (2 workers x 4
envs, the same 8 envs) runs first as the yardstick, so every row also reads as a ratio measured in the same
invocation. `--baseline-rev REV` also runs the trainer of an older revision (a temporary git worktree, with that
revision's own `experiment=doom_basic` recipe): the "before" of this table.

The cumulative rows start from the old recipe's settings on the current code and add one lever each; the
last block changes one setting of the current recipe at a time.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _record import append  # noqa: E402
from sample_factory import run_sample_factory  # noqa: E402
from vs_sample_factory import REPO, run_trainer  # noqa: E402

RECIPE = ["experiment=doom_basic"]
OLD = [*RECIPE, "runtime.num_samplers=2", "runtime.num_envs=4", "runtime.env_groups=2", "runtime.learner_threads=2",
       "runtime.precision=fp32", "runtime.pin_cores=false"]

# (label, overrides): cumulative from the old recipe's settings to the current recipe ...
CUMULATIVE = [
    ("old recipe settings: 2 samplers x 4 envs, 2 env groups, fp32, 2 learner threads, unpinned", OLD),
    ("+ one env group per sampler (inference batch 4, not 2)", [*OLD, "runtime.env_groups=1"]),
    ("+ one learner thread", [*OLD, "runtime.env_groups=1", "runtime.learner_threads=1"]),
    ("+ precision auto (bfloat16 learner autocast and inference weights where the CPU has it natively)",
     [*OLD, "runtime.env_groups=1", "runtime.learner_threads=1", "runtime.precision=auto"]),
    ("+ 1 sampler x 8 envs pinned to a core, learner on the other = the recipe", RECIPE),
]
# ... then one change at a time from the recipe.
ONE_CHANGE = [
    ("recipe, float32", [*RECIPE, "runtime.precision=fp32"]),
    ("recipe, unpinned", [*RECIPE, "runtime.pin_cores=false"]),
    ("recipe, 2 learner threads", [*RECIPE, "runtime.learner_threads=2"]),
    ("recipe, 2 samplers x 4 envs (both pinned to the sampler core)", [*RECIPE, "runtime.num_samplers=2",
                                                                       "runtime.num_envs=4"]),
    ("recipe, remote batched inference (2 env groups)", [*RECIPE, "runtime.inference=remote"]),
]


@contextlib.contextmanager
def worktree(rev: str):
    with tempfile.TemporaryDirectory(prefix="asyncrl_rev_") as tmp:
        path = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(path), rev], check=True,
                       capture_output=True)
        # The installed asyncrl_envs is this checkout's envs/; the revision's own is its folder, found first
        # from the worktree (the run's working directory) under its installed name.
        if not (path / "asyncrl_envs").exists() and (path / "envs").is_dir():
            (path / "asyncrl_envs").symlink_to("envs")
        try:
            yield path
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(path)], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=300_000)
    parser.add_argument("--baseline-rev", default=None, help="also run this git revision's recipe (the 'before')")
    parser.add_argument("--no-sf", action="store_true", help="skip the Sample Factory yardstick")
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--record", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = parser.parse_args()

    sf_fps = None
    rows: list[tuple[str, dict]] = []
    if not args.no_sf:
        sf = run_sample_factory(env="doom_basic", num_workers=2, envs_per_worker=4, frames=args.frames,
                                timeout_s=args.timeout)
        sf_fps = sf.get("fps_mean_overall")
        print(f"Sample Factory 2 x 4 envs: {sf_fps}", flush=True)
        rows.append(("Sample Factory 2.1.1, 2 workers x 4 envs", {
            "fps_after_startup": sf_fps, "reward_last": sf.get("reward_last"), "time_breakdown": None}))
    if args.baseline_rev:
        with worktree(args.baseline_rev) as tree:
            result = run_trainer(RECIPE, args.frames, args.timeout, repo=tree)
        rows.append((f"asyncrl at {args.baseline_rev}, its own doom_basic recipe", result))
        print(rows[-1], flush=True)
    for label, overrides in CUMULATIVE + ONE_CHANGE:
        rows.append((label, run_trainer(overrides, args.frames, args.timeout)))
        print(label, rows[-1][1], flush=True)

    table = [f"Frames per configuration: {args.frames:,}; frames/s after start-up; ratio to Sample Factory's "
             "frames/s in this invocation.", "",
             "| configuration | frames/s | x SF | return (last 100) | where the time went |", "|---|---|---|---|---|"]
    for label, r in rows:
        fps = r.get("fps_after_startup")
        ratio = f"{fps / sf_fps:.2f}x" if fps and sf_fps else "n/a"
        ret = r.get("reward_last")
        table.append(f"| {label} | {fps:,.0f} | {ratio} | {'n/a' if ret is None else f'{ret:.2f}'} | "
                     f"{r.get('time_breakdown') or ''} |" if fps else f"| {label} | failed | | | |")
    print("\n".join(table))
    if args.record:
        append(f"doom_basic throughput levers, {args.frames:,} frames per configuration", "\n".join(table))


if __name__ == "__main__":
    main()
