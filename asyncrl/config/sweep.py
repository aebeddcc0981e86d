"""Hydra's sweep syntax for ``python -m asyncrl.train -m``: ``seed=0,1,2 algo.lr=1e-4,3e-4`` is six runs.

Each override with several values (``a,b``, ``range(3)``, ``choice(...)``, Hydra's grammar) multiplies the jobs;
the rest apply to all of them. Every job is named after the run it would be without ``-m`` plus its own values
(``runs/cartpole/algo.lr=0.0001,seed=0``), so running the same sweep again resumes each job where it stopped.
"""

from __future__ import annotations

import itertools

from hydra.core.override_parser.overrides_parser import OverridesParser

from asyncrl.config.loader import ConfigError


def expand(overrides: list[str]) -> list[tuple[list[str], str]]:
    """``(overrides of one job, its name suffix)`` for every point of the sweep, in order."""
    parser = OverridesParser.create()
    fixed: list[str] = []
    axes: list[list[str]] = []
    for text in overrides:
        try:
            ov = parser.parse_override(text)
        except Exception as e:  # load_config reports the grammar error of a single job in detail
            raise ConfigError(f"cannot parse argument {text!r} ({(str(e).splitlines() or [type(e).__name__])[0]}): "
                              f"expected key=value or key=a,b,c") from e
        if ov.is_sweep_override():
            key = ov.key_or_group
            if key in ("name", "run_dir", "experiment"):
                raise ConfigError(f"{text!r}: a sweep over {key} is not supported (each job is named by its "
                                  f"values); run one command per {key}")
            axes.append([f"{key}={value}" for value in ov.sweep_string_iterator()])
        else:
            fixed.append(text)
    if not axes:
        raise ConfigError("-m (multirun) needs at least one key with several values, e.g. seed=0,1,2")
    return [([*fixed, *point], ",".join(point)) for point in itertools.product(*axes)]
