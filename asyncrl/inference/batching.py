"""Batches requests from many samplers into one forward pass per policy.

Requests that arrive while a batch is being computed wait in the event loop's queue and form the next
batch, so the batch size adapts to the load without a timer.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np

from asyncrl.data import ObsDict, PolicyOutput
from asyncrl.inference.policy_runner import PolicyRunner


def split_output(out: PolicyOutput, sizes: list[int]) -> list[PolicyOutput]:
    bounds = np.cumsum([0, *sizes])
    return [
        PolicyOutput(out.actions[a:b], out.logp[a:b], out.values[a:b],
                     None if out.rnn_state is None else out.rnn_state[a:b], out.version)
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]


class BatchingInference:
    def __init__(self, runner: PolicyRunner):
        self.runner = runner
        self._queue: list[tuple[int, ObsDict, np.ndarray | None, asyncio.Future]] = []
        self._flush_scheduled = False
        self.batches = 0
        self.requests = 0
        self.samples = 0
        self.busy_s = 0.0
        self.started = time.perf_counter()

    async def infer(self, policy_id: int, obs: ObsDict, rnn_state: np.ndarray | None) -> PolicyOutput:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.append((policy_id, obs, rnn_state, future))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        queue, self._queue, self._flush_scheduled = self._queue, [], False
        for pid in sorted({q[0] for q in queue}):
            start = time.perf_counter()  # gathering the batch counts as busy time too
            requests = [q for q in queue if q[0] == pid]
            sizes = [len(next(iter(q[1].values()))) for q in requests]
            obs = {k: np.concatenate([q[1][k] for q in requests]) for k in requests[0][1]}
            states = [q[2] for q in requests]
            state = None if states[0] is None else np.concatenate(states)
            try:
                outs = split_output(self.runner.infer(pid, obs, state), sizes)
            except Exception as e:  # every waiting sampler learns what went wrong
                for q in requests:
                    q[3].set_exception(e)
                continue
            finally:
                self.busy_s += time.perf_counter() - start
            for q, out in zip(requests, outs, strict=True):
                q[3].set_result(out)
            self.batches += 1
            self.requests += len(requests)
            self.samples += sum(sizes)

    def timing(self) -> dict[str, float]:
        """Seconds spent in forward passes and waiting for requests since the server started."""
        busy = self.busy_s
        return {"infer": busy, "idle": max(0.0, time.perf_counter() - self.started - busy)}
