"""Peak memory of a process tree, sampled while it runs.

    with PeakTreeMemory(proc.pid, extra_patterns=(r"\\braylet\\b", r"gcs_server")) as mem:
        proc.wait()
    print(mem.peak_bytes)

The figure is the sum of RSS over the root, all its descendants and every other process whose command
line matches one of `extra_patterns` (Ray's daemons can be re-parented away from the driver, and a
VizDoom engine outlives its controller). RSS counts shared pages once per process that maps them (torch's
libraries, Ray's object store in /dev/shm, Sample Factory's shared tensors), so the sum overstates the
physical footprint; `track_pss=True` also records the peak of the summed PSS, which splits shared pages
among their users and so adds up to the real total (it reads smaps_rollup: slower per sample).
Sampling misses spikes shorter than `interval_s`. Each sample also reads every process's CPU time, so
`cpu_by_role()` says where the CPU went: seconds per role (`process_role`), up to the last sample of each process.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import psutil


def tree_processes(pid: int, extra_patterns: Iterable[str] = ()) -> list[psutil.Process]:
    """The process `pid`, its descendants and the processes whose command line matches a pattern."""
    procs: dict[int, psutil.Process] = {}
    try:
        root = psutil.Process(pid)
        procs[pid] = root
        for child in root.children(recursive=True):
            procs[child.pid] = child
    except psutil.NoSuchProcess:
        pass
    regexes = [re.compile(p) for p in extra_patterns]
    if regexes:
        me = os.getpid()
        for proc in psutil.process_iter(["cmdline"]):
            # The measuring process is never a pattern match: its own argv may name what it measures.
            if proc.pid in procs or proc.pid == me:
                continue
            cmdline = " ".join(proc.info["cmdline"] or ())
            if any(r.search(cmdline) for r in regexes):
                procs[proc.pid] = proc
    return list(procs.values())


def private_bytes(pid: int) -> int:
    """RssAnon: the process's own resident memory, without file pages and shared memory (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    return 0


def process_role(proc: psutil.Process) -> str | None:
    """What a process is, for CPU accounting: a VizDoom engine, a Ray actor by class (its process title is
    `ray::Class.method` while it runs a call, `ray::Class` between calls), a Ray daemon, or its program name;
    None if it is exiting and its name can no longer be read."""
    try:
        name = proc.name()
        argv0 = (proc.cmdline() or [""])[0]
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    if name.startswith("vizdoom"):
        return "vizdoom engines"
    if argv0.startswith("ray::"):
        return argv0.split(".")[0].split()[0]
    if name in ("raylet", "gcs_server") or "dashboard" in argv0:
        return "ray daemons"
    return name


def tree_memory(pid: int, extra_patterns: Iterable[str] = (), pss: bool = False,
                procs: list[psutil.Process] | None = None) -> tuple[int, int, int]:
    """(summed RSS bytes, summed PSS bytes or 0, number of processes) of the tree right now (of ``procs``, the
    tree as already listed, when given)."""
    rss = pss_total = n = 0
    for proc in tree_processes(pid, extra_patterns) if procs is None else procs:
        try:
            if pss:
                info = proc.memory_full_info()
                pss_total += info.pss
            else:
                info = proc.memory_info()
            rss += info.rss
            n += 1
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue  # exited between listing and reading
    return rss, pss_total, n


class PeakTreeMemory:
    """Context manager: a daemon thread samples the tree of `pid` every `interval_s` seconds.

    After (or during) the block: `peak_bytes` (summed RSS), `peak_pss_bytes` (when `track_pss`),
    `peak_num_procs`, `num_samples`. `pid=None` means this process.
    """

    def __init__(
        self,
        pid: int | None = None,
        extra_patterns: Sequence[str] = (),
        interval_s: float = 0.5,
        track_pss: bool = False,
    ) -> None:
        self.pid = os.getpid() if pid is None else pid
        self.extra_patterns = tuple(extra_patterns)
        self.interval_s = interval_s
        self.track_pss = track_pss
        self.peak_bytes = 0
        self.peak_pss_bytes = 0
        self.peak_num_procs = 0
        self.num_samples = 0
        self._cpu: dict[int, tuple[str, float]] = {}  # pid -> (role, user + system seconds at its last sample)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def sample(self) -> int:
        """Take one sample now and return its summed RSS."""
        procs = tree_processes(self.pid, self.extra_patterns)
        rss, pss, n = tree_memory(self.pid, pss=self.track_pss, procs=procs)
        cpu = {}
        for proc in procs:
            try:
                times = proc.cpu_times()
                # A Ray worker starts as `python`, idles as `ray::IDLE`, then takes its actor's title, which
                # changes with the call it runs: once an actor's class is seen, it stays the role. A process
                # that is exiting has no name left to read: it keeps the role it had.
                seen = self._cpu.get(proc.pid, ("", 0.0))[0]
                if seen.startswith("ray::") and seen != "ray::IDLE":
                    role = seen
                else:
                    role = process_role(proc) or seen or "exited"
                cpu[proc.pid] = (role, times.user + times.system)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        with self._lock:
            self._cpu.update(cpu)
            self.peak_bytes = max(self.peak_bytes, rss)
            self.peak_pss_bytes = max(self.peak_pss_bytes, pss)
            self.peak_num_procs = max(self.peak_num_procs, n)
            self.num_samples += 1
        return rss

    def cpu_by_role(self) -> dict[str, float]:
        """CPU seconds (user + system) per process role, summed over the processes sampled, largest first."""
        with self._lock:
            totals: dict[str, float] = {}
            for role, seconds in self._cpu.values():
                totals[role] = totals.get(role, 0.0) + seconds
        return dict(sorted(totals.items(), key=lambda kv: -kv[1]))

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval_s)

    def start(self) -> PeakTreeMemory:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="peak-tree-memory", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> PeakTreeMemory:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def peak_memory_of_call(
    fn: Callable[..., Any],
    *args: Any,
    extra_patterns: Sequence[str] = (),
    interval_s: float = 0.5,
    **kwargs: Any,
) -> tuple[Any, PeakTreeMemory]:
    """Run `fn(*args, **kwargs)` in this process and return (its result, the sampler of this process's tree)."""
    with PeakTreeMemory(os.getpid(), extra_patterns, interval_s) as mem:
        result = fn(*args, **kwargs)
    return result, mem


def peak_memory_of_command(
    cmd: Sequence[str], extra_patterns: Sequence[str] = (), interval_s: float = 0.5, **popen_kwargs: Any
) -> tuple[int, PeakTreeMemory]:
    """Run `cmd` to completion and return (its exit code, the sampler of its tree)."""
    proc = subprocess.Popen(list(cmd), **popen_kwargs)
    with PeakTreeMemory(proc.pid, extra_patterns, interval_s) as mem:
        rc = proc.wait()
    return rc, mem


def _main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Run a command and print the peak RSS of its process tree.")
    parser.add_argument(
        "--pattern", action="append", default=[], help="also count processes matching this regex"
    )
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    t0 = time.monotonic()
    rc, mem = peak_memory_of_command(args.cmd, args.pattern, args.interval)
    print(
        f"rc={rc} wall={time.monotonic() - t0:.1f}s peak_rss={mem.peak_bytes / 2**20:.1f} MiB "
        f"procs={mem.peak_num_procs} samples={mem.num_samples}"
    )


if __name__ == "__main__":
    _main()
