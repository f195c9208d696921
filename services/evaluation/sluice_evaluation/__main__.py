"""`python -m sluice_evaluation` / `sluice-evaluation`: serve until SIGTERM or SIGINT.

Settings come from the environment: see sluice_evaluation/config.py and the README.
"""

from __future__ import annotations

import sys

from sluice_runtime.config import ConfigError


def main() -> int:
    from sluice_evaluation.config import EvaluationConfig
    from sluice_evaluation.server import serve

    try:
        config = EvaluationConfig.from_env()
    except (ConfigError, ValueError) as error:
        print(f"sluice-evaluation: configuration error: {error}", file=sys.stderr)
        return 2
    serve(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
