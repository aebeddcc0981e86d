"""``python -m asyncrl.train env=NAME [key=value ...]``: train an agent.

Bad input ends here with one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import logging
import sys

from asyncrl.config.loader import ConfigError, load_config

USAGE = "usage: python -m asyncrl.train [env=NAME] [experiment=NAME] [key=value ...]"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        print("groups: env=<conf/env file or Gymnasium id>, runtime=ray|serial, experiment=<name or recipe>")
        return 0
    _setup_logging()
    try:
        cfg = load_config(argv)
    except ConfigError as e:  # before torch is imported: a typo costs a fraction of a second, not seconds
        return _user_error(e)
    from asyncrl.run.run_dir import RunDirError
    from asyncrl.run.trainer import USER_ERRORS, train

    try:
        summary = train(cfg)
    except (ConfigError, RunDirError, *USER_ERRORS) as e:
        return _user_error(e)
    return 0 if summary["status"] == "completed" else 1


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
