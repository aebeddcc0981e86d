"""Precision decided from what the machine computes natively: no test here depends on this machine's CPU."""

import os
import subprocess
import sys

import pytest

from asyncrl.config.loader import load_config
from asyncrl.hardware import (
    NATIVE_BF16_ENV,
    PrecisionError,
    native_bf16,
    resolve_inference,
    resolve_precision,
)
from asyncrl.runtime.machine import precision_on, with_hardware_defaults


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_auto_takes_bf16_only_where_it_is_native(device):
    assert resolve_precision("auto", device, native=True).value == "bf16"
    assert resolve_precision("auto", device, native=False).value == "fp32"
    assert "no native bfloat16" in resolve_precision("auto", device, native=False).reason


def test_explicit_fp32_is_kept_and_explicit_bf16_is_kept_where_native():
    assert resolve_precision("fp32", "cpu", native=True).value == "fp32"
    assert resolve_precision("bf16", "cpu", native=True).value == "bf16"


def test_explicit_bf16_where_it_would_be_emulated_is_refused_in_one_line():
    with pytest.raises(PrecisionError) as e:
        resolve_precision("bf16", "cpu", native=False)
    message = str(e.value)
    assert "\n" not in message and "AVX512_BF16" in message and "runtime.precision=auto" in message


@pytest.mark.parametrize("forced", ["0", "1"])
def test_the_cpu_check_can_be_overridden(monkeypatch, forced):
    monkeypatch.setenv(NATIVE_BF16_ENV, forced)
    assert native_bf16("cpu") is (forced == "1")


@pytest.mark.parametrize("native", ["0", "1"])
def test_every_doom_recipe_resolves_to_what_the_cpu_does_natively(monkeypatch, native):
    monkeypatch.setenv(NATIVE_BF16_ENV, native)
    for recipe in ("doom_basic", "doom_defend_the_center", "doom_health_gathering"):
        cfg = load_config([f"experiment={recipe}"])
        assert cfg.runtime.precision == "auto"
        resolved, line = with_hardware_defaults(cfg, "cpu")
        assert resolved.runtime.precision == ("bf16" if native == "1" else "fp32")
        assert line.startswith(f"precision {resolved.runtime.precision} (auto: this CPU")


def test_cpu_policy_copies_beside_a_bf16_gpu_learner_run_fp32_without_native_cpu_bf16(monkeypatch):
    monkeypatch.setenv(NATIVE_BF16_ENV, "0")
    cfg = load_config(["env=cartpole", "runtime.precision=bf16"])
    assert precision_on(cfg, "cpu") == "fp32"
    assert precision_on(cfg, "cuda") == "bf16"


def test_inference_is_batched_on_a_gpu_and_a_copy_per_sampler_on_cpus():
    assert resolve_inference("auto", "cuda")[0] == "remote"
    assert resolve_inference("auto", "cpu")[0] == "local"
    assert resolve_inference("remote", "cpu") == ("remote", "runtime.inference=remote")
    cfg = load_config(["env=cartpole"])
    assert cfg.runtime.inference == "auto"
    assert with_hardware_defaults(cfg, "cpu")[0].runtime.inference == "local"


_HUGE_PAGES_PROBE = """
import os
import asyncrl, torch

def huge_kb():
    with open("/proc/self/smaps_rollup") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("AnonHugePages"))

before = huge_kb()
x = torch.ones(64 << 18)  # 64 MB, first-touched
print(os.environ["THP_MEM_ALLOC_ENABLE"], huge_kb() - before)
"""


def _thp_mode() -> str | None:
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return f.read().split("[")[1].split("]")[0]
    except (OSError, IndexError):
        return None


def _probe_huge_pages(setting: str | None) -> tuple[str, int]:
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    if setting is not None:
        env["THP_MEM_ALLOC_ENABLE"] = setting
    out = subprocess.run([sys.executable, "-c", _HUGE_PAGES_PROBE], env=env, capture_output=True, text=True, check=True)
    value, huge_kb = out.stdout.split()
    return value, int(huge_kb)


def test_importing_asyncrl_backs_torchs_large_allocations_with_huge_pages_unless_the_user_said_no():
    on, off = _probe_huge_pages(None), _probe_huge_pages("0")
    assert on[0] == "1" and off[0] == "0"  # set before torch's first allocation; a user's own setting wins
    if _thp_mode() == "madvise":  # "always" backs both alike, "never" neither: nothing to tell apart there
        assert on[1] >= 2048 and off[1] < on[1], (on, off)
