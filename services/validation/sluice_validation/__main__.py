"""`sluice-validation` / `python -m sluice_validation`: run the validation service until SIGTERM."""

from __future__ import annotations

import sys

from sluice_runtime.config import ConfigError
from sluice_runtime.server import serve

from .config import ValidationConfig
from .server import build_core, registrar


def main() -> None:
    try:
        config = ValidationConfig.from_env()
    except ConfigError as error:
        print(f"sluice-validation: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    core = build_core(config)
    try:
        serve(config.server, register=registrar(core), service_name="validation")
    finally:
        core.close()


if __name__ == "__main__":
    main()
