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
    return f"{os.cpu_count()} cores ({cpu}), {gpu}, {platform.system()} {platform.machine()}"


def command() -> str:
    return " ".join(shlex.quote(a) for a in ["python", *sys.argv])


def append(title: str, table: str) -> None:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = f"\n### {title} — {now}\n\n- command: `{command()}`\n- machine: {machine()}\n\n{table}\n"
    with open(RESULTS, "a") as f:
        f.write(block)
    print(f"appended to {RESULTS}")
