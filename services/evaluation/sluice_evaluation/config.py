"""Settings of the evaluation service, read from the environment once.

The gRPC server itself (port, host, TLS, auth, workers, logging) is configured by
`sluice_runtime.config.ServerConfig` (``SLUICE_EVALUATION_PORT``, default 50054, ...).

=======================================  ===========================  ==============================
variable                                 default                      meaning
=======================================  ===========================  ==============================
SLUICE_ARTIFACT_STORE_URI                file://<data>/artifacts      models and data are read from
                                                                      here, results written here
SLUICE_DATA_DIR                          ~/.sluice                    the local data directory
SLUICE_METADATA_ADDRESS                  unset (no lineage)           metadata service host:port:
                                                                      artifact ids, the serving
                                                                      baseline, lineage records
SLUICE_EVALUATION_SCRATCH_DIR            <data>/evaluation-scratch    model downloads and sandbox
                                                                      folders, for a job's duration
SLUICE_EVALUATION_WORKERS                1                            evaluations run at once
SLUICE_EVALUATION_INFRA_WORKERS          1                            infra validations run at once
SLUICE_EVALUATION_PREDICTION_BATCH       4096                         rows per model call
SLUICE_EVALUATION_SANDBOX_COMMAND        <python> -m sluice_serving   the sandboxed serving process
SLUICE_EVALUATION_SANDBOX_START_TIMEOUT  120                          seconds the sandbox may take
                                                                      to start serving
=======================================  ===========================  ==============================

The metadata client's own settings (TLS, token, deadline) are the SDK's: see
`sluice.client.ClientConfig.from_env`.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sluice_runtime.config import ConfigError, ServerConfig

SERVICE = "evaluation"
DEFAULT_PORT = 50054
DEFAULT_PREDICTION_BATCH = 4096
DEFAULT_SANDBOX_START_TIMEOUT = 120.0


@dataclass(frozen=True)
class EvaluationConfig:
    """Attributes: see the module docstring; ``metadata_address`` None means no lineage."""

    artifact_store_uri: str
    scratch_dir: Path
    server: ServerConfig = field(
        default_factory=lambda: ServerConfig(service=SERVICE, port=DEFAULT_PORT)
    )
    metadata_address: str | None = None
    workers: int = 1
    infra_workers: int = 1
    prediction_batch: int = DEFAULT_PREDICTION_BATCH
    sandbox_command: tuple[str, ...] = (sys.executable, "-m", "sluice_serving")
    sandbox_start_timeout_seconds: float = DEFAULT_SANDBOX_START_TIMEOUT

    def __post_init__(self) -> None:
        for name in ("workers", "infra_workers", "prediction_batch"):
            if getattr(self, name) < 1:
                raise ConfigError(_variable(name), f"must be at least 1, got {getattr(self, name)}")
        if not self.sandbox_command:
            raise ConfigError(_variable("sandbox_command"), "must name a command")
        if not self.sandbox_start_timeout_seconds > 0:
            raise ConfigError(_variable("sandbox_start_timeout"), "must be more than 0 seconds")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EvaluationConfig:
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        def number(name: str, default: float, convert: type[int] | type[float] = int) -> float:
            raw = get(_variable(name))
            if raw is None:
                return default
            try:
                return convert(raw)
            except ValueError:
                raise ConfigError(_variable(name), f"must be a number, got {raw!r}") from None

        data_dir = Path(get("SLUICE_DATA_DIR") or "~/.sluice").expanduser()
        store_uri = get("SLUICE_ARTIFACT_STORE_URI") or (data_dir / "artifacts").resolve().as_uri()
        scratch = Path(
            get(_variable("scratch_dir")) or data_dir / "evaluation-scratch"
        ).expanduser()
        command = get(_variable("sandbox_command"))
        return cls(
            artifact_store_uri=store_uri,
            scratch_dir=scratch,
            server=ServerConfig.from_env(SERVICE, DEFAULT_PORT, env),
            metadata_address=get("SLUICE_METADATA_ADDRESS"),
            workers=int(number("workers", 1)),
            infra_workers=int(number("infra_workers", 1)),
            prediction_batch=int(number("prediction_batch", DEFAULT_PREDICTION_BATCH)),
            sandbox_command=(
                tuple(shlex.split(command)) if command else (sys.executable, "-m", "sluice_serving")
            ),
            sandbox_start_timeout_seconds=number(
                "sandbox_start_timeout", DEFAULT_SANDBOX_START_TIMEOUT, float
            ),
        )


def _variable(name: str) -> str:
    return "SLUICE_EVALUATION_" + name.upper()
