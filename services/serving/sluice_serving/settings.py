"""Settings of the serving data plane, read from the environment once.

The gRPC server itself (port, host, TLS, workers, message size) is configured by
`sluice_runtime.config.ServerConfig` (``SLUICE_SERVING_PORT``, default 50055, ...);
``SLUICE_MAX_WORKERS`` sizes the thread pool of the control-plane RPCs (predictions run on the
event loop).

==================================  =======================  =======================================
variable                            default                  meaning
==================================  =======================  =======================================
SLUICE_ARTIFACT_STORE_URI           file://<data>/artifacts  models are pulled from here, request
                                                             logs written here
SLUICE_DATA_DIR                     ~/.sluice                the local data directory
SLUICE_SERVING_CACHE_DIR            <data>/serving-cache     local copies of loaded versions
SLUICE_SERVING_MODEL_CONFIG         unset                    JSON of models to load at start:
                                                             {"models": [sluice.serving.v1.Model]}
SLUICE_SERVING_LOADER_THREADS       2                        versions fetched and loaded at once
SLUICE_SERVING_BATCH_THREADS        1                        concurrent model calls per version
SLUICE_SERVING_MAX_REQUEST_ROWS     8192                     rows (batch size) of one request
SLUICE_SERVING_MAX_REQUEST_BYTES    33554432                 decoded tensor bytes of one request
SLUICE_SERVING_MAX_QUEUED_ROWS      65536                    rows waiting in one batch queue
SLUICE_SERVING_REQUEST_LOG_QUEUE    10000                    sampled requests waiting to be written
SLUICE_SERVING_REQUEST_LOG_FLUSH_S  10                       longest a logged row waits for its file
SLUICE_SERVING_TF_INTRA_OP_THREADS  0 (TensorFlow decides)   threads inside one TensorFlow op
SLUICE_SERVING_TF_INTER_OP_THREADS  0 (TensorFlow decides)   TensorFlow ops run in parallel
SLUICE_SERVING_MODEL_PROCESSES      false                    true: each version in a process of
                                                             its own (model_process.py)
SLUICE_METADATA_ADDRESS             127.0.0.1:50051          metadata service, asked for the uri
                                                             and digest of a load by artifact_id
==================================  =======================  =======================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sluice_runtime.config import ConfigError

DEFAULT_PORT = 50055


@dataclass(frozen=True)
class ServingSettings:
    """The data plane's settings; see the module docstring for the variables."""

    artifact_store_uri: str
    cache_dir: Path
    model_config_file: Path | None = None
    loader_threads: int = 2
    batch_threads: int = 1
    max_request_rows: int = 8192
    max_request_bytes: int = 32 * 1024 * 1024
    max_queued_rows: int = 65536
    request_log_queue: int = 10_000
    request_log_flush_seconds: float = 10.0
    tf_intra_op_threads: int = 0
    tf_inter_op_threads: int = 0
    model_processes: bool = False

    def __post_init__(self) -> None:
        for name in (
            "loader_threads",
            "batch_threads",
            "max_request_rows",
            "max_request_bytes",
            "max_queued_rows",
            "request_log_queue",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(_variable(name), f"must be at least 1, got {getattr(self, name)}")
        if not self.request_log_flush_seconds > 0:
            raise ConfigError(_variable("request_log_flush_seconds"), "must be more than 0")
        for name in ("tf_intra_op_threads", "tf_inter_op_threads"):
            if getattr(self, name) < 0:
                raise ConfigError(_variable(name), "must be 0 (TensorFlow decides) or more")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServingSettings:
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        data_dir = Path(get("SLUICE_DATA_DIR") or "~/.sluice").expanduser()
        store_uri = get("SLUICE_ARTIFACT_STORE_URI") or (data_dir / "artifacts").resolve().as_uri()
        cache_dir = Path(get("SLUICE_SERVING_CACHE_DIR") or data_dir / "serving-cache").expanduser()
        config_file = get("SLUICE_SERVING_MODEL_CONFIG")
        if config_file is not None and not Path(config_file).is_file():
            raise ConfigError("SLUICE_SERVING_MODEL_CONFIG", f"file {config_file!r} does not exist")

        def number(field: str, default: float, convert: type[int] | type[float] = int) -> float:
            raw = get(_variable(field))
            if raw is None:
                return default
            try:
                return convert(raw)
            except ValueError:
                raise ConfigError(_variable(field), f"must be a number, got {raw!r}") from None

        return cls(
            artifact_store_uri=store_uri,
            cache_dir=cache_dir,
            model_config_file=Path(config_file) if config_file else None,
            loader_threads=int(number("loader_threads", 2)),
            batch_threads=int(number("batch_threads", 1)),
            max_request_rows=int(number("max_request_rows", 8192)),
            max_request_bytes=int(number("max_request_bytes", 32 * 1024 * 1024)),
            max_queued_rows=int(number("max_queued_rows", 65536)),
            request_log_queue=int(number("request_log_queue", 10_000)),
            request_log_flush_seconds=number("request_log_flush_seconds", 10.0, float),
            tf_intra_op_threads=int(number("tf_intra_op_threads", 0)),
            tf_inter_op_threads=int(number("tf_inter_op_threads", 0)),
            model_processes=_flag(get(_variable("model_processes")), default=False),
        )


_VARIABLES = {"request_log_flush_seconds": "SLUICE_SERVING_REQUEST_LOG_FLUSH_S"}


def _flag(raw: str | None, *, default: bool) -> bool:
    if raw is None:
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(_variable("model_processes"), f"must be true or false, got {raw!r}")


def _variable(field: str) -> str:
    return _VARIABLES.get(field, "SLUICE_SERVING_" + field.upper())
