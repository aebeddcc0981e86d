"""What the agent sees, as video frames: image observations directly, else the env's own rendering."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np

from asyncrl.evaluation.cli_args import UsageError


def image_key(obs_space: gym.spaces.Dict) -> str | None:
    """The observation key to film: a CHW uint8 Box (``obs`` first, else the first in sorted order)."""
    keys = [k for k, s in obs_space.spaces.items()
            if isinstance(s, gym.spaces.Box) and len(s.shape) == 3 and s.dtype == np.uint8]
    if not keys:
        return None
    return "obs" if "obs" in keys else sorted(keys)[0]


def chw_to_frame(x: np.ndarray) -> np.ndarray:
    """CHW uint8 -> HWC RGB. One channel is grey; more than three (stacked frames) shows the last one."""
    x = np.asarray(x)
    c = x.shape[0]
    hwc = np.transpose(x if c == 3 else x[-1:], (1, 2, 0))
    return np.repeat(hwc, 3, axis=2) if hwc.shape[2] == 1 else hwc


def _even(frame: np.ndarray) -> np.ndarray:
    """H.264 in yuv420p needs even sizes: pad with one black row or column (never resize)."""
    h, w = frame.shape[:2]
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0))) if (h % 2 or w % 2) else frame


class VideoWriter:
    """An MP4 written frame by frame (imageio's ffmpeg plugin), so long evaluations stay out of memory."""

    def __init__(self, path: Path, fps: float):
        import imageio.v2 as imageio

        self.path = path
        self.frames = 0
        self._writer = imageio.get_writer(str(path), format="FFMPEG", mode="I", fps=fps, codec="libx264",
                                          macro_block_size=2, ffmpeg_log_level="error")

    def add(self, frame: np.ndarray | None) -> None:
        if frame is None:
            raise UsageError("video=true but env.render() returned no frame: the env factory must pass "
                             "env.kwargs.render_mode='rgb_array' to the env (gymnasium's make does)")
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise UsageError(f"video=true needs RGB uint8 frames [H, W, 3], the env gave "
                             f"{frame.dtype} {tuple(frame.shape)}")
        self._writer.append_data(_even(frame))
        self.frames += 1

    def close(self) -> None:
        self._writer.close()
