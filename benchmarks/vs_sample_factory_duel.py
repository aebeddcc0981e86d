"""The VizDoom duel with a population, asyncrl against Sample Factory 2.1.1, side by side in one invocation.

    python benchmarks/vs_sample_factory_duel.py [--frames 150000] [--policies 4] [--samplers 2] [--matches 2]
        [--sf-seconds 300] [--frameskip 2] [--repeats 1] [--keep DIR] [--record] [-- key=value ...]

Both systems self-play the 2-player duel with `--policies` policies, `--samplers` processes (SF's
rollout workers) of `--matches` matches each (2 engines a match), SF's duel model (conv 8x8/4-4x4/2-3x3/2, FC
512, GRU 512 on 3x72x128 frames plus the 23 measurements), frameskip `--frameskip` (2, the recipes'), gamma
0.995, rollout 32, batch 1024, CPU only. Frames are agent steps of both seats x frameskip; both systems count them so. asyncrl runs for
`--frames`; Sample Factory for `--sf-seconds` of wall time (then Ctrl-C), because with several policies 2.1.1
stops only when *every* policy has trained on `--train_for_env_steps` frames, and its policies' shares of the
frames differ up to 4x: a frame budget would run it several times as long. Both rates exclude start-up.

- Sample Factory: `sf_examples.vizdoom.train_vizdoom --env=doom_duel --num_policies=P`, on its own map
  (ssl2.wad, which the vizdoom wheel does not ship), without PBT (see `sf_args`: 2.1.1's crashes at start);
- asyncrl: `python -m asyncrl.train experiment=doom_duel_selfplay` (PBT on, acting after `pbt.start_after`)
  on the wheel's cig.wad map01, with the layout above (`runtime.num_samplers`, `runtime.num_envs`,
  `population.size`).

Runs alternate, SF first, never both at once; `--repeats N` runs each system N times. Printed (and with
`--record` appended to RESULTS.md): frames/s after start-up (SF: the least-squares slope of its frame reports;
ours: from the first collected chunk) and over the whole wall time, peak memory of each process tree, the CPU
seconds each system spent per 1,000 frames by process role (VizDoom engines, Ray actors by class, SF's python
processes), and where asyncrl's time went (its end-of-run line: samplers' env / inference / other, learners'
train / wait). On a machine whose cores are all busy, the CPU per frame is what sets the frames/s.
Extra `key=value` arguments after `--` go to asyncrl (a lever to measure, e.g. `-- runtime.precision=fp32`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _record import append  # noqa: E402
from sample_factory import run_sample_factory  # noqa: E402
from vs_sample_factory import _band, _gib, _mean, run_trainer  # noqa: E402

FRAMESKIP = 2  # both duel recipes
RECIPE = "experiment=doom_duel_selfplay"


def sf_args(policies: int, frameskip: int = FRAMESKIP) -> list[str]:
    """SF's doom_duel recipe (its vizdoom docs) for `policies` policies, without PBT: 2.1.1's PBT crashes at start
    from the command line (`self.cfg[param_name]` on an argparse Namespace, sample-factory issue #263, open).
    Its recipe would not mutate before 100M frames, far past any budget here, and ours does not act before its
    `pbt.start_after` either, so PBT costs neither system anything in these runs."""
    return [f"--num_policies={policies}", f"--env_frameskip={frameskip}", "--gamma=0.995"]


def our_args(policies: int, samplers: int, matches: int, frameskip: int = FRAMESKIP) -> list[str]:
    skip = [] if frameskip == FRAMESKIP else [f"env.frameskip={frameskip}"]
    return [RECIPE, f"population.size={policies}", f"runtime.num_samplers={samplers}", f"runtime.num_envs={matches}",
            *skip]


def cpu_per_kframe(run: dict) -> str:
    """The run's CPU time per 1,000 frames by process role (proc_tree.process_role), with the total."""
    cpu, frames = run.get("cpu_by_role") or {}, run.get("frames")
    if not cpu or not frames:
        return "n/a"
    parts = [f"{role} {seconds * 1000 / frames:.2f}" for role, seconds in cpu.items() if seconds * 1000 / frames >= 0.01]
    return f"total {sum(cpu.values()) * 1000 / frames:.2f} ({', '.join(parts)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=150_000, help="frames per asyncrl run")
    parser.add_argument("--sf-seconds", type=float, default=300.0, help="wall seconds per Sample Factory run")
    parser.add_argument("--policies", type=int, default=4)
    parser.add_argument("--samplers", type=int, default=2, help="SF's workers and our samplers")
    parser.add_argument("--matches", type=int, default=2, help="matches per worker / sampler")
    parser.add_argument("--frameskip", type=int, default=FRAMESKIP, help="both systems' (a lever: SF's recipe has 2)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per system, alternating")
    parser.add_argument("--timeout", type=float, default=1800.0, help="per run, seconds")
    parser.add_argument("--keep", type=Path, default=None, help="keep both systems' runs and logs here")
    parser.add_argument("--record", action="store_true", help="append the table to benchmarks/RESULTS.md")
    parser.add_argument("ours", nargs="*", help="extra asyncrl overrides, after --")
    args = parser.parse_args()

    runs = []
    for i in range(args.repeats):
        keep = None if args.keep is None else args.keep / f"run{i}"
        sf = run_sample_factory(env="doom_duel", num_workers=args.samplers, envs_per_worker=args.matches,
                                frames=10**10, batch_size=1024, rollout=32, timeout_s=args.sf_seconds,
                                extra_args=sf_args(args.policies, args.frameskip),
                                experiment_dir=None if keep is None else keep / "sf")
        print(f"SF run {i}: {json.dumps({k: v for k, v in sf.items() if k not in ('log_tail', 'curve')})}", flush=True)
        if sf.get("log_tail"):
            print(sf["log_tail"], flush=True)
        ours = run_trainer([*our_args(args.policies, args.samplers, args.matches, args.frameskip), *args.ours],
                           args.frames, args.timeout, run_dir=None if keep is None else keep / "asyncrl",
                           frameskip=args.frameskip)
        print(f"asyncrl run {i}: {json.dumps(ours)}", flush=True)
        runs.append((sf, ours))

    sf_fps = [s.get("fps_mean_overall") for s, _ in runs]
    our_fps = [o.get("fps_after_startup") for _, o in runs]
    ratio = [o / s if o and s else None for s, o in zip(sf_fps, our_fps, strict=True)]
    table = [
        f"doom_duel self-play, {args.policies} policies (PBT: see the docstring), {args.samplers} processes x {args.matches} matches "
        f"({args.samplers * args.matches * 2} engines), asyncrl {args.frames:,} frames, SF {args.sf_seconds:g} s a run, "
        f"{args.repeats} run(s) per "
        "system (each figure: mean (min..max) over runs). Both: conv+FC512+GRU512 with measurements, "
        f"frameskip {args.frameskip}, "
        "rollout 32, batch 1024, CPU only. SF on ssl2.wad, asyncrl on cig.wad map01; asyncrl: "
        f"`{' '.join(our_args(args.policies, args.samplers, args.matches, args.frameskip))}`, extra overrides: "
        f"{' '.join(args.ours) or 'none'}.",
        "",
        "| SF frames/s (after start-up / whole) | asyncrl frames/s (after start-up / whole) | ratio | "
        "peak PSS GiB SF / asyncrl | wall s SF / asyncrl |",
        "|---|---|---|---|---|",
        f"| {_band(sf_fps)} / {_band([s.get('fps_wall') for s, _ in runs])} | "
        f"{_band(our_fps)} / {_band([o.get('fps_wall') for _, o in runs])} | {_band(ratio, '.2f')}x | "
        f"{_gib(_mean([s.get('peak_pss_bytes') for s, _ in runs]))} / "
        f"{_gib(_mean([o.get('peak_pss_bytes') for _, o in runs]))} | "
        f"{_band([s.get('wall_s') for s, _ in runs])} / {_band([o.get('wall_s') for _, o in runs])} |",
        "",
        *(f"- asyncrl run {i}, where the time went: {o.get('time_breakdown')}" for i, (_, o) in enumerate(runs)),
        *(f"- run {i}, CPU seconds per 1,000 frames by process (whole run, start-up included): SF "
          f"{cpu_per_kframe(s)}; asyncrl {cpu_per_kframe(o)}" for i, (s, o) in enumerate(runs)),
        f"- asyncrl command: `{runs[0][1].get('cmd')}`",
        f"- SF command: `{runs[0][0].get('cmd')}`",
    ]
    print("\n".join(table))
    if args.record:
        append(f"doom_duel side by side, asyncrl vs Sample Factory 2.1.1, {args.policies} policies, "
               f"frameskip {args.frameskip}, {args.frames:,} frames per asyncrl run", "\n".join(table))


if __name__ == "__main__":
    main()
