"""``python -m asyncrl.train env=NAME [key=value ...]``: train an agent.

``-m`` (``--multirun``) runs a sweep, one job after the other: ``-m seed=0,1,2 algo.lr=1e-4,3e-4`` (Hydra's
sweep syntax, ``asyncrl/config/sweep.py``). Every job's config is checked before the first one starts.
Bad input ends here with one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import logging
import sys

from asyncrl.config.loader import ConfigError, load_config

USAGE = "usage: python -m asyncrl.train [-m] [env=NAME] [experiment=NAME] [key=value ...]"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        print("groups: env=<conf/env file or Gymnasium id>, runtime=ray|serial, experiment=<name or recipe>")
        return 0
    _setup_logging()
    multirun = any(a in ("-m", "--multirun") for a in argv)
    argv = [a for a in argv if a not in ("-m", "--multirun")]
    try:  # before torch is imported: a typo costs a fraction of a second, not seconds
        configs = _sweep_configs(argv) if multirun else [load_config(argv)]
    except ConfigError as e:
        return _user_error(e)
    from asyncrl.outputs.run_dir import RunDirError
    from asyncrl.training.trainer import USER_ERRORS, train

    statuses = []
    for i, cfg in enumerate(configs):
        if multirun:
            logging.getLogger("asyncrl").info("multirun job %d/%d: %s", i + 1, len(configs), cfg.name)
        try:
            statuses.append(train(cfg)["status"])
        except (ConfigError, RunDirError, *USER_ERRORS) as e:
            return _user_error(e)
        if statuses[-1] == "interrupted":
            break  # Ctrl-C stops the sweep, not just the job
    return 0 if statuses and all(s == "completed" for s in statuses) and len(statuses) == len(configs) else 1


def _sweep_configs(argv: list[str]) -> list:
    from asyncrl.config.sweep import expand

    configs = []
    for overrides, suffix in expand(argv):
        cfg = load_config(overrides)
        if not cfg.run_dir:
            cfg.name = f"{cfg.name}/{suffix}"
        else:
            cfg.run_dir = f"{cfg.run_dir}/{suffix}"
        configs.append(cfg)
    return configs


def _setup_logging() -> None:
    """Progress goes to stdout, warnings and errors to stderr: bad input leaves only its one line there."""
    fmt = logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S")
    progress = logging.StreamHandler(sys.stdout)
    progress.addFilter(lambda record: record.levelno < logging.WARNING)
    problems = logging.StreamHandler(sys.stderr)
    problems.setLevel(logging.WARNING)
    for handler in (progress, problems):
        handler.setFormatter(fmt)
    logging.basicConfig(level=logging.INFO, handlers=[progress, problems])


def _user_error(e: Exception) -> int:
    # Messages are one line by contract; a nested cause must not smuggle in a second one.
    print(f"asyncrl: {' '.join(str(e).split())}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
