"""Settings of the training service, read from the environment once.

=====================================  ==========================================================
variable (default)                     meaning
=====================================  ==========================================================
SLUICE_TRAINING_PORT (50053)           gRPC port; 0 picks a free one
SLUICE_DATA_DIR (~/.sluice)            job folders live in <data>/training/jobs
SLUICE_TRAINING_DATABASE_URL           job records (SQLAlchemy URL); default
                                       sqlite:///<data>/training/jobs.db
SLUICE_ARTIFACT_STORE_URI              data, checkpoints and exported models; default
                                       file://<data>/artifacts
SLUICE_TRAINING_MAX_CONCURRENT_JOBS    jobs running at once; the others wait QUEUED (1)
SLUICE_TRAINING_MAX_ATTEMPTS           attempts per job when its workers die (3)
SLUICE_TRAINING_CANCEL_GRACE_SECONDS   SIGTERM to SIGKILL when a job is cancelled (5)
SLUICE_TRAINING_DEFAULT_BACKEND        Keras backend when a spec names none (tensorflow)
SLUICE_METADATA_ADDRESS                metadata service host:port: lineage, blessed base models,
                                       artifact ids; unset: none of those
SLUICE_TRAINING_K8S_IMAGE              worker image; unset: Kubernetes placement is refused
SLUICE_TRAINING_K8S_NAMESPACE          namespace when a spec names none (default)
SLUICE_TRAINING_K8S_API_URL            API server (https://kubernetes.default.svc)
SLUICE_TRAINING_K8S_SECRET             Secret with the workers' store credentials (envFrom)
SLUICE_TRAINING_K8S_SERVICE_ACCOUNT    service account of the worker pods
=====================================  ==========================================================

The runtime's shared server settings (SLUICE_HOST, TLS, auth, logging, ...) come from
`sluice_runtime.config.ServerConfig`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sluice_runtime.config import ConfigError, ServerConfig

from sluice_training.plan import KERAS_BACKENDS

SERVICE = "training"
DEFAULT_PORT = 50053
DEFAULT_DATA_DIR = "~/.sluice"
DEFAULT_MAX_CONCURRENT_JOBS = 1
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_CANCEL_GRACE_SECONDS = 5.0
DEFAULT_POLL_SECONDS = 0.25


@dataclass(frozen=True)
class KubernetesSettings:
    """Where and how Kubernetes jobs run; `image` unset means Kubernetes placement is refused."""

    image: str = ""
    namespace: str = "default"
    api_url: str = "https://kubernetes.default.svc"
    secret: str = ""
    service_account: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.image)


@dataclass(frozen=True)
class TrainingConfig:
    """Attributes:
    data_dir: the service's folder (job folders, the default SQLite database).
    database_url: where job records live.
    artifact_store_uri: the store of data, checkpoints and exported models.
    max_concurrent_jobs: jobs running at once; the others stay QUEUED.
    max_attempts: a job whose workers die is retried (resuming from its last checkpoint) until
        it has had this many attempts, then fails with WORKER_LOST.
    metadata_address: host:port of the metadata service; empty: no lineage, no blessed lookups.
    """

    data_dir: Path
    artifact_store_uri: str
    database_url: str = ""
    server: ServerConfig = field(
        default_factory=lambda: ServerConfig(service=SERVICE, port=DEFAULT_PORT)
    )
    max_concurrent_jobs: int = DEFAULT_MAX_CONCURRENT_JOBS
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    cancel_grace_seconds: float = DEFAULT_CANCEL_GRACE_SECONDS
    poll_seconds: float = DEFAULT_POLL_SECONDS
    default_backend: str = "tensorflow"
    metadata_address: str = ""
    kubernetes: KubernetesSettings = field(default_factory=KubernetesSettings)

    def __post_init__(self) -> None:
        if self.max_concurrent_jobs < 1:
            raise ConfigError("SLUICE_TRAINING_MAX_CONCURRENT_JOBS", "must be at least 1")
        if self.max_attempts < 1:
            raise ConfigError("SLUICE_TRAINING_MAX_ATTEMPTS", "must be at least 1")
        if not self.cancel_grace_seconds >= 0:
            raise ConfigError("SLUICE_TRAINING_CANCEL_GRACE_SECONDS", "must be 0 or more")
        if self.default_backend not in KERAS_BACKENDS:
            raise ConfigError(
                "SLUICE_TRAINING_DEFAULT_BACKEND",
                f"must be one of {', '.join(KERAS_BACKENDS)}, got {self.default_backend!r}",
            )

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "training" / "jobs"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'training' / 'jobs.db'}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TrainingConfig:
        env = os.environ if environ is None else environ

        def get(name: str, default: str = "") -> str:
            value = env.get(name, "").strip()
            return value or default

        def number(name: str, default: float) -> float:
            raw = get(name)
            if not raw:
                return default
            try:
                return float(raw)
            except ValueError:
                raise ConfigError(name, f"must be a number, got {raw!r}") from None

        def whole(name: str, default: int) -> int:
            value = number(name, default)
            if value != int(value):
                raise ConfigError(name, f"must be a whole number, got {value}")
            return int(value)

        data_dir = Path(get("SLUICE_DATA_DIR", DEFAULT_DATA_DIR)).expanduser().resolve()
        return cls(
            data_dir=data_dir,
            artifact_store_uri=get("SLUICE_ARTIFACT_STORE_URI", (data_dir / "artifacts").as_uri()),
            database_url=get("SLUICE_TRAINING_DATABASE_URL"),
            server=ServerConfig.from_env(SERVICE, DEFAULT_PORT, env),
            max_concurrent_jobs=whole(
                "SLUICE_TRAINING_MAX_CONCURRENT_JOBS", DEFAULT_MAX_CONCURRENT_JOBS
            ),
            max_attempts=whole("SLUICE_TRAINING_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS),
            cancel_grace_seconds=number(
                "SLUICE_TRAINING_CANCEL_GRACE_SECONDS", DEFAULT_CANCEL_GRACE_SECONDS
            ),
            default_backend=get("SLUICE_TRAINING_DEFAULT_BACKEND", "tensorflow"),
            metadata_address=get("SLUICE_METADATA_ADDRESS"),
            kubernetes=KubernetesSettings(
                image=get("SLUICE_TRAINING_K8S_IMAGE"),
                namespace=get("SLUICE_TRAINING_K8S_NAMESPACE", "default"),
                api_url=get("SLUICE_TRAINING_K8S_API_URL", KubernetesSettings.api_url),
                secret=get("SLUICE_TRAINING_K8S_SECRET"),
                service_account=get("SLUICE_TRAINING_K8S_SERVICE_ACCOUNT"),
            ),
        )
