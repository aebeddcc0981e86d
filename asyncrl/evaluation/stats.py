"""Mean, standard deviation and a 95% confidence interval of the mean of a few episode returns."""

from __future__ import annotations

import math

import numpy as np

Z_975 = 1.959963984540054  # the normal distribution's 97.5% quantile


def t_quantile_975(dof: int) -> tuple[float, str]:
    """Student's t 97.5% quantile when scipy is installed, else the normal one (narrower for few episodes)."""
    try:
        from scipy.stats import t
    except ImportError:
        return Z_975, "normal approximation; install scipy for Student's t"
    return float(t.ppf(0.975, dof)), "Student's t"


def summarize(values: list[float]) -> dict:
    """``n``, ``mean``, ``std`` (sample, ddof=1; 0 for one value), ``ci95`` ``[low, high]`` of the mean
    (None for one value) and ``ci_method``."""
    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    if n == 0:
        raise ValueError("summarize needs at least one value")
    mean = float(x.mean())
    if n == 1:
        return {"n": 1, "mean": mean, "std": 0.0, "ci95": None, "ci_method": "none (one episode)"}
    std = float(x.std(ddof=1))
    q, method = t_quantile_975(n - 1)
    half = q * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "ci95": [mean - half, mean + half], "ci_method": method}


def mean_stats(per_episode: list[dict[str, float]]) -> dict[str, float]:
    """The mean of each key over the episodes that reported it."""
    keys = sorted({k for stats in per_episode for k in stats})
    return {k: float(np.mean([s[k] for s in per_episode if k in s])) for k in keys}
