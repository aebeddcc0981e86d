"""Sample Factory 2.1.1 on VizDoom, in its own virtual environment, measured from outside.

    python benchmarks/sample_factory.py --env doom_basic --num-workers 2 --envs-per-worker 4 --frames 200000
    python benchmarks/sample_factory.py --install-only

SF 2.1.1 pins numpy<2 and gymnasium<1, so it cannot share our venv: `ensure_sf_venv` builds `.sf_venv/`
(torch 2.13.0 CPU first, from the wheel on this machine's disk, then `sample-factory[vizdoom]==2.1.1`).
`run_sample_factory` runs `sf_examples.vizdoom.train_vizdoom` as a subprocess in its own session, samples the
peak RSS of its whole process tree (proc_tree.py), parses its log and prints one JSON dict.

Traps (2.1.1): `--train_for_seconds` is never enforced, so a run stops on `--train_for_env_steps`, which
counts frames (agent steps x frameskip 4) and overshoots by up to a batch or so per policy; an existing
experiment folder is resumed unless `--restart_behavior=overwrite`; `--batched_sampling=True` crashes on
doom_battle. VizDoom engines outlive their controller: the whole session is killed after every run.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from proc_tree import PeakTreeMemory  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SF_VERSION = "2.1.1"
# Installed in this order: torch first so that SF's `torch>=1.9` is already met by the local CPU wheel and pip
# never fetches a CUDA build. numpy/gymnasium caps repeat SF's own pins so the resolver cannot drift.
SF_REQUIREMENTS = (
    ("torch==2.13.0",),
    (f"sample-factory[vizdoom]=={SF_VERSION}", "numpy<2", "gymnasium<1", "torch==2.13.0"),
)
MARKER = ".asyncrl_sf_installed"


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_sf_venv(path: str | os.PathLike = ".sf_venv", quiet: bool = True) -> Path:
    """Create the Sample Factory venv at `path` (relative to the repo root) unless its marker says it is done.

    Returns the venv directory. The marker holds the requirement list: a changed list reinstalls.
    """
    venv = Path(path)
    if not venv.is_absolute():
        venv = REPO / venv
    marker = venv / MARKER
    wanted = json.dumps(SF_REQUIREMENTS)
    if marker.exists() and marker.read_text() == wanted and _venv_python(venv).exists():
        return venv
    t0 = time.monotonic()
    if not _venv_python(venv).exists():
        # The base interpreter of whatever venv runs us: same Python (3.11) as our own venv.
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
    pip = [str(_venv_python(venv)), "-m", "pip", "install", "--progress-bar", "off"] + (
        ["-q"] if quiet else []
    )
    for group in SF_REQUIREMENTS:
        subprocess.run([*pip, *group], check=True)
    marker.write_text(wanted)
    print(f"sample-factory venv ready at {venv} in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    return venv


def sf_versions(venv: Path) -> dict[str, str]:
    """Installed versions of the packages that matter, read inside the SF venv."""
    code = (
        "import json, importlib.metadata as m\n"
        "names = ['sample-factory', 'torch', 'numpy', 'gymnasium', 'vizdoom', 'signal-slot-mp', 'faster-fifo']\n"
        "print(json.dumps({n: m.version(n) for n in names}))"
    )
    out = subprocess.run([str(_venv_python(venv)), "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


# ---- log parsing -------------------------------------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]\[\d+\]")
_FPS = re.compile(
    r"Fps is \(10 sec: ([\d.na]+), 60 sec: ([\d.na]+), 300 sec: ([\d.na]+)\)\. Total num frames: (\d+)"
)
_REWARD = re.compile(r"Avg episode reward: \[\(0, '(-?[\d.]+|nan)'\)")
_COLLECTED = re.compile(r"Collected \{0: (\d+)\}, FPS: ([\d.]+)")
_RESUMED = re.compile(r"Loaded experiment state at .*env_steps=(\d+)")


def _stamp(line: str) -> float | None:
    m = _STAMP.match(line)
    if not m:
        return None
    return dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()


def _float(s: str) -> float:
    return float("nan") if s == "nan" else float(s)


def parse_sf_log(lines: list[str]) -> dict:
    """Figures from SF's log lines (stdout or sf_log.txt; colour codes are stripped).

    - fps_reported_last: SF's own 10-s window in its last report.
    - fps_steady: slope of frames against the log's own timestamps over the reports from the first with
      frames > 0 to the last: training throughput without startup (spawn, env init) or shutdown.
    - fps_sf_summary: SF's closing "Collected ..., FPS" = frames / its main loop, which includes startup.
    - frames: the final frame count ("Collected"), else the last report's.
    - reward_last: the last "Avg episode reward" (mean of the last `stats_avg`=100 episodes, env reward
      after the env's own scaling: x0.01 on doom_basic).
    - curve: [(frames, reward)] of every "Avg episode reward", at the frame count of the report before it.
    - resumed_at_frames: the frame count a resumed run's learner loaded from its checkpoint (absent if none).
    """
    reports: list[tuple[float, int, float]] = []  # (time, total frames, 10-s fps)
    rewards: list[float] = []
    curve: list[tuple[int, float]] = []
    out: dict = {}
    for raw in lines:
        line = _ANSI.sub("", raw).rstrip()
        if m := _FPS.search(line):
            t = _stamp(line)
            if t is not None:
                reports.append((t, int(m.group(4)), _float(m.group(1))))
        elif m := _REWARD.search(line):
            rewards.append(_float(m.group(1)))
            if reports:
                curve.append((reports[-1][1], rewards[-1]))
        elif m := _COLLECTED.search(line):
            out["frames"] = int(m.group(1))
            out["fps_sf_summary"] = float(m.group(2))
        elif m := _RESUMED.search(line):
            out["resumed_at_frames"] = int(m.group(1))
    if reports:
        out["fps_reported_last"] = reports[-1][2]
        out.setdefault("frames", reports[-1][1])
        started = [r for r in reports if r[1] > 0]
        if len(started) >= 2 and started[-1][0] > started[0][0]:
            # Least-squares slope of frames over time: the learner's count moves in whole batches
            # (4-8k frames), so a two-point difference would carry that step as noise.
            ts = [r[0] - started[0][0] for r in started]
            fs = [r[1] for r in started]
            tm, fm = sum(ts) / len(ts), sum(fs) / len(fs)
            out["fps_steady"] = sum((t - tm) * (f - fm) for t, f in zip(ts, fs, strict=True)) / sum(
                (t - tm) ** 2 for t in ts
            )
            out["steady_window_s"] = ts[-1]
    out["num_reports"] = len(reports)
    out["reward_last"] = rewards[-1] if rewards else None
    out["curve"] = curve
    return out


# ---- running ------------------------------------------------------------------------------------------------


def sf_command(
    venv: Path,
    env: str,
    num_workers: int,
    envs_per_worker: int,
    frames: int,
    batch_size: int,
    rollout: int,
    batched_sampling: bool,
    experiment: str,
    train_dir: Path,
    extra_args: tuple[str, ...] = (),
    resume: bool = False,
) -> list[str]:
    return [
        str(_venv_python(venv)), "-m", "sf_examples.vizdoom.train_vizdoom",
        f"--env={env}", "--device=cpu", f"--train_for_env_steps={frames}",
        f"--num_workers={num_workers}", f"--num_envs_per_worker={envs_per_worker}",
        f"--batch_size={batch_size}", f"--rollout={rollout}", f"--batched_sampling={batched_sampling}",
        f"--experiment={experiment}", f"--train_dir={train_dir}",
        "--with_wandb=False", f"--restart_behavior={'resume' if resume else 'overwrite'}",
        *extra_args,
    ]  # fmt: skip


def _interrupt(proc: subprocess.Popen, grace_s: float = 20.0) -> None:
    """Ctrl-C to SF's main process only: its runner stops the components, saves, and logs "Collected ...,
    FPS" (the stand-in for the `--train_for_seconds` that 2.1.1 ignores). SIGKILL if it hangs."""
    try:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        _kill_session(proc)
        proc.wait()


def _kill_session(proc: subprocess.Popen) -> None:
    """SIGKILL the run's whole session: SF's workers and any VizDoom engine that outlived them."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def run_sample_factory(
    env: str = "doom_basic",
    num_workers: int = 2,
    envs_per_worker: int = 4,
    frames: int = 200_000,
    batch_size: int = 1024,
    rollout: int = 32,
    batched_sampling: bool = False,
    extra_args: tuple[str, ...] | list[str] = (),
    experiment_dir: str | os.PathLike | None = None,
    venv: str | os.PathLike = ".sf_venv",
    timeout_s: float | None = None,
    interval_s: float = 0.5,
    huge_pages: bool = False,
    resume: bool = False,
) -> dict:
    """Run one SF training to `frames` frames; return its figures (see `parse_sf_log`) plus
    `fps_mean_overall` (= fps_steady when the log allows it, else frames / wall_s), `peak_rss_bytes`
    (summed RSS of the whole tree, sampled every `interval_s`; counts shared memory once per process),
    `peak_pss_bytes` (the same with shared pages split: the physical total), `cpu_by_role` (CPU seconds per
    process role, see proc_tree.process_role), `wall_s` (spawn to exit,
    startup included), `fps_wall` (frames / wall_s),
    `returncode`, `timed_out`, `cmd`, `log` (the captured output, kept in the experiment dir).
    `experiment_dir=None` uses a temporary directory that is removed afterwards. `resume`: continue the
    experiment in `experiment_dir` from its latest checkpoint (SF restores its frame count), appending to
    the kept log; the figures returned are this invocation's. `huge_pages`: give SF's torch the transparent huge
    pages asyncrl turns on for itself (`THP_MEM_ALLOC_ENABLE=1`); off, SF runs as its users run it, whatever this
    process (which imported asyncrl, and so has the variable set) holds."""
    venv_path = ensure_sf_venv(venv)
    with tempfile.TemporaryDirectory(prefix="sf_bench_") as tmp:
        train_dir = Path(experiment_dir) if experiment_dir is not None else Path(tmp)
        train_dir.mkdir(parents=True, exist_ok=True)
        experiment = f"{env}_w{num_workers}x{envs_per_worker}{'_batched' if batched_sampling else ''}"
        cmd = sf_command(venv_path, env, num_workers, envs_per_worker, frames, batch_size, rollout,
                         batched_sampling, experiment, train_dir, tuple(extra_args), resume)  # fmt: skip
        log_path = train_dir / f"{experiment}.stdout.txt"
        lines: list[str] = []
        # SF 2.1.1 calls torch.load() without weights_only, and torch >= 2.6 then refuses SF's own checkpoints
        # (numpy scalars in them): SF logs "Could not load from checkpoint" and silently trains from scratch.
        child_env = dict(os.environ, PYTHONUNBUFFERED="1", WANDB_MODE="disabled", TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1",
                         THP_MEM_ALLOC_ENABLE="1" if huge_pages else "0")
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace", env=child_env, start_new_session=True)  # fmt: skip

        def pump() -> None:
            with open(log_path, "a" if resume else "w") as f:
                for line in proc.stdout:  # type: ignore[union-attr]
                    lines.append(line)
                    f.write(line)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        timed_out = False
        try:
            with PeakTreeMemory(proc.pid, interval_s=interval_s, track_pss=True) as mem:
                try:
                    proc.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    timed_out = True
                    _interrupt(proc)
        finally:
            wall_s = time.monotonic() - t0
            _kill_session(proc)  # stray engines and workers, whether it ended well or not
            reader.join(timeout=10)
        result = parse_sf_log(lines)
        if result["num_reports"] == 0:  # stdout lost? sf_log.txt has the same lines
            sf_log = train_dir / experiment / "sf_log.txt"
            if sf_log.exists():
                result = parse_sf_log(sf_log.read_text(errors="replace").splitlines())
        frames_done = result.get("frames")
        result.update(
            fps_mean_overall=result.get("fps_steady", (frames_done / wall_s) if frames_done else None),
            fps_wall=(frames_done / wall_s) if frames_done else None,
            peak_rss_bytes=mem.peak_bytes,
            peak_pss_bytes=mem.peak_pss_bytes,
            peak_num_procs=mem.peak_num_procs,
            cpu_by_role=mem.cpu_by_role(),
            wall_s=wall_s,
            returncode=proc.returncode,
            timed_out=timed_out,
            cmd=" ".join(cmd),
            log=str(log_path) if experiment_dir is not None else None,
        )
        if proc.returncode != 0 or timed_out:
            result["log_tail"] = "".join(lines[-30:])
        return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="doom_basic")
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--envs-per-worker", type=int, default=4)
    parser.add_argument("--frames", type=int, default=200_000, help="--train_for_env_steps (frames)")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--rollout", type=int, default=32)
    parser.add_argument("--batched-sampling", action="store_true")
    parser.add_argument(
        "--experiment-dir", default=None, help="keep SF's train_dir here (default: a temp dir)"
    )
    parser.add_argument("--venv", default=".sf_venv")
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="Ctrl-C the run after this many seconds (then SIGKILL after 20 s)",
    )
    parser.add_argument("--install-only", action="store_true", help="build the venv, print versions, exit")
    parser.add_argument("extra", nargs="*", help="extra SF flags after --, e.g. -- --seed=1")
    args = parser.parse_args()

    venv = ensure_sf_venv(args.venv, quiet=False)
    if args.install_only:
        print(json.dumps(sf_versions(venv), indent=2))
        return
    result = run_sample_factory(
        env=args.env, num_workers=args.num_workers, envs_per_worker=args.envs_per_worker, frames=args.frames,
        batch_size=args.batch_size, rollout=args.rollout, batched_sampling=args.batched_sampling,
        extra_args=args.extra, experiment_dir=args.experiment_dir, venv=args.venv, timeout_s=args.timeout,
    )  # fmt: skip
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
