"""What this machine computes natively, and the precision that follows from it (no Ray here).

bfloat16 pays only where the hardware does it: an x86 CPU with AVX512_BF16 or AMX, or a CUDA GPU that
supports it. Elsewhere torch emulates it, and the doom_basic recipe trained at 200-400 frames/s in bfloat16
against ~2.1k in float32 on an AVX2-only CPU (benchmarks/RESULTS.md). So ``runtime.precision=auto`` decides
at start, and an explicit ``bf16`` where it would be emulated is refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

NATIVE_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
# "0" or "1" overrides the CPU check (not a GPU's): to try the AVX2 path on an AVX-512 box (with ONEDNN_MAX_CPU_ISA=AVX2
# ATEN_CPU_CAPABILITY=avx2), or to test both answers on any box.
NATIVE_BF16_ENV = "ASYNCRL_NATIVE_BF16"


class PrecisionError(Exception):
    """A precision was asked for that this machine would only emulate."""


def cpu_flags() -> set[str]:
    """The x86 feature flags of this machine's CPU (empty where /proc/cpuinfo has none)."""
    try:
        with open("/proc/cpuinfo") as f:
            line = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return set()
    return set(line.partition(":")[2].split())


def native_bf16(device: str) -> bool:
    """Whether ``device`` (``cpu`` or ``cuda``) computes bfloat16 natively."""
    if device == "cuda":
        return torch.cuda.is_bf16_supported()
    forced = os.environ.get(NATIVE_BF16_ENV)
    if forced in ("0", "1"):
        return forced == "1"
    return any(flag in cpu_flags() for flag in NATIVE_BF16_CPU_FLAGS)


@dataclass(frozen=True)
class Precision:
    value: str  # fp32 | bf16: what the run uses
    reason: str  # one clause for the start line


def resolve_inference(requested: str, device: str) -> tuple[str, str]:
    """``requested`` (auto | local | remote) for a learner on ``device``: (what the run uses, why). On a GPU
    machine one batched inference actor per node holds the policy on the GPU (Sample Factory's design); on CPUs
    a policy copy in each sampler was 2x faster than one batched actor on doom_basic (benchmarks/RESULTS.md)."""
    if requested != "auto":
        return requested, f"runtime.inference={requested}"
    if device == "cuda":
        return "remote", "auto: batched on the GPU, one actor per node"
    return "local", "auto: a policy copy in each sampler, no GPU"


def resolve_precision(requested: str, device: str, native: bool) -> Precision:
    """``requested`` (auto | fp32 | bf16) on ``device``, given whether it does bfloat16 natively."""
    where = "this GPU" if device == "cuda" else "this CPU"
    if requested == "fp32":
        return Precision("fp32", "runtime.precision=fp32")
    if native:
        how = "runtime.precision=bf16" if requested == "bf16" else "auto"
        return Precision("bf16", f"{how}: {where} computes bfloat16 natively")
    if requested == "bf16":
        needs = "a GPU with bfloat16 support" if device == "cuda" else "a CPU with AVX512_BF16 or AMX"
        raise PrecisionError(f"runtime.precision=bf16 but {where} has no native bfloat16 (it needs {needs}); "
                             f"emulated it trains several times slower than float32: use runtime.precision=auto "
                             f"or fp32")
    return Precision("fp32", f"auto: {where} has no native bfloat16")
