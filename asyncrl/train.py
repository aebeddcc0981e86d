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
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    from asyncrl.run.run_dir import RunDirError
    from asyncrl.run.trainer import USER_ERRORS, train

    try:
        cfg = load_config(argv)
        summary = train(cfg)
    except (ConfigError, RunDirError, *USER_ERRORS) as e:
        print(f"asyncrl: {e}", file=sys.stderr)
        return 2
    return 0 if summary["status"] == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())
