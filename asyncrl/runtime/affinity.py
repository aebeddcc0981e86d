"""Pinning processes to CPU cores (Linux): the learner on cores of its own, samplers on the others.

On a small machine the learner's backward pass and the samplers' simulators fight for the same cores, and
every ``make_action`` hand-off between a sampler and its VizDoom engine that crosses cores costs a cache and
a wake-up. Pinned, each sampler and the engines it starts share one core, and the learner keeps its own.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def usable_cores() -> list[int]:
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))


def learner_cores(learner_threads: int) -> set[int]:
    """The last ``learner_threads`` usable cores, leaving at least one core to the samplers where possible."""
    cores = usable_cores()
    n = min(learner_threads, max(1, len(cores) - 1))
    return set(cores[-n:])


def sampler_core(index: int, learner_threads: int) -> int:
    """Sampler ``index``'s core: round robin over the cores the learner does not take (all of them on a
    one-core machine)."""
    taken = learner_cores(learner_threads)
    free = [c for c in usable_cores() if c not in taken] or usable_cores()
    return free[index % len(free)]


def pin_process(cores: set[int]) -> bool:
    """Pin every thread of this process to ``cores``; processes it starts later inherit the affinity (a
    VizDoom engine, forked by the sampler, then runs beside it). Returns False where the OS offers no
    affinity (macOS) or refuses it."""
    if not hasattr(os, "sched_setaffinity"):
        return False
    try:
        for task in os.listdir("/proc/self/task"):
            try:
                os.sched_setaffinity(int(task), cores)
            except ProcessLookupError:
                continue  # a thread that ended meanwhile
    except OSError as e:
        log.warning("could not pin process %d to cores %s: %s", os.getpid(), sorted(cores), e)
        return False
    return True
