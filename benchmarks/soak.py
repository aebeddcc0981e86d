"""Does a long run stay flat? RSS of every process and Ray's object store, sampled during a doom_basic run.

    python benchmarks/soak.py [--minutes 30] [--every 20] [--kill-every 180] [--record] [-- key=value ...]

Runs `experiment=doom_basic` (or the overrides after `--`) in this process for `--minutes` and, from a
background thread, samples every `--every` seconds: the RSS of each process of the run (this driver, Ray's
daemons and workers, the VizDoom engines, named by role), and the object store's used and spilled bytes
(read from the raylet, as `ray memory --stats-only` does). After a warm-up (the first fifth of the run: models,
buffers and caches fill up), each series is fitted with a line; its slope is reported as a percentage of
the series' mean per hour. The line is Theil-Sen's (the median of the slopes between every two samples), not
least squares: a checkpoint briefly holds the learner's state in the driver (+65 MiB for a few seconds every
two minutes), and a least-squares line tilts by where those spikes fall among 90 samples. The issue's bar:
under 5% per hour, and nothing spilled. `--samples FILE` keeps every sample as JSON.

Each process is measured twice: RSS, and its private memory (RssAnon in /proc/PID/status), which is what a
leak grows. They differ by file pages and shared memory: a process that reads objects from Ray's object
store (the driver fetching the learner's state for every checkpoint) maps store pages, and its RSS grows as
new objects land at offsets it has not touched before, up to the store's high-water mark. Those pages are
the object store's memory (reported on its own line), counted in the reader's RSS without costing any.

With faults (`--kill-every S`): every S seconds one process of the run, drawn at random among its samplers,
learners, inference and evaluator actors and VizDoom engines, is SIGKILLed. The run must still complete, every
checkpoint must load, train.log must be one continuous log naming every death, and once the run is over no
Ray or VizDoom process of it may be left. A killed process's memory series ends with it and its successor's
starts: those are not fitted per process, and each role's total is fitted instead.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import signal
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _record import append  # noqa: E402
from proc_tree import private_bytes, tree_processes  # noqa: E402

ROLES = [  # (role, pattern on the command line), first match wins
    ("sampler", r"ray::SamplerActor"), ("learner", r"ray::LearnerActor"), ("inference", r"ray::InferenceActor"),
    ("evaluator", r"ray::EvaluatorActor"), ("vizdoom engine", r"/vizdoom\b|^vizdoom"), ("raylet", r"\braylet\b"),
    ("gcs_server", r"gcs_server"), ("ray worker (idle)", r"default_worker\.py|ray::IDLE"),
    ("ray agents", r"dashboard|runtime_env|log_monitor|monitor\.py"), ("engine watchdog", r"ASYNCRL_VIZDOOM_OWNER"),
]
RAY_DAEMONS = (r"\braylet\b", r"gcs_server", r"ray/dashboard", r"default_worker\.py", r"ray::")


def role_of(proc: psutil.Process, driver: int) -> str:
    if proc.pid == driver:
        return "driver"
    try:
        cmdline = " ".join(proc.cmdline())
    except psutil.Error:
        return "gone"
    return next((role for role, pattern in ROLES if re.search(pattern, cmdline)), "other")


def object_store_bytes() -> tuple[int, int]:
    """(used, spilled) bytes of the object store, summed over the cluster."""
    import ray
    from ray._private.internal_api import get_memory_info_reply, get_state_from_address

    reply = get_memory_info_reply(get_state_from_address(ray.get_runtime_context().gcs_address))
    return int(reply.store_stats.object_store_bytes_used), int(reply.store_stats.spilled_bytes_total)


KILLABLE = ("sampler", "learner", "inference", "evaluator", "vizdoom engine")


class Killer(threading.Thread):
    """SIGKILLs a random component of the run every ``every_s`` seconds (the first one after a full period)."""

    def __init__(self, every_s: float, seed: int):
        super().__init__(daemon=True)
        self.every_s, self.stop, self.rng = every_s, threading.Event(), random.Random(seed)
        self.kills: list[tuple[float, str, int]] = []  # (t, role, pid)

    def run(self) -> None:
        start, me = time.monotonic(), psutil.Process().pid
        while not self.stop.wait(self.every_s):
            victims = [(role, proc.pid) for proc in tree_processes(me, RAY_DAEMONS)
                       if (role := role_of(proc, me)) in KILLABLE]
            if not victims:
                continue
            role = self.rng.choice(sorted({r for r, _ in victims}))
            pid = self.rng.choice([p for r, p in victims if r == role])
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                self.kills.append((time.monotonic() - start, role, pid))
                print(f"soak: killed the {role} {pid} at {self.kills[-1][0]:.0f} s", flush=True)


def leftovers(driver: int) -> list[str]:
    """Ray and VizDoom processes still alive after the run: its orphans (none of them is the driver's child
    any more, so they are looked for by name, among processes started after this script)."""
    me = psutil.Process(driver)
    left = []
    for proc in psutil.process_iter(["pid", "cmdline", "create_time"]):
        cmdline = " ".join(proc.info["cmdline"] or ())
        if proc.info["create_time"] >= me.create_time() and proc.pid != driver and re.search(
                r"\braylet\b|gcs_server|ray::|default_worker\.py|/vizdoom\b|ASYNCRL_VIZDOOM_OWNER", cmdline):
            left.append(f"{proc.pid} {cmdline[:80]}")
    return left


def check_faulty_run(run_dir: Path, summary: dict, kills: list[tuple[float, str, int]]) -> list[str]:
    """What a faulty soak must show; the list of what did not hold (empty: all held)."""
    from asyncrl.outputs.checkpoint import CheckpointError, load_checkpoint_file

    problems = []
    if summary["status"] != "completed":
        problems.append(f"status {summary['status']}")
    for path in sorted((run_dir / "checkpoints").glob("*.pt")):
        try:
            load_checkpoint_file(path)
        except CheckpointError as e:
            problems.append(f"checkpoint {path.name} does not load: {e}")
    text = (run_dir / "train.log").read_text()
    if text.count("run dir ") != 1 or "Traceback" in text or "the run stalled" in text:
        problems.append("train.log is not one continuous, healthy log")
    named = {"sampler": r"sampler \d+ (died|could not be restarted)", "learner": r"learner \d+ died",
             "inference": r"inference actor.*(restarted|replaced)", "evaluator": r"evaluator died",
             "vizdoom engine": r"vizdoom engine .* died|engine .*(died|replaced)"}
    for role in {r for _, r, _ in kills}:
        if not re.search(named[role], text):
            problems.append(f"no {role} death in train.log")
    return problems


class Sampler(threading.Thread):
    def __init__(self, every_s: float):
        super().__init__(daemon=True)
        self.every_s, self.stop = every_s, threading.Event()
        # (t, {process key: (rss, private)}, store used, spilled)
        self.samples: list[tuple[float, dict[str, tuple[int, int]], int, int]] = []

    def run(self) -> None:
        import ray

        start, me = time.monotonic(), psutil.Process().pid
        while not self.stop.wait(self.every_s):
            if not ray.is_initialized():
                continue
            rss: dict[str, int] = defaultdict(int)
            private: dict[str, int] = defaultdict(int)
            engines = 0
            for proc in tree_processes(me, RAY_DAEMONS):
                try:
                    # Each process on its own line (role and pid); idle workers pooled, engines averaged (their
                    # number changes when one is restarted).
                    role = role_of(proc, me)
                    key = role if role in ("vizdoom engine", "ray worker (idle)", "gone") else f"{role} {proc.pid}"
                    rss[key] += proc.memory_info().rss
                    private[key] += private_bytes(proc.pid)
                    engines += role == "vizdoom engine"
                except (psutil.Error, OSError):
                    continue
            if engines:
                rss["vizdoom engine (mean of all)"] = rss.pop("vizdoom engine") // engines
                private["vizdoom engine (mean of all)"] = private.pop("vizdoom engine") // engines
            try:
                used, spilled = object_store_bytes()
            except Exception:  # the run is starting or stopping
                continue
            both = {key: (rss[key], private[key]) for key in rss}
            self.samples.append((time.monotonic() - start, both, used, spilled))


def growth_per_hour(ts: np.ndarray, ys: np.ndarray) -> float:
    """Theil-Sen slope (median of all pairwise slopes: robust to brief spikes) as a percentage of the mean,
    per hour."""
    if len(ts) < 3 or ys.mean() <= 0:
        return float("nan")
    i, j = np.triu_indices(len(ts), k=1)
    dt = ts[j] - ts[i]
    slope = np.median((ys[j] - ys[i])[dt > 0] / dt[dt > 0])
    return float(slope * 3600 / ys.mean() * 100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--every", type=float, default=20.0, help="seconds between samples")
    parser.add_argument("--record", action="store_true", help="append the table to benchmarks/RESULTS.md")
    parser.add_argument("--samples", type=Path, default=None, help="write every sample to this JSON file")
    parser.add_argument("--kill-every", type=float, default=0.0,
                        help="SIGKILL a random component every this many seconds (0: no faults)")
    parser.add_argument("--seed", type=int, default=0, help="the random draw of the faults")
    parser.add_argument("overrides", nargs="*", help="trainer overrides after --")
    args = parser.parse_args()

    from asyncrl.config.loader import load_config
    from asyncrl.training.trainer import train

    sampler = Sampler(args.every)
    sampler.start()
    killer = Killer(args.kill_every, args.seed) if args.kill_every else None
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="asyncrl_soak_") as run_dir:
        overrides = args.overrides or ["experiment=doom_basic"]
        cfg = load_config([*overrides, f"run_dir={run_dir}", "restart_behavior=overwrite",
                           f"train.env_steps={10**12}", f"train.max_wall_s={args.minutes * 60}",
                           "logging.wandb=disabled"])
        if killer:
            killer.start()
        summary = train(cfg)
        if killer:
            killer.stop.set()
            problems = check_faulty_run(Path(run_dir), summary, killer.kills)
    sampler.stop.set()
    sampler.join()
    if killer:
        time.sleep(5)  # ray.shutdown() returns once its processes are told to stop
        problems += [f"left behind: {p}" for p in leftovers(psutil.Process().pid)]

    samples = sampler.samples
    if args.samples:
        args.samples.write_text(json.dumps([{"t": t, "rss_private": procs, "store": used, "spilled": spilled}
                                            for t, procs, used, spilled in samples]))
    warm = [s for s in samples if s[0] >= samples[-1][0] / 5] if samples else []
    ts = np.array([s[0] for s in warm])
    rows = []
    for key in sorted({k for s in warm for k in s[1]}):
        series = [(s[0], *s[1][key]) for s in warm if key in s[1]]
        if len(series) < len(warm) // 2:
            continue  # a process that came and went (a restarted worker): not a series
        t = np.array([p[0] for p in series])
        rss, own = (np.array([p[i] for p in series], dtype=np.float64) for i in (1, 2))
        late = t >= (t[0] + t[-1]) / 2
        rows.append((key, rss[0] / 2**20, rss[-1] / 2**20, growth_per_hour(t, rss), own[0] / 2**20, own[-1] / 2**20,
                     growth_per_hour(t, own), growth_per_hour(t[late], own[late])))
    store = np.array([s[2] for s in warm], dtype=np.float64)
    spilled = max((s[3] for s in samples), default=0)
    table = [f"{summary['frames']:,} frames in {summary['wall_s']:.0f} s ({summary['fps']:,.0f} frames/s), "
             f"{len(samples)} samples every {args.every:g} s, fitted after the first {ts[0] if len(ts) else 0:.0f} s; "
             f"overrides: {' '.join(overrides)}.", "",
             "| process | RSS MiB after warm-up -> end | RSS growth %/hour | private MiB after warm-up -> end | "
             "private growth %/hour | private growth %/hour, last half |",
             "|---|---|---|---|---|---|"]
    table += [f"| {k} | {a:,.1f} -> {b:,.1f} | {g:+.1f} | {c:,.1f} -> {d:,.1f} | {h:+.1f} | {i:+.1f} |"
              for k, a, b, g, c, d, h, i in rows]
    table += ["", f"Object store used: mean {store.mean() / 2**20:,.0f} MiB, max {store.max() / 2**20:,.0f} MiB, "
              f"growth {growth_per_hour(ts, store):+.1f} %/hour (last half: "
              f"{growth_per_hour(ts[ts >= (ts[0] + ts[-1]) / 2], store[ts >= (ts[0] + ts[-1]) / 2]):+.1f}); "
              f"spilled to disk: {spilled / 2**20:,.0f} MiB."
              if len(store) else "Object store: no samples."]
    if killer:
        # Per role: a killed process's successor continues its role's series.
        roles = sorted({k.rsplit(" ", 1)[0] for s in warm for k in s[1] if k.rsplit(" ", 1)[-1].isdigit()})
        table += ["", "| role (all its processes) | private MiB after warm-up -> end | private growth %/hour |",
                  "|---|---|---|"]
        for role in roles:
            own = np.array([sum(v[1] for k, v in s[1].items() if k.rsplit(" ", 1)[0] == role) for s in warm],
                           dtype=np.float64)
            table.append(f"| {role} | {own[0] / 2**20:,.1f} -> {own[-1] / 2**20:,.1f} | "
                         f"{growth_per_hour(ts, own):+.1f} |")
        kills = ", ".join(f"{role} at {t:.0f} s" for t, role, _ in killer.kills)
        table += ["", f"Faults (seed {args.seed}, one every {args.kill_every:g} s): {kills or 'none'}.",
                  "Checks (completed, every checkpoint loads, one train.log naming every death, no process left): "
                  + ("all held." if not problems else "FAILED: " + "; ".join(problems))]
    print("\n".join(table))
    if args.record:
        faults = f", a component killed every {args.kill_every:g} s" if killer else ""
        append(f"Soak: {args.minutes:g}-minute run{faults}, process memory and object store", "\n".join(table))
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
