"""What the machine decides at start: the learner's device, its precision and where inference runs (no Ray here).

The rules themselves (what is native, what is faster where) are in ``asyncrl/hardware.py``; this applies them to a
config, once, and says why in one line.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from asyncrl.config.schema import Config
from asyncrl.hardware import native_bf16, resolve_inference, resolve_precision


class DeviceError(Exception):
    """A device was asked for that this machine does not have."""


def resolve_device(device: str, cluster_gpus: float | None = None) -> str:
    """``auto``: cuda where there is a GPU (this machine's, or any node's of the cluster the run joined)."""
    has_gpu = torch.cuda.is_available() if cluster_gpus is None else cluster_gpus > 0
    if device == "auto":
        return "cuda" if has_gpu else "cpu"
    if device == "cuda" and not has_gpu:
        where = "torch sees no CUDA device" if cluster_gpus is None else "no node of the cluster has a GPU"
        raise DeviceError(f"runtime.device=cuda but {where}; use runtime.device=cpu or auto")
    return device


def with_hardware_defaults(cfg: Config, device: str) -> tuple[Config, str]:
    """``cfg`` with what depends on the machine decided for a learner on ``device`` (``runtime.precision`` and
    ``runtime.inference`` resolved when ``auto``), and one line that says what and why."""
    precision = resolve_precision(cfg.runtime.precision, device, native_bf16(device))
    inference, why_inference = resolve_inference(cfg.runtime.inference, device)
    runtime = replace(cfg.runtime, precision=precision.value, inference=inference)
    return replace(cfg, runtime=runtime), (f"precision {precision.value} ({precision.reason}), inference "
                                           f"{inference} ({why_inference})")


def precision_on(cfg: Config, device: str) -> str:
    """The precision of a policy copy on ``device``: a CPU copy (a sampler's, or CPU inference beside a GPU
    learner) runs in float32 where this CPU would only emulate bfloat16."""
    if cfg.runtime.precision == "bf16" and device == "cpu" and not native_bf16("cpu"):
        return "fp32"
    return cfg.runtime.precision
