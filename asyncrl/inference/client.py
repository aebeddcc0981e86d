"""How a sampler asks for actions: submit now, collect the result later.

The split lets a sampler step one group of envs while another group's request is being served. The local
client serves at submit time; the Ray runtime provides a client whose handles are object refs.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from asyncrl.data import ObsDict, PolicyOutput
from asyncrl.inference.policy_runner import PolicyRunner


class InferenceClient(Protocol):
    def submit(self, policy_id: int, obs: ObsDict, rnn_state: np.ndarray | None) -> Any: ...

    def result(self, handle: Any) -> PolicyOutput: ...


class LocalInference:
    """A policy copy inside the sampler's own process."""

    def __init__(self, runner: PolicyRunner):
        self.runner = runner

    def submit(self, policy_id: int, obs: ObsDict, rnn_state: np.ndarray | None) -> PolicyOutput:
        return self.runner.infer(policy_id, obs, rnn_state)

    def result(self, handle: PolicyOutput) -> PolicyOutput:
        return handle
