"""Whether the run as a whole still makes env steps (no Ray here).

Heartbeats (``heartbeat.py``) watch each component that has work in flight. They cannot see a run whose
components are all alive and waiting on something that will never come: a sampler Ray keeps restarting
without success, or one that was never handed work again. This watch looks at the one number that matters,
the env steps: when they stop advancing for ``timeout_s`` (``startup_factor`` times that before the first
step), the runtime is told to recover; if they still do not advance for another ``timeout_s`` after a
recovery, the run has failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import Enum


class RunStalled(Exception):
    """Env steps stopped advancing and recovering the components did not bring them back."""


class Verdict(Enum):
    OK = "ok"
    RECOVER = "recover"  # stalled: replace what is stuck
    FAILED = "failed"  # stalled again after a recovery


class StallWatch:
    def __init__(self, timeout_s: float, startup_factor: float = 5.0, clock: Callable[[], float] = time.monotonic):
        """``timeout_s`` 0 turns the watch off."""
        self.timeout_s, self.startup_factor, self.clock = timeout_s, startup_factor, clock
        self.steps: int | None = None
        self.since = clock()  # when the steps last advanced (or the watch started)
        self.started = False  # the steps advanced at least once
        self.recovered_at: float | None = None  # the recovery of the current stall, if one was made
        self.recoveries = 0

    def limit(self) -> float:
        return self.timeout_s * (1.0 if self.started else self.startup_factor)

    def quiet_s(self) -> float:
        return self.clock() - self.since

    def since_recovery_s(self) -> float:
        """Seconds since the current stall's recovery (0 when none was made)."""
        return 0.0 if self.recovered_at is None else self.clock() - self.recovered_at

    def handled(self) -> None:
        """A hung component was just named and restarted: the quiet stretch is explained, and its clock starts
        again (deaths do not count here: a sampler that dies at every start would never stall)."""
        if self.recovered_at is None:
            self.since = self.clock()

    def observe(self, steps: int, defer: bool = False) -> Verdict:
        """``defer``: a component's own heartbeat may still name it (it was handed work less than ``timeout_s``
        ago), so a stall is not declared yet; a failure after a recovery is never deferred."""
        now = self.clock()
        if self.steps is None:
            self.steps = steps
        if steps != self.steps:
            self.steps, self.since, self.recovered_at = steps, now, None
            self.started = True
            return Verdict.OK
        if self.timeout_s <= 0:
            return Verdict.OK
        if self.recovered_at is None:
            if now - self.since <= self.limit() or defer:
                return Verdict.OK
            self.recovered_at = now
            self.recoveries += 1
            return Verdict.RECOVER
        # Recovered components start again (engines, models): they get the start-up allowance.
        return Verdict.FAILED if now - self.recovered_at > self.timeout_s * self.startup_factor else Verdict.OK
