"""Helpers of the tools that look at a finished run: ``asyncrl.eval``, ``asyncrl.plot``, ``asyncrl.export``.

Plain modules (no Ray): argument parsing, loading a policy from a run or a checkpoint, playing episodes,
confidence intervals, video frames, TensorBoard curves, and the standalone (exportable) policy module.
"""
