"""Shared by the benchmark scripts: describe the machine and append a result block to RESULTS.md."""

from __future__ import annotations

import datetime as dt
import os
import platform
import shlex
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def machine() -> str:
    cpu = platform.processor() or "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    except Exception:
        gpu = "no GPU"
    return (f"{os.cpu_count()} cores ({cpu}; {cpu_kind()}), {gpu}, {platform.system()} {platform.machine()}"
            + "".join(f", {k}={os.environ[k]}" for k in ISA_OVERRIDES if k in os.environ))


# The variables that make an AVX-512 box behave like an AVX2-only one (and the project's own bf16 check say no).
ISA_OVERRIDES = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "ASYNCRL_NATIVE_BF16")


def cpu_kind() -> str:
    """The CPU features the project's speed depends on: AVX-512 and native bfloat16."""
    from asyncrl.hardware import NATIVE_BF16_CPU_FLAGS, cpu_flags

    flags = cpu_flags()
    avx512 = "AVX-512" if "avx512f" in flags else "AVX2, no AVX-512" if "avx2" in flags else "no AVX2"
    bf16 = "native bf16" if any(f in flags for f in NATIVE_BF16_CPU_FLAGS) else "no native bf16"
    return f"{avx512}, {bf16}"


def command() -> str:
    return " ".join(shlex.quote(a) for a in ["python", *sys.argv])


def append(title: str, table: str) -> None:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = f"\n### {title} — {now}\n\n- command: `{command()}`\n- machine: {machine()}\n\n{table}\n"
    with open(RESULTS, "a") as f:
        f.write(block)
    print(f"appended to {RESULTS}")
