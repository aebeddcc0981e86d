"""The console line: frames, FPS, mean return, policy lag, and a progress bar with ETA."""

from __future__ import annotations


def format_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def human(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:.0f}"


def progress_line(env_steps: int, budget: int, frameskip: int, fps: float, mean_return: float | None,
                  lag: tuple[float, float, float] | None, elapsed_s: float = 0.0, max_wall_s: float = 0.0,
                  width: int = 20) -> str:
    """With a wall-time limit (`train.max_wall_s`) the run ends at whichever limit comes first, so the bar
    shows the further one along and the ETA the nearer one."""
    frac = min(1.0, env_steps / budget)
    remaining = (budget - env_steps) * frameskip / fps if fps > 0 else float("inf")
    if max_wall_s:
        frac = max(frac, min(1.0, elapsed_s / max_wall_s))
        remaining = min(remaining, max_wall_s - elapsed_s)
    bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
    eta = format_duration(remaining) if remaining != float("inf") else "?"
    ret = "n/a" if mean_return is None else f"{mean_return:.2f}"
    lag_s = "n/a" if lag is None else f"{lag[0]:.0f}/{lag[1]:.1f}/{lag[2]:.0f}"
    return (f"[{bar}] {frac:6.1%} frames {human(env_steps * frameskip)} | fps {human(fps)} | "
            f"return {ret} | lag min/mean/max {lag_s} | eta {eta}")
