"""``python -m asyncrl.export run=PATH [format=torchscript|onnx] [out=FILE] [policy=0]``

Writes a standalone policy that needs only torch (TorchScript) or an ONNX runtime: observations in,
greedy action and value out (and the recurrent state, for a GRU/LSTM core), observation normalization
included. ``run`` is a run directory (its latest valid checkpoint) or a checkpoint file; the default
``out`` is ``policy.pt`` / ``policy.onnx`` in the run directory (or beside the checkpoint file).
See ``asyncrl/evaluation/standalone.py`` for the inputs and outputs. ONNX needs ``pip install onnx``.

Bad input ends with one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

from asyncrl.evaluation.cli_args import MISSING, UsageError, check, parse_kv, run_tool

USAGE = "usage: python -m asyncrl.export run=RUN_DIR|CHECKPOINT [format=torchscript|onnx] [out=FILE] [policy=0]"
SUFFIX = {"torchscript": ".pt", "onnx": ".onnx"}


@dataclass
class ExportArgs:
    run: str = MISSING  # a run directory (its latest valid checkpoint) or a checkpoint file
    format: str = "torchscript"  # torchscript | onnx
    out: str = ""  # empty: policy.pt / policy.onnx in the run directory (or beside the checkpoint)
    policy: int = 0

    def __post_init__(self) -> None:
        check(self.format in SUFFIX, "format", self.format, "expected format=torchscript or format=onnx")
        check(self.policy >= 0, "policy", self.policy, "expected an integer >= 0")


def export(args: ExportArgs) -> Path:
    """Write the policy ``args`` describes; returns the file written."""
    from asyncrl.evaluation import standalone
    from asyncrl.evaluation.loading import load_policy

    # Checked before loading anything: a missing package is the likeliest failure.
    if args.format == "onnx" and importlib.util.find_spec("onnx") is None:
        raise UsageError("format=onnx needs the onnx package: pip install onnx (or use format=torchscript)")
    policy = load_policy(args.run, args.policy)
    out = Path(args.out) if args.out else policy.out_dir / f"policy{SUFFIX[args.format]}"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"out={args.out} cannot be written ({e.strerror}); choose a writable path") from e
    source = {"checkpoint": str(policy.checkpoint), "env_steps": policy.env_steps, "policy": policy.policy_id,
              "env": {"name": policy.cfg.env.name, "id": policy.cfg.env.id}}
    if args.format == "torchscript":
        standalone.to_torchscript(policy.model, out, source)
    else:
        standalone.to_onnx(policy.model, out, source)
    return out


def main(argv: list[str] | None = None) -> int:
    return run_tool("asyncrl.export", __doc__, argv, lambda a: f"wrote {export(parse_kv(a, ExportArgs, USAGE))}")


if __name__ == "__main__":
    sys.exit(main())
