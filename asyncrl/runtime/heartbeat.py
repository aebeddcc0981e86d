"""Which components have had work in flight for too long without delivering (no Ray here).

A component is *busy* from the moment work is handed to it until it delivers a result and has nothing
more in flight. A busy component whose last progress is older than ``timeout_s`` (``startup_factor`` times
that until its first result after a (re)start: engines and models take a while to come up) is *hung*: the
runtime reports it by name and restarts it. A component that is idle because nobody gave it work (the
learner's backpressure holding a sampler back, say) is never hung.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass


@dataclass
class _Clock:
    since: float | None = None  # when the current quiet stretch began; None while idle
    started: bool = False  # delivered at least once since its last (re)start


class Heartbeats:
    def __init__(self, timeout_s: float, startup_factor: float = 5.0, clock: Callable[[], float] = time.monotonic):
        """``timeout_s`` 0 turns detection off."""
        self.timeout_s, self.startup_factor, self.clock = timeout_s, startup_factor, clock
        self._clocks: dict[Hashable, _Clock] = {}

    def busy(self, name: Hashable) -> None:
        """Work was handed to ``name``; its clock runs from now unless it already runs."""
        c = self._clocks.setdefault(name, _Clock())
        if c.since is None:
            c.since = self.clock()

    def progress(self, name: Hashable, still_busy: bool) -> None:
        """``name`` delivered a result; ``still_busy``: it has more work in flight."""
        c = self._clocks.setdefault(name, _Clock())
        c.started = True
        c.since = self.clock() if still_busy else None

    def restarted(self, name: Hashable, still_busy: bool = True) -> None:
        """``name`` was (or is being) restarted: it gets the start-up allowance again."""
        c = self._clocks.setdefault(name, _Clock())
        c.started = False
        c.since = self.clock() if still_busy else None

    def forget(self, name: Hashable) -> None:
        """``name`` is gone for good (its node left the cluster)."""
        self._clocks.pop(name, None)

    def limit(self, name: Hashable) -> float:
        c = self._clocks.get(name, _Clock())
        return self.timeout_s * (1.0 if c.started else self.startup_factor)

    def judging(self) -> bool:
        """Whether some busy component is still inside ``timeout_s`` of its last progress, so that its own
        clock, not the run's, should name it if it is stuck."""
        now = self.clock()
        return self.timeout_s > 0 and any(c.since is not None and now - c.since <= self.timeout_s
                                          for c in self._clocks.values())

    def hung(self) -> list[tuple[Hashable, float]]:
        """``(name, seconds without progress)`` of every busy component past its limit."""
        if self.timeout_s <= 0:
            return []
        now = self.clock()
        return [(name, now - c.since) for name, c in self._clocks.items()
                if c.since is not None and now - c.since > self.limit(name)]
