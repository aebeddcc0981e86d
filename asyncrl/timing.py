"""Where a component's time goes: seconds per named activity, handed out and reset by ``take``.

The sampler and the learner time themselves with this; the driver adds their reports up (``TimeBreakdown``)
and prints, at the end of a run, what fraction of each component's time went to what.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager


class Stopwatch:
    """``with watch("env"): ...`` adds the block's wall time to "env"; ``take()`` returns and resets."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, activity: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[activity] += time.perf_counter() - start

    def add(self, activity: str, seconds: float) -> None:
        self.seconds[activity] += seconds

    def take(self) -> dict[str, float]:
        out = dict(self.seconds)
        self.seconds.clear()
        return out


class TimeBreakdown:
    """Seconds per activity of each kind of component (all samplers together, all learners together)."""

    def __init__(self) -> None:
        self.seconds: dict[str, dict[str, float]] = {}

    def add(self, component: str, seconds: dict[str, float]) -> None:
        mine = self.seconds.setdefault(component, defaultdict(float))
        for activity, s in seconds.items():
            mine[activity] += s

    def fractions(self) -> dict[str, dict[str, float]]:
        """Each component's activities as fractions of its own accounted time."""
        out = {}
        for component, activities in self.seconds.items():
            total = sum(activities.values())
            if total > 0:
                out[component] = {a: s / total for a, s in sorted(activities.items(), key=lambda kv: -kv[1])}
        return out

    def metrics(self) -> dict[str, float]:
        """``perf/<component>_<activity>_frac`` for TensorBoard and wandb."""
        return {f"perf/{c}_{a}_frac": f for c, acts in self.fractions().items() for a, f in acts.items()}

    def line(self) -> str:
        """One line: ``samplers: env 41%, inference 44%, ... | learner: train 96%, wait 4%``."""
        return " | ".join(f"{c}: " + ", ".join(f"{a} {f:.0%}" for a, f in acts.items())
                          for c, acts in self.fractions().items())
