"""`python -m sluice_training` / `sluice-training`: serve the training service.

    sluice-training                 serve until SIGTERM or SIGINT
    sluice-training worker ...      run one worker (what the launchers start; see worker.py)

Settings come from the environment: see sluice_training/config.py and the README.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from sluice_runtime.config import ConfigError


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["worker"]:
        from sluice_training.worker import main as worker_main

        return worker_main(args[1:])
    if args and args[0] not in ("serve",):
        print(__doc__, file=sys.stderr)
        return 2
    from sluice_training.config import TrainingConfig
    from sluice_training.server import serve

    try:
        config = TrainingConfig.from_env()
    except (ConfigError, ValueError) as error:
        print(f"sluice-training: configuration error: {error}", file=sys.stderr)
        return 2
    serve(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
