"""The runtime contract: what the trainer and the population driver call, whichever runtime moves the data.

``SerialRuntime`` (every component in one process) and ``RayRuntime`` (actors on a machine or a cluster)
implement it. A runtime owns its samplers, learners, inference and evaluator and the trajectories in between;
the trainer sees only what one ``poll`` reports, and asks for states to checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from asyncrl.config.schema import Config
from asyncrl.data import Weights
from asyncrl.env_api.spaces import EnvSpaces
from asyncrl.sampling.sampler import CollectMeta


@dataclass
class Events:
    """What a runtime reports from one poll: collections finished, learner steps done, evaluations back."""

    collected: list[CollectMeta] = field(default_factory=list)
    trained: list[tuple[int, dict[str, float]]] = field(default_factory=list)  # (policy_id, metrics)
    # (metrics, a call that fetches the weights they were measured with) of finished evaluations
    evaluated: list[tuple[dict, Callable[[], Weights]]] = field(default_factory=list)


class Runtime(Protocol):
    cfg: Config  # the run's config with what the machine decided (precision, inference) resolved
    spaces: EnvSpaces
    device: str  # where the learners run
    hardware: str  # one line: what was decided for this machine, and why

    def poll(self) -> Events:
        """Move the data for a while (up to about a second) and report what finished."""

    @property
    def env_steps(self) -> int:
        """Agent steps this runtime collected since it started."""

    def layout(self) -> str: ...

    # -- evaluation --

    def start_evaluation(self, env_steps: int) -> bool:
        """Start evaluating ``eval.policy``'s latest weights; False while one still runs (or none is set up)."""

    def finish_evaluation(self, timeout: float) -> list[tuple[dict, Callable[[], Weights]]]:
        """The evaluation still running at the end, waited for up to ``timeout`` seconds."""

    # -- population (PBT, opponent pool) --

    def copy_policy(self, source: int, target: int) -> None: ...

    def set_hyperparameters(self, policy: int, values: dict[str, float]) -> None: ...

    def set_reward_shaping(self, policy: int, coeffs: dict) -> None: ...

    def reward_shaping(self) -> dict | None:
        """The env's initial shaping coefficients, or None if it has none."""

    def weights(self, policy: int) -> Weights: ...

    def set_opponents(self, snapshots: dict[int, Weights], dropped: list[int]) -> None: ...

    # -- checkpoints and the end --

    def learner_states(self) -> dict[int, dict]: ...

    def component_times(self) -> dict[str, dict[str, float]]:
        """Seconds by activity of the components that do not report with their results."""

    def shutdown(self) -> None: ...
