"""Trajectory chunks waiting for their policy's learner, oldest first (no Ray here).

Each entry is one policy's part of one collection: a ``Trajectory`` in the serial runtime, an object-store ref
to it in the Ray runtime; this class never looks inside. A learner is handed whole chunks of its own policy
only, ``batch_size`` transitions or a little more.
"""

from __future__ import annotations

from typing import Any


class TrainingQueue:
    def __init__(self, batch_size: int, policy_ids: tuple[int, ...] = (0,)):
        self.batch_size = batch_size
        self.collected_steps = 0  # agent steps added since this queue was made: a runtime's own progress
        self._chunks: dict[int, list[tuple[Any, int]]] = {pid: [] for pid in policy_ids}

    def add(self, policy_id: int, chunk: Any, steps: int) -> None:
        self._chunks[policy_id].append((chunk, steps))
        self.collected_steps += steps

    def buffered_steps(self, policy_id: int) -> int:
        return sum(steps for _, steps in self._chunks[policy_id])

    def next_batch(self, policy_id: int) -> list[Any] | None:
        """Whole chunks, oldest first, until ``batch_size`` transitions; None while too few are buffered."""
        if self.buffered_steps(policy_id) < self.batch_size:
            return None
        chunks, taken, steps = self._chunks[policy_id], [], 0
        while steps < self.batch_size:
            chunk, n = chunks.pop(0)
            taken.append(chunk)
            steps += n
        return taken
